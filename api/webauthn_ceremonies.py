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

The steps the ceremonies share are :mod:`api.webauthn_steps`; adding a passkey to a signed-in
trader is :mod:`api.webauthn_add_passkey`.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from webauthn import generate_authentication_options, options_to_json
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.structs import UserVerificationRequirement

from api import webauthn_records as records
from api import webauthn_results as r
from api.principals import Principal, trader_principal
from api.webauthn_add_passkey import PasskeyAddition
from api.webauthn_results import (
    ArmingGrant,
    AssertionProof,
    AuthenticatorInfo,
    Challenge,
    GrantLimits,
    Refusal,
)
from api.webauthn_steps import CHALLENGE_BYTES, REVOKED, CeremonySteps, session_of
from config.settings import FloorSettings
from ledger import webauthn_store as store
from ledger.db import Db
from ledger.secret_tokens import new_secret
from ledger.traders import Enrolment, find_enrolment, get_trader
from observability.security import SecurityRecorder

__all__ = [
    "ArmingGrant",
    "AssertionProof",
    "AuthenticatorInfo",
    "Ceremonies",
    "Challenge",
    "GrantLimits",
    "Refusal",
]


class Ceremonies(CeremonySteps):
    def __init__(
        self,
        db: Db,
        settings: FloorSettings,
        security: SecurityRecorder,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(db, settings, security, clock=clock)
        self._addition = PasskeyAddition(db, settings, security, clock=self._clock)

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

    # -- another passkey, confirmed by one the trader has (:mod:`api.webauthn_add_passkey`) ---

    async def begin_add_passkey(self, principal: Principal) -> Challenge | Refusal:
        return await self._addition.begin_add_passkey(principal)

    async def confirm_add_passkey(
        self,
        principal: Principal,
        cookie: str,
        challenge_id: str,
        credential_json: str,
        *,
        client_address: str | None = None,
    ) -> Challenge | Refusal:
        return await self._addition.confirm_add_passkey(
            principal, cookie, challenge_id, credential_json, client_address=client_address
        )

    async def finish_add_passkey(
        self,
        principal: Principal,
        cookie: str,
        challenge_id: str,
        credential_json: str,
        *,
        client_address: str | None = None,
    ) -> AuthenticatorInfo | Refusal:
        return await self._addition.finish_add_passkey(
            principal, cookie, challenge_id, credential_json, client_address=client_address
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
                REVOKED,
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
        session_id = session_of(principal)
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
        session_id = session_of(principal)
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
                REVOKED,
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
        session_id = session_of(principal)
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
        session_id = session_of(principal)
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
