"""Taking a trader's access away: a revoked passkey cannot sign in, arm or confirm an order; a
trader signed out everywhere keeps its passkeys; a disabled trader can do nothing at all."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import asyncpg
from webauthn.helpers import base64url_to_bytes

from api import webauthn_results as r
from api.principals import authenticate
from api.webauthn_ceremonies import Ceremonies
from api.webauthn_results import ArmingGrant, AssertionProof, Challenge, GrantLimits, Refusal
from ledger.trader_revocation import Ended, disable_trader, revoke_passkey, sign_out
from ledger.traders import new_enrolment
from tests.fixtures.identity import (
    Trader,
    enrol,
    enrolled_and_signed_in,
    new_trader,
    security_events_of,
    sign_in,
)
from tests.webauthn_authenticator import SoftwareAuthenticator

LIMITS = GrantLimits(None, None, None)
ORDER = hashlib.sha256(b'{"order":"revoked"}').hexdigest()


def any_passkey(options_json: str) -> str:
    """The options as a page could rewrite them: no allowed list, so the authenticator answers
    with whichever passkey it holds (the server must not rely on what it asked for)."""
    options = json.loads(options_json)
    options.pop("allowCredentials", None)
    return json.dumps(options)


async def _second_passkey(ceremonies: Ceremonies, cli_pool: asyncpg.Pool, trader: Trader) -> Trader:
    token, _ = await new_enrolment(cli_pool, trader.name, timedelta(hours=1))
    other = Trader(trader.name, token, SoftwareAuthenticator())
    await enrol(ceremonies, other)
    return other


async def _arm(ceremonies: Ceremonies, trader: Trader, principal: object) -> ArmingGrant | Refusal:
    challenge = await ceremonies.begin_arming(principal, LIMITS)  # type: ignore[arg-type]
    return await ceremonies.finish_arming(
        principal,  # type: ignore[arg-type]
        challenge.challenge_id,
        trader.authenticator.get(any_passkey(challenge.options_json)),
    )


async def _login(ceremonies: Ceremonies, trader: Trader) -> object:
    challenge = await ceremonies.begin_login()
    assert isinstance(challenge, Challenge), challenge
    return await ceremonies.finish_login(
        challenge.challenge_id, trader.authenticator.get(challenge.options_json)
    )


async def test_a_revoked_passkey_cannot_sign_in_arm_or_step_up(
    ceremonies: Ceremonies, cli_pool: asyncpg.Pool, api_pool: asyncpg.Pool, ledger_pool: asyncpg.Pool
) -> None:
    revoked, _, _ = await enrolled_and_signed_in(ceremonies, cli_pool)
    kept = await _second_passkey(ceremonies, cli_pool, revoked)
    principal, cookie = await sign_in(ceremonies, kept)
    credential_id = revoked.authenticator.credentials[0].credential_id
    count_before = await ledger_pool.fetchval(
        "SELECT sign_count FROM webauthn_credentials WHERE credential_id = $1", credential_id
    )

    ended = await revoke_passkey(cli_pool, revoked.name, credential_id)

    assert ended.passkeys == 1 and ended.sessions == 1  # the session the revoked passkey opened
    assert await authenticate(api_pool, cookie=cookie, bearer=None) == principal  # the kept one's
    login = await _login(ceremonies, revoked)
    assert isinstance(login, Refusal) and login.reason == r.CREDENTIAL_REVOKED, login
    arming = await _arm(ceremonies, revoked, principal)
    assert isinstance(arming, Refusal) and arming.reason == r.CREDENTIAL_REVOKED, arming
    step_up = await ceremonies.begin_step_up(principal, hashlib.sha256(ORDER.encode()).digest(), ORDER)
    confirmed = await ceremonies.finish_step_up(
        principal, step_up.challenge_id, revoked.authenticator.get(any_passkey(step_up.options_json)), ORDER
    )
    assert isinstance(confirmed, Refusal) and confirmed.reason == r.CREDENTIAL_REVOKED
    # Its count did not move, and every refusal is on record.
    assert (
        await ledger_pool.fetchval(
            "SELECT sign_count FROM webauthn_credentials WHERE credential_id = $1", credential_id
        )
        == count_before
    )
    reasons = [e["reason"] for e in await security_events_of(ledger_pool, revoked.name)]
    assert reasons.count(r.CREDENTIAL_REVOKED) == 3
    # The other passkey still works, and is the only one the trader is offered.
    assert isinstance(await _arm(ceremonies, kept, principal), ArmingGrant)
    [listed] = await ceremonies.authenticators(principal)
    assert base64url_to_bytes(listed.credential_id) == kept.authenticator.credentials[0].credential_id
    step_up = await ceremonies.begin_step_up(principal, hashlib.sha256(b"x" + ORDER.encode()).digest(), ORDER)
    assert isinstance(
        await ceremonies.finish_step_up(
            principal, step_up.challenge_id, kept.authenticator.get(step_up.options_json), ORDER
        ),
        AssertionProof,
    )


async def test_revoking_a_passkey_ends_the_sessions_it_opened_and_their_grants(
    ceremonies: Ceremonies, cli_pool: asyncpg.Pool, api_pool: asyncpg.Pool
) -> None:
    trader, principal, cookie = await enrolled_and_signed_in(ceremonies, cli_pool)
    assert isinstance(await _arm(ceremonies, trader, principal), ArmingGrant)

    ended = await revoke_passkey(cli_pool, trader.name, trader.authenticator.credentials[0].credential_id)

    assert ended == Ended(passkeys=1, sessions=1, grants=1)
    assert await authenticate(api_pool, cookie=cookie, bearer=None) is None
    assert await ceremonies.current_grant(principal) is None
    # Revoking again changes nothing; another trader cannot be named for it.
    again = await revoke_passkey(cli_pool, trader.name, trader.authenticator.credentials[0].credential_id)
    assert again == Ended(0, 0, 0)


async def test_revoking_names_the_trader_whose_passkey_it_is(
    ceremonies: Ceremonies, cli_pool: asyncpg.Pool, api_pool: asyncpg.Pool
) -> None:
    trader, _, cookie = await enrolled_and_signed_in(ceremonies, cli_pool)
    other = await new_trader(cli_pool)
    ended = await revoke_passkey(cli_pool, other.name, trader.authenticator.credentials[0].credential_id)
    assert ended == Ended(0, 0, 0)
    assert await authenticate(api_pool, cookie=cookie, bearer=None) is not None


async def test_sign_out_ends_every_session_of_the_trader_and_their_grants(
    ceremonies: Ceremonies, cli_pool: asyncpg.Pool, api_pool: asyncpg.Pool
) -> None:
    trader, first, first_cookie = await enrolled_and_signed_in(ceremonies, cli_pool)
    second, second_cookie = await sign_in(ceremonies, trader)
    assert isinstance(await _arm(ceremonies, trader, second), ArmingGrant)

    ended = await sign_out(cli_pool, trader.name)

    assert ended == Ended(passkeys=0, sessions=2, grants=1)
    assert await authenticate(api_pool, cookie=first_cookie, bearer=None) is None
    assert await authenticate(api_pool, cookie=second_cookie, bearer=None) is None
    assert await ceremonies.current_grant(second) is None
    # Its passkeys stay: it signs in again.
    principal, cookie = await sign_in(ceremonies, trader)
    assert await authenticate(api_pool, cookie=cookie, bearer=None) == principal


async def test_a_disabled_trader_cannot_enrol_sign_in_or_keep_its_session(
    ceremonies: Ceremonies, cli_pool: asyncpg.Pool, api_pool: asyncpg.Pool
) -> None:
    trader, principal, cookie = await enrolled_and_signed_in(ceremonies, cli_pool)
    assert isinstance(await _arm(ceremonies, trader, principal), ArmingGrant)
    token, _ = await new_enrolment(cli_pool, trader.name, timedelta(hours=1))
    opened = await ceremonies.begin_registration(token)  # begun before, answered after
    assert isinstance(opened, Challenge)

    ended = await disable_trader(cli_pool, trader.name)

    assert ended == Ended(passkeys=1, sessions=1, grants=1)
    assert await authenticate(api_pool, cookie=cookie, bearer=None) is None
    assert await ceremonies.current_grant(principal) is None
    refused = await ceremonies.begin_registration(token)
    assert isinstance(refused, Refusal) and refused.reason == r.ENROLMENT_INVALID
    assert "disabled" in refused.detail
    late = await ceremonies.finish_registration(
        token, opened.challenge_id, SoftwareAuthenticator().create(opened.options_json)
    )
    assert isinstance(late, Refusal) and late.reason == r.ENROLMENT_INVALID
    login = await _login(ceremonies, trader)
    assert isinstance(login, Refusal) and login.reason == r.CREDENTIAL_REVOKED
    assert await disable_trader(cli_pool, "nobody-at-all") is None
