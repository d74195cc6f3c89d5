"""Passkey registration through the one-time enrolment link `floor traders add` prints."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from api import webauthn_results as r
from api.webauthn_ceremonies import Ceremonies
from api.webauthn_results import AuthenticatorInfo, Challenge, Refusal
from tests.fixtures.identity import Clock, enrol, new_trader, security_events_of
from tests.webauthn_authenticator import SoftwareAuthenticator


async def test_enrolment_link_registers_a_passkey_once(
    ceremonies: Ceremonies, cli_pool: asyncpg.Pool
) -> None:
    trader = await new_trader(cli_pool)
    info = await enrol(ceremonies, trader)
    assert info.sign_count == 1 and not info.synced and info.transports == ("internal",)

    again = await ceremonies.begin_registration(trader.enrolment_token)
    assert isinstance(again, Refusal) and again.reason == r.ENROLMENT_INVALID
    assert "already used" in again.detail


async def test_two_registrations_racing_on_one_link_store_one_passkey(
    ceremonies: Ceremonies, cli_pool: asyncpg.Pool
) -> None:
    trader = await new_trader(cli_pool)
    first = await ceremonies.begin_registration(trader.enrolment_token)
    second = await ceremonies.begin_registration(trader.enrolment_token)
    assert isinstance(first, Challenge) and isinstance(second, Challenge)
    other = SoftwareAuthenticator()
    answer_one = trader.authenticator.create(first.options_json)
    answer_two = other.create(second.options_json)
    ok = await ceremonies.finish_registration(trader.enrolment_token, first.challenge_id, answer_one)
    late = await ceremonies.finish_registration(trader.enrolment_token, second.challenge_id, answer_two)
    assert isinstance(ok, AuthenticatorInfo)
    assert isinstance(late, Refusal) and late.reason == r.ENROLMENT_INVALID


async def test_expired_enrolment_link_is_refused(
    ceremonies: Ceremonies, cli_pool: asyncpg.Pool, clock: Clock
) -> None:
    trader = await new_trader(cli_pool, ttl=timedelta(minutes=5))
    clock.advance(5 * 60 + 1)
    refused = await ceremonies.begin_registration(trader.enrolment_token)
    assert isinstance(refused, Refusal) and refused.reason == r.ENROLMENT_INVALID
    assert "expired" in refused.detail


async def test_unknown_enrolment_token_is_refused(ceremonies: Ceremonies) -> None:
    refused = await ceremonies.begin_registration("not-a-token")
    assert isinstance(refused, Refusal) and refused.reason == r.ENROLMENT_INVALID


async def test_registration_without_user_verification_is_refused_and_leaves_the_link_usable(
    ceremonies: Ceremonies, cli_pool: asyncpg.Pool
) -> None:
    trader = await new_trader(cli_pool, authenticator=SoftwareAuthenticator(user_verified=False))
    challenge = await ceremonies.begin_registration(trader.enrolment_token)
    assert isinstance(challenge, Challenge)
    refused = await ceremonies.finish_registration(
        trader.enrolment_token, challenge.challenge_id, trader.authenticator.create(challenge.options_json)
    )
    assert isinstance(refused, Refusal) and refused.reason == r.USER_NOT_VERIFIED
    trader.authenticator.user_verified = True
    await enrol(ceremonies, trader)
    assert [e["reason"] for e in await security_events_of(cli_pool, trader.name)] == [r.USER_NOT_VERIFIED]


async def test_registration_from_another_origin_or_for_another_rp_is_refused(
    ceremonies: Ceremonies, cli_pool: asyncpg.Pool
) -> None:
    for authenticator, reason in (
        (SoftwareAuthenticator(origin="http://evil.example:8000"), r.ORIGIN_MISMATCH),
        (SoftwareAuthenticator(rp_id="evil.example"), r.RP_ID_MISMATCH),
        (SoftwareAuthenticator(cross_origin=True), r.CROSS_ORIGIN),
    ):
        trader = await new_trader(cli_pool, authenticator=authenticator)
        challenge = await ceremonies.begin_registration(trader.enrolment_token)
        assert isinstance(challenge, Challenge)
        refused = await ceremonies.finish_registration(
            trader.enrolment_token, challenge.challenge_id, authenticator.create(challenge.options_json)
        )
        assert isinstance(refused, Refusal) and refused.reason == reason, (reason, refused)


async def test_registration_answer_is_single_use_and_malformed_json_is_named(
    ceremonies: Ceremonies, cli_pool: asyncpg.Pool
) -> None:
    trader = await new_trader(cli_pool)
    challenge = await ceremonies.begin_registration(trader.enrolment_token)
    assert isinstance(challenge, Challenge)
    malformed = await ceremonies.finish_registration(
        trader.enrolment_token, challenge.challenge_id, "{not json"
    )
    assert isinstance(malformed, Refusal) and malformed.reason == r.MALFORMED
    # The malformed answer used the challenge: a good answer to it now is refused.
    reused = await ceremonies.finish_registration(
        trader.enrolment_token, challenge.challenge_id, trader.authenticator.create(challenge.options_json)
    )
    assert isinstance(reused, Refusal) and reused.reason == r.CHALLENGE_UNKNOWN


async def test_registration_challenge_expires(
    ceremonies: Ceremonies, cli_pool: asyncpg.Pool, clock: Clock
) -> None:
    trader = await new_trader(cli_pool)
    challenge = await ceremonies.begin_registration(trader.enrolment_token)
    assert isinstance(challenge, Challenge)
    answer = trader.authenticator.create(challenge.options_json)
    clock.advance(121)
    refused = await ceremonies.finish_registration(trader.enrolment_token, challenge.challenge_id, answer)
    assert isinstance(refused, Refusal) and refused.reason == r.CHALLENGE_EXPIRED
