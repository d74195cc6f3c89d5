"""What the traders' WebAuthn ceremonies share (:mod:`api.webauthn_ceremonies`,
:mod:`api.webauthn_add_passkey`): their collaborators, the options given to the browser, taking a
challenge and verifying the assertion that answers it (the sign count moved by compare-and-swap,
only forward), verifying and storing a registration, and recording each refusal as a security
event (a breach as ``Critical Security Breach``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import asyncpg
from webauthn import generate_authentication_options, generate_registration_options, options_to_json
from webauthn.helpers.structs import (
    AuthenticationCredential,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from api import webauthn_records as records
from api import webauthn_results as r
from api.principals import Principal
from api.webauthn_challenges import Challenges
from api.webauthn_checks import (
    CountReplayed,
    Expected,
    VerifiedRegistration,
    check_assertion,
    check_registration,
    parse_assertion,
    parse_registration,
)
from api.webauthn_results import AssertionProof, Refusal
from config.settings import FloorSettings
from ledger import webauthn_store as store
from ledger.db import Db
from ledger.traders import TraderRecord, get_trader
from observability.security import SecurityRecorder, refusal_event
from trading.authorization import trader_agent_id
from trading.security_events import Severity

CHALLENGE_BYTES = 32
CAS_ATTEMPTS = 3
"""Compare-and-swap attempts on a sign count before giving up (another assertion of the same
passkey kept moving it: two genuine ceremonies at once are rare; a clone racing one is the case)."""


class NotATraderSession(ValueError):
    """Arming and step-up need a trader's web session; the caller checks before (a bug if not)."""


_TRANSPORTS = frozenset(t.value for t in AuthenticatorTransport)
REVOKED = Refusal(
    r.CREDENTIAL_REVOKED,
    "this passkey was revoked by the operator; use another one, or ask the operator for an enrolment link",
)


class CeremonySteps:
    """The steps every ceremony is made of, over the same collaborators."""

    def __init__(
        self,
        db: Db,
        settings: FloorSettings,
        security: SecurityRecorder,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._db = db
        self._settings = settings
        self._security = security
        self._clock = clock or (lambda: datetime.now(UTC))
        self._challenges = Challenges(db, settings)

    async def _registration_options(self, trader: TraderRecord, challenge: bytes) -> str:
        # Revoked passkeys too: one cannot come back through a new enrolment.
        existing = await store.trader_credentials(self._db, trader.name, include_revoked=True)
        options = generate_registration_options(
            rp_id=self._settings.webauthn_rp_id,
            rp_name=self._settings.webauthn_rp_name,
            user_name=trader.name,
            user_id=trader.user_handle,
            challenge=challenge,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.REQUIRED,
                user_verification=UserVerificationRequirement.REQUIRED,
            ),
            exclude_credentials=[PublicKeyCredentialDescriptor(id=c.credential_id) for c in existing],
        )
        return options_to_json(options)

    async def _registered(
        self,
        taken: store.TakenChallenge,
        credential_json: str,
        store_with: Callable[[VerifiedRegistration], Awaitable[store.StoredCredential | None]],
        *,
        trader: str,
        client_address: str | None,
    ) -> store.StoredCredential | None | Refusal:
        """Verify the browser's registration against the taken challenge, then store the passkey
        with ``store_with`` (None: the database refused to, the caller says why)."""
        credential = parse_registration(credential_json)
        if isinstance(credential, Refusal):
            return await self._refuse(credential, trader=trader, client_address=client_address)
        verified = check_registration(credential, self._expected(taken.challenge))
        if isinstance(verified, Refusal):
            return await self._refuse(verified, trader=trader, client_address=client_address)
        try:
            return await store_with(verified)
        except asyncpg.UniqueViolationError:
            return await self._refuse(
                Refusal(r.MALFORMED, "this passkey is already registered; sign in with it"),
                trader=trader,
                client_address=client_address,
            )

    def _expected(self, challenge: bytes) -> Expected:
        return Expected(challenge, self._settings.webauthn_rp_id, self._settings.webauthn_origin)

    async def _assertion_options(self, trader: str, challenge: bytes) -> str:
        credentials = await store.trader_credentials(self._db, trader)
        options = generate_authentication_options(
            rp_id=self._settings.webauthn_rp_id,
            challenge=challenge,
            allow_credentials=[
                PublicKeyCredentialDescriptor(
                    id=c.credential_id,
                    transports=[AuthenticatorTransport(t) for t in c.transports if t in _TRANSPORTS],
                )
                for c in credentials
            ],
            user_verification=UserVerificationRequirement.REQUIRED,
        )
        return options_to_json(options)

    async def _answered(
        self,
        challenge_id: str,
        purpose: str,
        session_id: str | None,
        credential_json: str,
        *,
        trader: str | None,
        now: datetime,
        client_address: str | None,
        check: Callable[[store.TakenChallenge], Refusal | None] | None = None,
    ) -> tuple[store.TakenChallenge, AssertionProof] | Refusal:
        """Take the ``purpose`` challenge (of ``session_id``; None: sign-in's, of no session),
        refuse it if ``check`` does, then verify the assertion answering it (:meth:`_verify`)."""
        taken = await self._challenges.take(challenge_id, purpose, now, session_id)
        if isinstance(taken, Refusal):
            return await self._refuse(taken, trader=trader, client_address=client_address)
        refused = None if check is None else check(taken)
        if refused is not None:
            return await self._refuse(refused, trader=trader, client_address=client_address)
        proof = await self._verify(
            taken, credential_json, trader=trader, now=now, client_address=client_address
        )
        if isinstance(proof, Refusal):
            return proof
        return taken, proof

    async def _verify(
        self,
        taken: store.TakenChallenge,
        credential_json: str,
        *,
        trader: str | None,
        now: datetime,
        client_address: str | None,
    ) -> AssertionProof | Refusal:
        """Verify an assertion against the taken challenge and store its sign count; ``trader``:
        whose passkey it must be (None: anyone's, for sign-in)."""
        credential = parse_assertion(credential_json)
        if isinstance(credential, Refusal):
            return await self._refuse(credential, trader=trader, client_address=client_address)
        stored = await store.get_credential(self._db, credential.raw_id)
        if (
            stored is None
            or (trader is not None and stored.trader != trader)
            or not await self._same_user(credential, stored)
        ):
            return await self._refuse(
                Refusal(
                    r.UNKNOWN_CREDENTIAL,
                    "this passkey is not registered here for you; use the one you enrolled",
                ),
                trader=trader,
                credential_id=credential.id,
                client_address=client_address,
            )
        for _ in range(CAS_ATTEMPTS):
            if stored.revoked_at is not None:
                return await self._refuse(
                    REVOKED, trader=stored.trader, credential_id=credential.id, client_address=client_address
                )
            checked = check_assertion(
                credential, self._expected(taken.challenge), stored.public_key, stored.sign_count
            )
            if isinstance(checked, CountReplayed):
                return await self._replayed(stored.trader, credential.id, checked, client_address)
            if isinstance(checked, Refusal):
                return await self._refuse(
                    checked, trader=stored.trader, credential_id=credential.id, client_address=client_address
                )
            if await store.swap_sign_count(
                self._db, stored.credential_id, stored.sign_count, checked.sign_count, checked.backed_up, now
            ):
                return records.proof(stored.trader, checked)
            # Another assertion of this passkey moved the count meanwhile (or the operator revoked
            # it): check against it.
            moved = await store.get_credential(self._db, stored.credential_id)
            assert moved is not None  # credentials are never deleted
            stored = moved
        return await self._replayed(
            stored.trader, credential.id, CountReplayed(stored.sign_count, -1), client_address
        )

    async def _same_user(self, credential: AuthenticationCredential, stored: store.StoredCredential) -> bool:
        """A discoverable passkey's answer names its user (the handle registered with it); when
        it does, it must be the passkey's trader."""
        handle = credential.response.user_handle
        if not handle:
            return True
        trader = await get_trader(self._db, stored.trader)
        return trader is not None and trader.user_handle == bytes(handle)

    async def _replayed(
        self, trader: str, credential_id: str, count: CountReplayed, client_address: str | None
    ) -> Refusal:
        return await self._refuse(
            Refusal(
                r.SIGN_COUNT_REPLAYED,
                f"the passkey's sign count did not increase "
                f"(stored {count.stored}, presented {count.presented}):"
                " a copy of this authenticator, or a replayed answer; the operator has been alerted",
            ),
            trader=trader,
            credential_id=credential_id,
            client_address=client_address,
        )

    async def _refuse(
        self,
        refusal: Refusal,
        *,
        trader: str | None = None,
        credential_id: str | None = None,
        client_address: str | None = None,
    ) -> Refusal:
        if refusal.reason in r.BREACHES:
            severity = Severity.CRITICAL
        elif refusal.reason == r.CHALLENGE_EXPIRED:
            severity = Severity.INFO
        else:
            severity = Severity.WARNING
        await self._security.record(
            refusal_event(
                reason=refusal.reason,
                severity=severity.value,
                source="api",
                source_address=client_address,
                agent_id=None if trader is None else trader_agent_id(trader),
                key_id=credential_id,
                detail=refusal.detail,
                now=self._clock(),
            )
        )
        return refusal


def session_of(principal: Principal) -> str:
    session_id = principal.trader_session
    if session_id is None:
        raise NotATraderSession(f"{principal.name} is not a trader signed in with a passkey")
    return session_id
