"""Another passkey, added by a trader signed in with one: only when one of the trader's own
passkeys confirms this very addition with a fresh user-verified assertion (an arming grant is
not enough), for the session whose cookie was presented, which the database checks itself; every
addition is a ``Warning`` security event."""

from __future__ import annotations

import json
from datetime import timedelta

import asyncpg
from webauthn.helpers import base64url_to_bytes

from api import webauthn_results as r
from api.principals import Principal
from api.webauthn_add_passkey import PASSKEY_ADDED, PASSKEY_ADDED_REASON
from api.webauthn_ceremonies import Ceremonies
from api.webauthn_results import ArmingGrant, AuthenticatorInfo, Challenge, GrantLimits, Refusal
from ledger import webauthn_store as store
from ledger.traders import get_trader
from tests.fixtures.identity import Clock, Trader, enrolled_and_signed_in, sign_in
from tests.webauthn_authenticator import SoftwareAuthenticator
from trading.authorization import trader_agent_id

UNLIMITED = GrantLimits(None, None, None)


async def armed(ceremonies: Ceremonies, trader: Trader, principal: Principal) -> None:
    challenge = await ceremonies.begin_arming(principal, UNLIMITED)
    grant = await ceremonies.finish_arming(
        principal, challenge.challenge_id, trader.authenticator.get(challenge.options_json)
    )
    assert isinstance(grant, ArmingGrant), grant


async def confirmed(ceremonies: Ceremonies, trader: Trader, principal: Principal, cookie: str) -> Challenge:
    """The registration challenge, once the trader's own passkey confirmed the addition."""
    begun = await ceremonies.begin_add_passkey(principal)
    assert isinstance(begun, Challenge), begun
    registration = await ceremonies.confirm_add_passkey(
        principal, cookie, begun.challenge_id, trader.authenticator.get(begun.options_json)
    )
    assert isinstance(registration, Challenge), registration
    return registration


async def add(
    ceremonies: Ceremonies, trader: Trader, principal: Principal, cookie: str, device: SoftwareAuthenticator
) -> AuthenticatorInfo | Refusal:
    registration = await confirmed(ceremonies, trader, principal, cookie)
    return await ceremonies.finish_add_passkey(
        principal, cookie, registration.challenge_id, device.create(registration.options_json)
    )


async def count(ceremonies: Ceremonies, principal: Principal) -> int:
    return len(await ceremonies.authenticators(principal))


async def test_a_trader_adds_a_synced_passkey_confirmed_by_its_own_which_then_signs_in_as_that_trader(
    ceremonies: Ceremonies, cli_pool: asyncpg.Pool, ledger_pool: asyncpg.Pool
) -> None:
    trader, principal, cookie = await enrolled_and_signed_in(ceremonies, cli_pool)
    phone = SoftwareAuthenticator(backup_eligible=True)

    registration = await confirmed(ceremonies, trader, principal, cookie)
    (existing,) = await ceremonies.authenticators(principal)
    assert existing.credential_id in registration.options_json  # excluded: no second copy of it
    added = await ceremonies.finish_add_passkey(
        principal,
        cookie,
        registration.challenge_id,
        phone.create(registration.options_json),
        client_address="203.0.113.7",
    )
    assert isinstance(added, AuthenticatorInfo), added
    assert added.synced and added.backup_eligible
    assert {a.credential_id for a in await ceremonies.authenticators(principal)} == {
        existing.credential_id,
        added.credential_id,
    }

    event = await ledger_pool.fetchrow(
        "SELECT severity, reason, key_id, remote_addr, detail FROM security_events"
        " WHERE agent_id = $1 AND reason = $2",
        trader_agent_id(trader.name),
        PASSKEY_ADDED_REASON,
    )
    assert event is not None
    detail = json.loads(event["detail"])
    assert (event["severity"], event["key_id"], event["remote_addr"]) == (
        "warning",
        added.credential_id,
        "203.0.113.7",
    )
    assert (detail["title"], detail["confirmed_by"]) == (PASSKEY_ADDED, existing.credential_id)

    _, phone_cookie = await sign_in(ceremonies, Trader(trader.name, "", phone))
    assert phone_cookie != cookie


async def test_an_arming_grant_alone_adds_no_passkey(
    ceremonies: Ceremonies, cli_pool: asyncpg.Pool, api_pool: asyncpg.Pool, clock: Clock
) -> None:
    trader, principal, cookie = await enrolled_and_signed_in(ceremonies, cli_pool)
    await armed(ceremonies, trader, principal)
    # A registration challenge of the session's, never confirmed (what skipping the first
    # ceremony would leave): the database refuses to store its passkey.
    record = await get_trader(api_pool, trader.name)
    assert record is not None
    options = await ceremonies._registration_options(record, b"\x01" * 32)  # noqa: SLF001
    unconfirmed = await ceremonies._challenges.issue(  # noqa: SLF001
        store.PURPOSE_PASSKEY, b"\x01" * 32, options, clock(), session_id=principal.session_id
    )
    device = SoftwareAuthenticator()
    refused = await ceremonies.finish_add_passkey(
        principal, cookie, unconfirmed.challenge_id, device.create(options)
    )
    assert isinstance(refused, Refusal) and refused.reason == r.PASSKEY_NOT_CONFIRMED
    assert await count(ceremonies, principal) == 1


async def test_another_traders_passkey_cannot_confirm_the_addition(
    ceremonies: Ceremonies, cli_pool: asyncpg.Pool
) -> None:
    trader, principal, cookie = await enrolled_and_signed_in(ceremonies, cli_pool)
    other, _, _ = await enrolled_and_signed_in(ceremonies, cli_pool)
    begun = await ceremonies.begin_add_passkey(principal)
    assert isinstance(begun, Challenge)
    options = json.loads(begun.options_json)
    options.pop("allowCredentials", None)  # the other's authenticator answers anyway
    refused = await ceremonies.confirm_add_passkey(
        principal, cookie, begun.challenge_id, other.authenticator.get(json.dumps(options))
    )
    assert isinstance(refused, Refusal) and refused.reason == r.UNKNOWN_CREDENTIAL
    assert await count(ceremonies, principal) == 1


async def test_a_confirmation_without_user_verification_is_refused(
    ceremonies: Ceremonies, cli_pool: asyncpg.Pool
) -> None:
    trader, principal, cookie = await enrolled_and_signed_in(ceremonies, cli_pool)
    begun = await ceremonies.begin_add_passkey(principal)
    assert isinstance(begun, Challenge)
    trader.authenticator.user_verified = False
    refused = await ceremonies.confirm_add_passkey(
        principal, cookie, begun.challenge_id, trader.authenticator.get(begun.options_json)
    )
    assert isinstance(refused, Refusal) and refused.reason == r.USER_NOT_VERIFIED
    assert await count(ceremonies, principal) == 1


async def test_a_replayed_or_expired_confirmation_is_refused(
    ceremonies: Ceremonies, cli_pool: asyncpg.Pool, clock: Clock
) -> None:
    trader, principal, cookie = await enrolled_and_signed_in(ceremonies, cli_pool)
    begun = await ceremonies.begin_add_passkey(principal)
    assert isinstance(begun, Challenge)
    answer = trader.authenticator.get(begun.options_json)
    assert isinstance(
        await ceremonies.confirm_add_passkey(principal, cookie, begun.challenge_id, answer), Challenge
    )
    replayed = await ceremonies.confirm_add_passkey(principal, cookie, begun.challenge_id, answer)
    assert isinstance(replayed, Refusal) and replayed.reason == r.CHALLENGE_UNKNOWN

    late = await ceremonies.begin_add_passkey(principal)
    assert isinstance(late, Challenge)
    clock.now += timedelta(hours=1)
    expired = await ceremonies.confirm_add_passkey(
        principal, cookie, late.challenge_id, trader.authenticator.get(late.options_json)
    )
    assert isinstance(expired, Refusal) and expired.reason == r.CHALLENGE_EXPIRED
    assert await count(ceremonies, principal) == 1


async def test_a_confirmed_addition_adds_one_passkey_only_and_only_with_its_sessions_cookie(
    ceremonies: Ceremonies, cli_pool: asyncpg.Pool
) -> None:
    trader, principal, cookie = await enrolled_and_signed_in(ceremonies, cli_pool)
    # Another session's cookie of the same trader cannot use this session's confirmation.
    _, other_cookie = await sign_in(ceremonies, trader)
    registration = await confirmed(ceremonies, trader, principal, cookie)
    refused = await ceremonies.finish_add_passkey(
        principal,
        other_cookie,
        registration.challenge_id,
        SoftwareAuthenticator().create(registration.options_json),
    )
    assert isinstance(refused, Refusal) and refused.reason == r.PASSKEY_NOT_CONFIRMED

    # The confirmation is used once: answering its registration twice adds nothing more.
    registration = await confirmed(ceremonies, trader, principal, cookie)
    answer = SoftwareAuthenticator().create(registration.options_json)
    assert isinstance(
        await ceremonies.finish_add_passkey(principal, cookie, registration.challenge_id, answer),
        AuthenticatorInfo,
    )
    replayed = await ceremonies.finish_add_passkey(
        principal,
        cookie,
        registration.challenge_id,
        SoftwareAuthenticator().create(registration.options_json),
    )
    assert isinstance(replayed, Refusal) and replayed.reason == r.CHALLENGE_UNKNOWN
    assert await count(ceremonies, principal) == 2


async def test_a_registration_without_user_verification_is_refused(
    ceremonies: Ceremonies, cli_pool: asyncpg.Pool
) -> None:
    trader, principal, cookie = await enrolled_and_signed_in(ceremonies, cli_pool)
    added = await add(ceremonies, trader, principal, cookie, SoftwareAuthenticator(user_verified=False))
    assert isinstance(added, Refusal) and added.reason == r.USER_NOT_VERIFIED
    assert await count(ceremonies, principal) == 1


async def test_the_apis_role_cannot_confirm_or_add_a_passkey_without_the_traders_cookie(
    ceremonies: Ceremonies, cli_pool: asyncpg.Pool, api_pool: asyncpg.Pool
) -> None:
    trader, principal, cookie = await enrolled_and_signed_in(ceremonies, cli_pool)
    registration = await confirmed(ceremonies, trader, principal, cookie)
    (existing,) = await ceremonies.authenticators(principal)
    # The session id is readable by the API's role; the functions take only the cookie's hash.
    by_id = "sha256(convert_to($1, 'UTF8'))"
    assert not await api_pool.fetchval(
        f"SELECT floor_confirm_passkey_addition({by_id}, $2, $3, 60)",
        principal.session_id,
        registration.challenge_id,
        base64url_to_bytes(existing.credential_id),
    )
    stored = await api_pool.fetchval(
        f"SELECT count(*) FROM floor_add_session_passkey({by_id}, $2, '\\x01'::bytea,"
        " '\\x02'::bytea, 0, '{{}}', false, false)",
        principal.session_id,
        registration.challenge_id,
    )
    assert stored == 0
    assert await count(ceremonies, principal) == 1
