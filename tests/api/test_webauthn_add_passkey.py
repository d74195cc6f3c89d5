"""Another passkey, added by a trader signed in with one: only while the session is armed (a
user-verified ceremony of the last minutes), and only for the session whose cookie was
presented, which the database checks itself."""

from __future__ import annotations

import asyncpg

from api import webauthn_results as r
from api.principals import Principal
from api.webauthn_ceremonies import Ceremonies
from api.webauthn_results import ArmingGrant, AuthenticatorInfo, Challenge, GrantLimits, Refusal
from tests.fixtures.identity import Trader, enrolled_and_signed_in, sign_in
from tests.webauthn_authenticator import SoftwareAuthenticator

UNLIMITED = GrantLimits(None, None, None)


async def armed(ceremonies: Ceremonies, trader: Trader, principal: Principal) -> None:
    challenge = await ceremonies.begin_arming(principal, UNLIMITED)
    grant = await ceremonies.finish_arming(
        principal, challenge.challenge_id, trader.authenticator.get(challenge.options_json)
    )
    assert isinstance(grant, ArmingGrant), grant


async def add(
    ceremonies: Ceremonies, principal: Principal, cookie: str, device: SoftwareAuthenticator
) -> AuthenticatorInfo | Refusal:
    challenge = await ceremonies.begin_add_passkey(principal)
    assert isinstance(challenge, Challenge), challenge
    return await ceremonies.finish_add_passkey(
        principal, cookie, challenge.challenge_id, device.create(challenge.options_json)
    )


async def test_an_armed_trader_adds_a_synced_passkey_that_then_signs_in_as_that_trader(
    ceremonies: Ceremonies, cli_pool: asyncpg.Pool
) -> None:
    trader, principal, cookie = await enrolled_and_signed_in(ceremonies, cli_pool)
    await armed(ceremonies, trader, principal)
    phone = SoftwareAuthenticator(backup_eligible=True)

    challenge = await ceremonies.begin_add_passkey(principal)
    assert isinstance(challenge, Challenge)
    (existing,) = await ceremonies.authenticators(principal)
    assert existing.credential_id in challenge.options_json  # excluded: no second copy of it
    added = await ceremonies.finish_add_passkey(
        principal, cookie, challenge.challenge_id, phone.create(challenge.options_json)
    )
    assert isinstance(added, AuthenticatorInfo), added
    assert added.synced and added.backup_eligible
    assert {a.credential_id for a in await ceremonies.authenticators(principal)} == {
        existing.credential_id,
        added.credential_id,
    }

    _, phone_cookie = await sign_in(ceremonies, Trader(trader.name, "", phone))
    assert phone_cookie != cookie


async def test_without_a_live_grant_no_passkey_is_added(
    ceremonies: Ceremonies, cli_pool: asyncpg.Pool
) -> None:
    trader, principal, cookie = await enrolled_and_signed_in(ceremonies, cli_pool)
    unarmed = await ceremonies.begin_add_passkey(principal)
    assert isinstance(unarmed, Refusal) and unarmed.reason == r.NOT_ARMED

    # Armed when the ceremony began, disarmed before it finished: the database refuses.
    await armed(ceremonies, trader, principal)
    challenge = await ceremonies.begin_add_passkey(principal)
    assert isinstance(challenge, Challenge)
    await ceremonies.disarm(principal)
    late = await ceremonies.finish_add_passkey(
        principal, cookie, challenge.challenge_id, SoftwareAuthenticator().create(challenge.options_json)
    )
    assert isinstance(late, Refusal) and late.reason == r.NOT_ARMED
    assert len(await ceremonies.authenticators(principal)) == 1


async def test_the_grant_is_checked_on_the_session_of_the_cookie_presented(
    ceremonies: Ceremonies, cli_pool: asyncpg.Pool
) -> None:
    trader, principal, _ = await enrolled_and_signed_in(ceremonies, cli_pool)
    await armed(ceremonies, trader, principal)
    # A second session of the same trader, never armed: its cookie adds nothing, whatever
    # session the API believes it serves.
    _, unarmed_cookie = await sign_in(ceremonies, trader)
    refused = await add(ceremonies, principal, unarmed_cookie, SoftwareAuthenticator())
    assert isinstance(refused, Refusal) and refused.reason == r.NOT_ARMED
    assert len(await ceremonies.authenticators(principal)) == 1


async def test_a_registration_without_user_verification_or_answering_twice_is_refused(
    ceremonies: Ceremonies, cli_pool: asyncpg.Pool
) -> None:
    trader, principal, cookie = await enrolled_and_signed_in(ceremonies, cli_pool)
    await armed(ceremonies, trader, principal)
    challenge = await ceremonies.begin_add_passkey(principal)
    assert isinstance(challenge, Challenge)
    no_uv = SoftwareAuthenticator(user_verified=False).create(challenge.options_json)
    refused = await ceremonies.finish_add_passkey(principal, cookie, challenge.challenge_id, no_uv)
    assert isinstance(refused, Refusal) and refused.reason == r.USER_NOT_VERIFIED

    answer = SoftwareAuthenticator().create(challenge.options_json)
    replayed = await ceremonies.finish_add_passkey(principal, cookie, challenge.challenge_id, answer)
    assert isinstance(replayed, Refusal) and replayed.reason == r.CHALLENGE_UNKNOWN
    assert len(await ceremonies.authenticators(principal)) == 1


async def test_the_apis_role_cannot_add_a_passkey_without_the_traders_cookie(
    ceremonies: Ceremonies, cli_pool: asyncpg.Pool, api_pool: asyncpg.Pool
) -> None:
    trader, principal, _ = await enrolled_and_signed_in(ceremonies, cli_pool)
    await armed(ceremonies, trader, principal)
    # The session id is readable by the API's role; the function takes only the cookie's hash.
    stored = await api_pool.fetchval(
        "SELECT count(*) FROM floor_add_session_passkey(sha256(convert_to($1, 'UTF8')), '\\x01'::bytea,"
        " '\\x02'::bytea, 0, '{}', false, false)",
        principal.session_id,
    )
    assert stored == 0
    assert len(await ceremonies.authenticators(principal)) == 1
