"""The WebAuthn ceremonies as mutations: passkey registration (through the enrolment link, or
from a signed-in session, confirmed by a passkey the trader has), sign-in and sign-out, arming and disarming.

Each ceremony is a ``begin*`` mutation answering a :class:`CeremonyChallenge` (options JSON for
``PublicKeyCredential.parseCreationOptionsFromJSON`` / ``parseRequestOptionsFromJSON``) and a
``finish*`` mutation taking the browser's ``credential.toJSON()`` as JSON text. A failed check is
a :class:`WebAuthnRefused` with its dotted reason (``webauthn.*``, ``auth.*``) and what to do.

``finishLogin`` sets the session cookie (HttpOnly, SameSite=Strict, for the session's lifetime),
so it must come over HTTP, not the WebSocket; ``logout`` ends the session and clears it.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

import strawberry
from fastapi import Response

from api.graphql.context import Info
from api.graphql.errors import UNAVAILABLE, Refused
from api.graphql.floor_types import Authenticator, Grant
from api.principals import SESSION_COOKIE, Principal
from api.webauthn_ceremonies import Ceremonies
from api.webauthn_results import Challenge, GrantLimits, Refusal

TRADER_SESSION_REQUIRED = "auth.trader_session_required"
OVER_HTTP_ONLY = "auth.http_only"


@strawberry.type(description="Options for the browser's WebAuthn call, valid until expiresAt.")
class CeremonyChallenge:
    challenge_id: str
    options_json: str = strawberry.field(
        description="PublicKeyCredentialCreationOptions or RequestOptions as JSON text (toJSON() form)."
    )
    expires_at: datetime


@strawberry.type(description="A WebAuthn check failed (webauthn.*) or the caller cannot do this (auth.*).")
class WebAuthnRefused:
    reason: str
    detail: str


@strawberry.type(description="Signed in: the session cookie is set.")
class SignedIn:
    trader: str
    role: str
    accounts: list[str]
    step_up_every_order: bool


@strawberry.type(description="Signed out: the session and its arming grant are over.")
class SignedOut:
    signed_out: bool


@strawberry.type(description="Disarmed: Execute is refused until the next arming.")
class Disarmed:
    disarmed: bool


@strawberry.input(description="The limits a trader arms with; leave one out for no limit of that kind.")
class ArmingLimitsInput:
    symbols: list[str] | None = None
    max_quantity: int | None = None
    max_notional: Decimal | None = None


ChallengeResult = Annotated[CeremonyChallenge | WebAuthnRefused, strawberry.union("ChallengeResult")]
RegistrationResult = Annotated[Authenticator | WebAuthnRefused, strawberry.union("RegistrationResult")]
LoginResult = Annotated[SignedIn | WebAuthnRefused, strawberry.union("LoginResult")]
ArmingResult = Annotated[Grant | WebAuthnRefused, strawberry.union("ArmingResult")]


@strawberry.type
class AuthMutations:
    @strawberry.mutation(description="Start registering a passkey with the token of an enrolment link.")
    async def begin_registration(self, info: Info, enrolment_token: str) -> ChallengeResult:
        return _challenge(
            await _ceremonies(info).begin_registration(
                enrolment_token, client_address=info.context.client_address
            )
        )

    @strawberry.mutation(
        description="Finish registering: the credential JSON of navigator.credentials.create()."
    )
    async def finish_registration(
        self, info: Info, enrolment_token: str, challenge_id: str, credential: str
    ) -> RegistrationResult:
        outcome = await _ceremonies(info).finish_registration(
            enrolment_token, challenge_id, credential, client_address=info.context.client_address
        )
        if isinstance(outcome, Refusal):
            return _refused(outcome)
        return Authenticator.of(outcome)

    @strawberry.mutation(description="Start a passkey sign-in.")
    async def begin_login(self, info: Info) -> ChallengeResult:
        return _challenge(await _ceremonies(info).begin_login())

    @strawberry.mutation(description="Finish signing in (over HTTP): sets the session cookie.")
    async def finish_login(self, info: Info, challenge_id: str, credential: str) -> LoginResult:
        response = info.context.response
        if not isinstance(response, Response):
            return WebAuthnRefused(
                reason=OVER_HTTP_ONLY,
                detail="sign in with a POST to /graphql: the session cookie cannot be set over a WebSocket",
            )
        outcome = await _ceremonies(info).finish_login(
            challenge_id, credential, client_address=info.context.client_address
        )
        if isinstance(outcome, Refusal):
            return _refused(outcome)
        principal, cookie = outcome
        settings = info.context.services.settings
        response.set_cookie(
            SESSION_COOKIE,
            cookie,
            max_age=settings.session_ttl_s,
            path="/",
            httponly=True,
            samesite="strict",
            secure=settings.webauthn_origin.startswith("https://"),
        )
        return SignedIn(
            trader=principal.name,
            role=principal.role,
            accounts=sorted(principal.accounts),
            step_up_every_order=principal.step_up_every_order,
        )

    @strawberry.mutation(description="Sign out: ends the session and its arming grant, clears the cookie.")
    async def logout(self, info: Info) -> SignedOut:
        principal = info.context.caller()
        await _ceremonies(info).logout(principal)
        if isinstance(info.context.response, Response):
            info.context.response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return SignedOut(signed_out=principal.session_id is not None)

    @strawberry.mutation(description="Start arming with the limits you choose (a trader's session).")
    async def begin_arming(self, info: Info, limits: ArmingLimitsInput | None = None) -> ChallengeResult:
        principal = info.context.caller()
        if not _trader_session(principal):
            return _not_a_trader()
        chosen = limits or ArmingLimitsInput()
        grant_limits = GrantLimits(
            symbols=None if chosen.symbols is None else frozenset(s.upper() for s in chosen.symbols),
            max_quantity=chosen.max_quantity,
            max_notional=chosen.max_notional,
        )
        if (grant_limits.max_quantity is not None and grant_limits.max_quantity <= 0) or (
            grant_limits.max_notional is not None and grant_limits.max_notional <= 0
        ):
            return WebAuthnRefused(
                reason="webauthn.malformed", detail="a limit must be positive; leave it out for none"
            )
        return _challenge_of(await _ceremonies(info).begin_arming(principal, grant_limits))

    @strawberry.mutation(description="Finish arming: the assertion of navigator.credentials.get().")
    async def finish_arming(self, info: Info, challenge_id: str, credential: str) -> ArmingResult:
        principal = info.context.caller()
        if not _trader_session(principal):
            return _not_a_trader()
        outcome = await _ceremonies(info).finish_arming(
            principal, challenge_id, credential, client_address=info.context.client_address
        )
        if isinstance(outcome, Refusal):
            return _refused(outcome)
        return Grant.of(outcome)

    @strawberry.mutation(
        description="Start adding another passkey from a signed-in session: an assertion (options"
        " for navigator.credentials.get()) by one of your passkeys, confirming this addition."
    )
    async def begin_add_passkey(self, info: Info) -> ChallengeResult:
        principal = info.context.caller()
        if not _trader_session(principal):
            return _not_a_trader("adding a passkey")
        return _challenge(await _ceremonies(info).begin_add_passkey(principal))

    @strawberry.mutation(
        description="Confirm adding a passkey: the assertion of navigator.credentials.get(); answers"
        " the new passkey's registration options (for navigator.credentials.create())."
    )
    async def confirm_add_passkey(self, info: Info, challenge_id: str, credential: str) -> ChallengeResult:
        principal = info.context.caller()
        cookie = info.context.session_cookie()
        if not _trader_session(principal) or cookie is None:
            return _not_a_trader("adding a passkey")
        return _challenge(
            await _ceremonies(info).confirm_add_passkey(
                principal, cookie, challenge_id, credential, client_address=info.context.client_address
            )
        )

    @strawberry.mutation(
        description="Finish adding a passkey: the credential JSON of navigator.credentials.create()."
    )
    async def finish_add_passkey(self, info: Info, challenge_id: str, credential: str) -> RegistrationResult:
        principal = info.context.caller()
        cookie = info.context.session_cookie()
        if not _trader_session(principal) or cookie is None:
            return _not_a_trader("adding a passkey")
        outcome = await _ceremonies(info).finish_add_passkey(
            principal, cookie, challenge_id, credential, client_address=info.context.client_address
        )
        if isinstance(outcome, Refusal):
            return _refused(outcome)
        return Authenticator.of(outcome)

    @strawberry.mutation(description="Disarm: Execute is refused from now on, until you arm again.")
    async def disarm(self, info: Info) -> Disarmed:
        principal = info.context.caller()
        await _ceremonies(info).disarm(principal)
        return Disarmed(disarmed=principal.session_id is not None)


def _ceremonies(info: Info) -> Ceremonies:
    ceremonies = info.context.services.ceremonies
    if ceremonies is None:
        raise Refused(UNAVAILABLE, "this API process serves no traders (no WebAuthn ceremonies)")
    return ceremonies


def _trader_session(principal: Principal) -> bool:
    return principal.trader_session is not None


def _not_a_trader(what: str = "arming") -> WebAuthnRefused:
    return WebAuthnRefused(
        reason=TRADER_SESSION_REQUIRED,
        detail=f"{what} is for a trader signed in with a passkey; programs trade with signed commands",
    )


def _refused(refusal: Refusal) -> WebAuthnRefused:
    return WebAuthnRefused(reason=refusal.reason, detail=refusal.detail)


def _challenge_of(challenge: Challenge) -> CeremonyChallenge:
    return CeremonyChallenge(
        challenge_id=challenge.challenge_id,
        options_json=challenge.options_json,
        expires_at=challenge.expires_at,
    )


def _challenge(outcome: Challenge | Refusal) -> CeremonyChallenge | WebAuthnRefused:
    return _refused(outcome) if isinstance(outcome, Refusal) else _challenge_of(outcome)
