"""The traders' WebAuthn ceremonies (py_webauthn): passkey registration through an enrolment
link, sign-in (a web session), arming (a time-limited grant with the trader's own limits) and
step-up (one order's own ceremony).

Every ceremony is two calls: ``begin_*`` stores a single-use challenge (expiring after
``step_up_ttl_s``; :mod:`api.webauthn_challenges`) and returns the options for the browser;
``finish_*`` takes that challenge (once, atomically: a second answer finds it used) and verifies
the browser's answer (:mod:`api.webauthn_checks`). Each failure is a named :class:`Refusal` and
a security event; a sign count that did not increase, or a signature that does not verify, is a
``Critical Security Breach``. The stored sign count moves by compare-and-swap, only forward. A
passkey the operator revoked, or any passkey of a disabled trader, is refused by name.

Nothing is cached: the grant is read from Postgres on every :meth:`Ceremonies.current_grant`,
and the session's sign-in assertion (kept with the session when sign-in opens it) on every
:meth:`Ceremonies.session_proof`.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import asyncpg
from webauthn import generate_authentication_options, generate_registration_options, options_to_json
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
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
from api.principals import Principal, trader_principal
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
from api.webauthn_results import (
    ArmingGrant,
    AssertionProof,
    AuthenticatorInfo,
    Challenge,
    GrantLimits,
    Refusal,
)
from config.settings import FloorSettings
from ledger import webauthn_store as store
from ledger.db import Db
from ledger.secret_tokens import new_secret
from ledger.traders import Enrolment, TraderRecord, find_enrolment, get_trader
from observability.security import SecurityRecorder, refusal_event
from trading.authorization import trader_agent_id
from trading.security_events import SecurityEvent, Severity

__all__ = [
    "ArmingGrant",
    "AssertionProof",
    "AuthenticatorInfo",
    "Ceremonies",
    "Challenge",
    "GrantLimits",
    "Refusal",
]

CHALLENGE_BYTES = 32
CAS_ATTEMPTS = 3
"""Compare-and-swap attempts on a sign count before giving up (another assertion of the same
passkey kept moving it: two genuine ceremonies at once are rare; a clone racing one is the case)."""


class NotATraderSession(ValueError):
    """Arming and step-up need a trader's web session; the caller checks before (a bug if not)."""


class Ceremonies:
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

    # -- registration ---------------------------------------------------------------------

    async def begin_registration(
        self, enrolment_token: str, *, client_address: str | None = None
    ) -> Challenge | Refusal:
        now = self._clock()
        enrolment = await self._enrolment(enrolment_token, now)
        if isinstance(enrolment, Refusal):
            return await self._refuse(enrolment, client_address=client_address)
        trader = await get_trader(self._db, enrolment.trader)
        assert trader is not None  # an enrolment references its trader
        challenge = secrets.token_bytes(CHALLENGE_BYTES)
        return await self._challenges.issue(
            store.PURPOSE_REGISTRATION,
            challenge,
            await self._registration_options(trader, challenge),
            now,
            enrolment_id=enrolment.enrolment_id,
        )

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

    async def finish_registration(
        self,
        enrolment_token: str,
        challenge_id: str,
        credential_json: str,
        *,
        client_address: str | None = None,
    ) -> AuthenticatorInfo | Refusal:
        now = self._clock()
        enrolment = await self._enrolment(enrolment_token, now)
        if isinstance(enrolment, Refusal):
            return await self._refuse(enrolment, client_address=client_address)
        taken = await self._challenges.take(challenge_id, store.PURPOSE_REGISTRATION, now, None)
        if isinstance(taken, Refusal):
            return await self._refuse(taken, trader=enrolment.trader, client_address=client_address)
        if taken.enrolment_id != enrolment.enrolment_id:
            return await self._refuse(
                Refusal(r.CHALLENGE_UNKNOWN, "that challenge was issued for another enrolment link"),
                trader=enrolment.trader,
                client_address=client_address,
            )
        stored = await self._registered(
            taken,
            credential_json,
            lambda passkey: store.enrol_credential(
                self._db, enrolment_token=enrolment_token, passkey=passkey
            ),
            trader=enrolment.trader,
            client_address=client_address,
        )
        if isinstance(stored, Refusal):
            return stored
        if stored is None:
            return await self._refuse(
                Refusal(
                    r.ENROLMENT_INVALID,
                    "the enrolment link was used meanwhile (or the trader disabled); ask the operator"
                    " for a new one",
                ),
                trader=enrolment.trader,
                client_address=client_address,
            )
        return records.info(stored)

    # -- another passkey, confirmed by one the trader has ---------------------------------

    async def begin_add_passkey(self, principal: Principal) -> Challenge | Refusal:
        """The first of two ceremonies: an assertion, by one of the trader's own passkeys, whose
        challenge is derived from this session and a fresh nonce, and from which the
        registration's challenge is derived in turn (:func:`registration_challenge`): the
        confirmation covers exactly the registration that follows, in this session. A session
        cookie (even of an armed session) is not enough: a passkey outlives the session."""
        session_id = _session(principal)
        trader = await get_trader(self._db, principal.name)
        if trader is None or trader.disabled_at is not None:
            return Refusal(r.TRADER_DISABLED, "this trader is disabled; ask the operator")
        challenge = confirmation_challenge(session_id, secrets.token_bytes(CHALLENGE_BYTES))
        return await self._challenges.issue(
            store.PURPOSE_PASSKEY_CONFIRM,
            challenge,
            await self._assertion_options(principal.name, challenge),
            self._clock(),
            session_id=session_id,
        )

    async def confirm_add_passkey(
        self,
        principal: Principal,
        cookie: str,
        challenge_id: str,
        credential_json: str,
        *,
        client_address: str | None = None,
    ) -> Challenge | Refusal:
        """Check the existing passkey's user-verified assertion, then open the registration it
        confirmed (recorded by the database against the session of ``cookie``)."""
        session_id = _session(principal)
        now = self._clock()
        answered = await self._answered(
            challenge_id,
            store.PURPOSE_PASSKEY_CONFIRM,
            session_id,
            credential_json,
            trader=principal.name,
            now=now,
            client_address=client_address,
        )
        if isinstance(answered, Refusal):
            return answered
        taken, proof = answered
        trader = await get_trader(self._db, principal.name)
        assert trader is not None  # its passkey just verified
        challenge = registration_challenge(taken.challenge)
        issued = await self._challenges.issue(
            store.PURPOSE_PASSKEY,
            challenge,
            await self._registration_options(trader, challenge),
            now,
            session_id=session_id,
        )
        if not await store.confirm_passkey_addition(
            self._db,
            cookie=cookie,
            challenge_id=issued.challenge_id,
            confirmed_by=base64url_to_bytes(proof.credential_id),
            ttl_s=self._settings.step_up_ttl_s,
        ):
            # The cookie is not this session's, or the passkey was revoked or the session ended
            # during the ceremony.
            return await self._refuse(
                _NOT_CONFIRMED,
                trader=principal.name,
                credential_id=proof.credential_id,
                client_address=client_address,
            )
        return issued

    async def finish_add_passkey(
        self,
        principal: Principal,
        cookie: str,
        challenge_id: str,
        credential_json: str,
        *,
        client_address: str | None = None,
    ) -> AuthenticatorInfo | Refusal:
        """Store the new passkey for the session's trader (``cookie``: the session's own, which
        the database checks the confirmation by), and record a ``Warning`` security event: a
        new way to sign in as this trader is something the operator should see."""
        session_id = _session(principal)
        now = self._clock()
        taken = await self._challenges.take(challenge_id, store.PURPOSE_PASSKEY, now, session_id)
        if isinstance(taken, Refusal):
            return await self._refuse(taken, trader=principal.name, client_address=client_address)
        stored = await self._registered(
            taken,
            credential_json,
            lambda passkey: store.add_session_passkey(
                self._db, cookie=cookie, challenge_id=challenge_id, passkey=passkey
            ),
            trader=principal.name,
            client_address=client_address,
        )
        if isinstance(stored, Refusal):
            return stored
        if stored is None:
            # Never confirmed, the confirmation ran out or was used, or the session or a passkey
            # was revoked meanwhile.
            return await self._refuse(_NOT_CONFIRMED, trader=principal.name, client_address=client_address)
        confirmed_by = await store.passkey_confirmed_by(self._db, stored.credential_id)
        await self._security.record(
            passkey_added_event(
                trader=principal.name,
                credential_id=bytes_to_base64url(stored.credential_id),
                confirmed_by=None if confirmed_by is None else bytes_to_base64url(confirmed_by),
                client_address=client_address,
                now=now,
            )
        )
        return records.info(stored)

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

    async def _enrolment(self, enrolment_token: str, now: datetime) -> Enrolment | Refusal:
        enrolment = await find_enrolment(self._db, enrolment_token)
        trader = None if enrolment is None else await get_trader(self._db, enrolment.trader)
        return records.open_enrolment(enrolment, trader, now)

    # -- sign-in --------------------------------------------------------------------------

    async def begin_login(self) -> Challenge | Refusal:
        """A sign-in challenge; refused (``webauthn.too_many_challenges``) while too many are open."""
        now = self._clock()
        challenge = secrets.token_bytes(CHALLENGE_BYTES)
        options = generate_authentication_options(
            rp_id=self._settings.webauthn_rp_id,
            challenge=challenge,
            user_verification=UserVerificationRequirement.REQUIRED,
        )
        return await self._challenges.issue_login(challenge, options_to_json(options), now)

    async def finish_login(
        self, challenge_id: str, credential_json: str, *, client_address: str | None = None
    ) -> tuple[Principal, str] | Refusal:
        """The signed-in trader and the session cookie's value (set it HttpOnly, SameSite=Strict)."""
        now = self._clock()
        answered = await self._answered(
            challenge_id,
            store.PURPOSE_LOGIN,
            None,
            credential_json,
            trader=None,
            now=now,
            client_address=client_address,
        )
        if isinstance(answered, Refusal):
            return answered
        _, proof = answered
        trader = await get_trader(self._db, proof.trader)
        if trader is None or trader.disabled_at is not None:
            return await self._refuse(
                Refusal(r.TRADER_DISABLED, "this trader is disabled; ask the operator"),
                trader=proof.trader,
                client_address=client_address,
            )
        session_id = uuid.uuid4().hex
        cookie = new_secret()
        opened = await store.open_session(
            self._db,
            session_id=session_id,
            cookie=cookie,
            sign_in=store.SignIn(
                trader=proof.trader,
                credential_id=base64url_to_bytes(proof.credential_id),
                sign_count=proof.sign_count,
                authenticator_data_sha256=proof.authenticator_data_sha256,
                client_data_sha256=proof.client_data_sha256,
                synced=proof.synced,
            ),
            now=now,
            expires_at=now + timedelta(seconds=self._settings.session_ttl_s),
        )
        if not opened:  # the passkey was revoked (or its trader disabled) during the ceremony
            return await self._refuse(
                _REVOKED,
                trader=proof.trader,
                credential_id=proof.credential_id,
                client_address=client_address,
            )
        principal = await trader_principal(self._db, proof.trader, session_id)
        if principal is None:  # disabled meanwhile: the session it opened is ended with it
            return await self._refuse(
                Refusal(r.TRADER_DISABLED, "this trader is disabled; ask the operator"),
                trader=proof.trader,
                client_address=client_address,
            )
        return principal, cookie

    async def session_proof(self, principal: Principal) -> AssertionProof | None:
        """The sign-in assertion that opened the principal's session, read now: None for a
        program, a revoked or expired session, or one opened before the floor kept it. It
        authorises only taking risk off (cancels, the breaker's trip); it grants nothing."""
        if principal.trader_session is None:
            return None
        sign_in = await store.session_sign_in(self._db, principal.trader_session, self._clock())
        if sign_in is None:
            return None
        return AssertionProof(
            trader=sign_in.trader,
            credential_id=bytes_to_base64url(sign_in.credential_id),
            sign_count=sign_in.sign_count,
            authenticator_data_sha256=sign_in.authenticator_data_sha256,
            client_data_sha256=sign_in.client_data_sha256,
            synced=sign_in.synced,
        )

    async def logout(self, principal: Principal) -> None:
        """Ends the session, and with it its arming grant."""
        if principal.session_id is not None:
            await store.revoke_session(self._db, principal.session_id, self._clock())

    # -- arming ---------------------------------------------------------------------------

    async def begin_arming(self, principal: Principal, limits: GrantLimits) -> Challenge:
        session_id = _session(principal)
        now = self._clock()
        challenge = secrets.token_bytes(CHALLENGE_BYTES)
        options = await self._assertion_options(principal.name, challenge)
        return await self._challenges.issue(
            store.PURPOSE_ARMING,
            challenge,
            options,
            now,
            session_id=session_id,
            limits=records.limits_json(limits),
        )

    async def finish_arming(
        self,
        principal: Principal,
        challenge_id: str,
        credential_json: str,
        *,
        client_address: str | None = None,
    ) -> ArmingGrant | Refusal:
        """A new grant for the session (any earlier one of the session ends)."""
        session_id = _session(principal)
        now = self._clock()
        answered = await self._answered(
            challenge_id,
            store.PURPOSE_ARMING,
            session_id,
            credential_json,
            trader=principal.name,
            now=now,
            client_address=client_address,
        )
        if isinstance(answered, Refusal):
            return answered
        taken, proof = answered
        limits = records.limits_from_json(taken.limits or {})
        grant = store.StoredGrant(
            grant_id=uuid.uuid4().hex,
            trader=principal.name,
            session_id=session_id,
            symbols=None if limits.symbols is None else tuple(sorted(limits.symbols)),
            max_quantity=limits.max_quantity,
            max_notional=limits.max_notional,
            credential_id=base64url_to_bytes(proof.credential_id),
            sign_count=proof.sign_count,
            authenticator_data_sha256=proof.authenticator_data_sha256,
            client_data_sha256=proof.client_data_sha256,
            synced=proof.synced,
            expires_at=now + timedelta(seconds=self._settings.arming_ttl_s),
        )
        await store.revoke_grants(self._db, session_id, now)
        if not await store.add_grant(self._db, grant, now):
            # The passkey was revoked, the trader disabled or the session ended during the ceremony.
            return await self._refuse(
                _REVOKED,
                trader=principal.name,
                credential_id=proof.credential_id,
                client_address=client_address,
            )
        return records.grant(grant)

    async def current_grant(self, principal: Principal) -> ArmingGrant | None:
        """The session's live grant, read now (never cached); None when unarmed or expired."""
        if principal.session_id is None:
            return None
        stored = await store.live_grant(self._db, principal.session_id, self._clock())
        return None if stored is None else records.grant(stored)

    async def disarm(self, principal: Principal) -> None:
        if principal.session_id is not None:
            await store.revoke_grants(self._db, principal.session_id, self._clock())

    # -- step-up --------------------------------------------------------------------------

    async def begin_step_up(self, principal: Principal, challenge: bytes, order_hash: str) -> Challenge:
        """``challenge`` is derived by the caller from the order it will execute
        (``trading.step_up.step_up_challenge``); the answer must name the same ``order_hash``."""
        session_id = _session(principal)
        now = self._clock()
        options = await self._assertion_options(principal.name, challenge)
        return await self._challenges.issue(
            store.PURPOSE_STEP_UP, challenge, options, now, session_id=session_id, order_hash=order_hash
        )

    async def finish_step_up(
        self,
        principal: Principal,
        challenge_id: str,
        credential_json: str,
        order_hash: str,
        *,
        client_address: str | None = None,
    ) -> AssertionProof | Refusal:
        session_id = _session(principal)
        now = self._clock()

        def same_order(taken: store.TakenChallenge) -> Refusal | None:
            if taken.order_hash == order_hash:
                return None
            return Refusal(
                r.WRONG_ORDER,
                f"this confirmation was for order {str(taken.order_hash)[:12]}, not {order_hash[:12]};"
                " stage the order again and confirm that one",
            )

        answered = await self._answered(
            challenge_id,
            store.PURPOSE_STEP_UP,
            session_id,
            credential_json,
            trader=principal.name,
            now=now,
            client_address=client_address,
            check=same_order,
        )
        return answered if isinstance(answered, Refusal) else answered[1]

    async def authenticators(self, principal: Principal) -> list[AuthenticatorInfo]:
        if principal.trader_session is None:
            return []
        return [records.info(c) for c in await store.trader_credentials(self._db, principal.name)]

    # -- shared ---------------------------------------------------------------------------

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
                    _REVOKED, trader=stored.trader, credential_id=credential.id, client_address=client_address
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


PASSKEY_ADDED = "Passkey Added"
PASSKEY_ADDED_REASON = "auth.passkey_added"
_TRANSPORTS = frozenset(t.value for t in AuthenticatorTransport)
_NOT_CONFIRMED = Refusal(
    r.PASSKEY_NOT_CONFIRMED,
    "adding a passkey needs one you already have to confirm it, just before; begin again",
)
_REVOKED = Refusal(
    r.CREDENTIAL_REVOKED,
    "this passkey was revoked by the operator; use another one, or ask the operator for an enrolment link",
)


def confirmation_challenge(session_id: str, nonce: bytes) -> bytes:
    """The challenge an existing passkey signs to confirm an addition: this session's, this
    nonce's, and no other ceremony's (the domain prefix)."""
    return hashlib.sha256(b"floor/add-passkey/confirm\0" + session_id.encode() + b"\0" + nonce).digest()


def registration_challenge(confirmation: bytes) -> bytes:
    """The new passkey's registration challenge, derived from the confirmation's: the new
    authenticator signs over what the existing passkey confirmed."""
    return hashlib.sha256(b"floor/add-passkey/register\0" + confirmation).digest()


def passkey_added_event(
    *, trader: str, credential_id: str, confirmed_by: str | None, client_address: str | None, now: datetime
) -> SecurityEvent:
    return SecurityEvent(
        event_id=uuid.uuid4().hex,
        ts=now,
        title=PASSKEY_ADDED,
        reason=PASSKEY_ADDED_REASON,
        severity=Severity.WARNING,
        source="api",
        source_address=client_address,
        agent_id=trader_agent_id(trader),
        key_id=credential_id,
        detail={"confirmed_by": confirmed_by or ""},
    )


def _session(principal: Principal) -> str:
    session_id = principal.trader_session
    if session_id is None:
        raise NotATraderSession(f"{principal.name} is not a trader signed in with a passkey")
    return session_id
