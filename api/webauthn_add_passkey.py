"""Another passkey for a signed-in trader, confirmed by one the trader has: two ceremonies, an
assertion by an existing passkey (:meth:`PasskeyAddition.confirm_add_passkey`) and the new
passkey's registration, whose challenge is derived from the confirmation's
(:func:`registration_challenge`). Each addition is a ``Warning`` security event."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime

from webauthn.helpers import base64url_to_bytes, bytes_to_base64url

from api import webauthn_records as records
from api import webauthn_results as r
from api.principals import Principal
from api.webauthn_results import AuthenticatorInfo, Challenge, Refusal
from api.webauthn_steps import CHALLENGE_BYTES, CeremonySteps, session_of
from ledger import webauthn_store as store
from ledger.traders import get_trader
from trading.authorization import trader_agent_id
from trading.security_events import SecurityEvent, Severity


class PasskeyAddition(CeremonySteps):
    async def begin_add_passkey(self, principal: Principal) -> Challenge | Refusal:
        """The first of two ceremonies: an assertion, by one of the trader's own passkeys, whose
        challenge is derived from this session and a fresh nonce, and from which the
        registration's challenge is derived in turn (:func:`registration_challenge`): the
        confirmation covers exactly the registration that follows, in this session. A session
        cookie (even of an armed session) is not enough: a passkey outlives the session."""
        session_id = session_of(principal)
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
        session_id = session_of(principal)
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
        session_id = session_of(principal)
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


PASSKEY_ADDED = "Passkey Added"
PASSKEY_ADDED_REASON = "auth.passkey_added"
_NOT_CONFIRMED = Refusal(
    r.PASSKEY_NOT_CONFIRMED,
    "adding a passkey needs one you already have to confirm it, just before; begin again",
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
