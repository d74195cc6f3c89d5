"""Arming: one ceremony inside a web session grants a time-limited grant with the trader's own
limits; the grant is read from Postgres every time, and dies with its session."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import asyncpg

from api import webauthn_results as r
from api.principals import Principal
from api.webauthn_ceremonies import Ceremonies
from api.webauthn_results import ArmingGrant, GrantLimits, Refusal
from tests.fixtures.identity import Clock, enrol, enrolled_and_signed_in, new_trader, sign_in

LIMITS = GrantLimits(symbols=frozenset({"AAPL", "MSFT"}), max_quantity=500, max_notional=Decimal("125000.50"))


async def arm(
    ceremonies: Ceremonies, principal: Principal, answer: Callable[[str], str], limits: GrantLimits = LIMITS
) -> ArmingGrant | Refusal:
    challenge = await ceremonies.begin_arming(principal, limits)
    return await ceremonies.finish_arming(principal, challenge.challenge_id, answer(challenge.options_json))


async def test_arming_grants_the_limits_the_trader_chose_until_the_ttl(
    ceremonies: Ceremonies, cli_pool: asyncpg.Pool, clock: Clock
) -> None:
    trader, principal, _ = await enrolled_and_signed_in(ceremonies, cli_pool)
    assert await ceremonies.current_grant(principal) is None
    grant = await arm(ceremonies, principal, trader.authenticator.get)
    assert isinstance(grant, ArmingGrant)
    assert grant.limits == LIMITS and grant.trader == trader.name and grant.session_id == principal.session_id
    assert grant.proof.trader == trader.name and grant.proof.sign_count == 3 and not grant.proof.synced
    assert len(grant.proof.authenticator_data_sha256) == 64 and len(grant.proof.client_data_sha256) == 64
    assert await ceremonies.current_grant(principal) == grant

    clock.advance(ceremonies._settings.arming_ttl_s - 1)
    assert await ceremonies.current_grant(principal) == grant
    clock.advance(1)
    assert await ceremonies.current_grant(principal) is None


async def test_unlimited_grant_round_trips(ceremonies: Ceremonies, cli_pool: asyncpg.Pool) -> None:
    trader, principal, _ = await enrolled_and_signed_in(ceremonies, cli_pool)
    open_limits = GrantLimits(symbols=None, max_quantity=None, max_notional=None)
    grant = await arm(ceremonies, principal, trader.authenticator.get, open_limits)
    assert isinstance(grant, ArmingGrant) and grant.limits == open_limits
    assert (await ceremonies.current_grant(principal)) == grant


async def test_disarm_and_logout_end_the_grant(ceremonies: Ceremonies, cli_pool: asyncpg.Pool) -> None:
    trader, principal, _ = await enrolled_and_signed_in(ceremonies, cli_pool)
    assert isinstance(await arm(ceremonies, principal, trader.authenticator.get), ArmingGrant)
    await ceremonies.disarm(principal)
    assert await ceremonies.current_grant(principal) is None

    assert isinstance(await arm(ceremonies, principal, trader.authenticator.get), ArmingGrant)
    await ceremonies.logout(principal)
    assert await ceremonies.current_grant(principal) is None


async def test_grant_belongs_to_its_session(ceremonies: Ceremonies, cli_pool: asyncpg.Pool) -> None:
    trader, first, _ = await enrolled_and_signed_in(ceremonies, cli_pool)
    second, _ = await sign_in(ceremonies, trader)
    assert isinstance(await arm(ceremonies, first, trader.authenticator.get), ArmingGrant)
    assert await ceremonies.current_grant(second) is None


async def test_arming_again_replaces_the_grant(ceremonies: Ceremonies, cli_pool: asyncpg.Pool) -> None:
    trader, principal, _ = await enrolled_and_signed_in(ceremonies, cli_pool)
    await arm(ceremonies, principal, trader.authenticator.get)
    tighter = GrantLimits(symbols=frozenset({"AAPL"}), max_quantity=10, max_notional=None)
    newer = await arm(ceremonies, principal, trader.authenticator.get, tighter)
    assert isinstance(newer, ArmingGrant)
    assert await ceremonies.current_grant(principal) == newer


async def test_another_traders_passkey_cannot_arm_my_session(
    ceremonies: Ceremonies, cli_pool: asyncpg.Pool
) -> None:
    _, principal, _ = await enrolled_and_signed_in(ceremonies, cli_pool)
    other = await new_trader(cli_pool)
    await enrol(ceremonies, other)
    challenge = await ceremonies.begin_arming(principal, LIMITS)
    # The other trader's authenticator answers with its own passkey (the options list mine only).
    options = challenge.options_json.replace('"allowCredentials":', '"ignored":')
    refused = await ceremonies.finish_arming(
        principal, challenge.challenge_id, other.authenticator.get(options)
    )
    assert isinstance(refused, Refusal) and refused.reason == r.UNKNOWN_CREDENTIAL
    assert await ceremonies.current_grant(principal) is None


async def test_arming_challenge_of_another_session_is_unknown(
    ceremonies: Ceremonies, cli_pool: asyncpg.Pool
) -> None:
    trader, first, _ = await enrolled_and_signed_in(ceremonies, cli_pool)
    second, _ = await sign_in(ceremonies, trader)
    challenge = await ceremonies.begin_arming(first, LIMITS)
    refused = await ceremonies.finish_arming(
        second, challenge.challenge_id, trader.authenticator.get(challenge.options_json)
    )
    assert isinstance(refused, Refusal) and refused.reason == r.CHALLENGE_UNKNOWN


async def test_arming_without_user_verification_is_refused(
    ceremonies: Ceremonies, cli_pool: asyncpg.Pool
) -> None:
    trader, principal, _ = await enrolled_and_signed_in(ceremonies, cli_pool)
    trader.authenticator.user_verified = False
    refused = await arm(ceremonies, principal, trader.authenticator.get)
    assert isinstance(refused, Refusal) and refused.reason == r.USER_NOT_VERIFIED
    assert await ceremonies.current_grant(principal) is None


async def test_arming_challenge_expires(ceremonies: Ceremonies, cli_pool: asyncpg.Pool, clock: Clock) -> None:
    trader, principal, _ = await enrolled_and_signed_in(ceremonies, cli_pool)
    challenge = await ceremonies.begin_arming(principal, LIMITS)
    answer = trader.authenticator.get(challenge.options_json)
    clock.advance(ceremonies._settings.step_up_ttl_s)
    refused = await ceremonies.finish_arming(principal, challenge.challenge_id, answer)
    assert isinstance(refused, Refusal) and refused.reason == r.CHALLENGE_EXPIRED


async def test_arming_a_session_that_ended_is_refused(ceremonies: Ceremonies, cli_pool: asyncpg.Pool) -> None:
    """A WebSocket's caller was authenticated when it connected: its session may have ended since."""
    trader, principal, _ = await enrolled_and_signed_in(ceremonies, cli_pool)
    challenge = await ceremonies.begin_arming(principal, LIMITS)
    await ceremonies.logout(principal)
    refused = await ceremonies.finish_arming(
        principal, challenge.challenge_id, trader.authenticator.get(challenge.options_json)
    )
    assert isinstance(refused, Refusal) and refused.reason == r.CHALLENGE_UNKNOWN
    assert "session has ended" in refused.detail
