"""Passkey sign-in: a web session the cookie names; replays, clones and forgeries refused."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import timedelta

import asyncpg
from webauthn.helpers import base64url_to_bytes

from api import webauthn_results as r
from api.principals import authenticate
from api.webauthn_ceremonies import Ceremonies
from api.webauthn_results import GrantLimits, Refusal
from observability.security import CRITICAL_BREACH, SECURITY_REFUSAL
from tests.fixtures.identity import Clock, enrol, new_trader, security_events_of, sign_in
from tests.webauthn_authenticator import SoftwareAuthenticator


async def test_sign_in_opens_a_session_the_cookie_names(
    ceremonies: Ceremonies, cli_pool: asyncpg.Pool, api_pool: asyncpg.Pool, ledger_pool: asyncpg.Pool
) -> None:
    trader = await new_trader(cli_pool, accounts=("DU1", "DU2"), step_up_every_order=True)
    await enrol(ceremonies, trader)
    principal, cookie = await sign_in(ceremonies, trader)
    assert (principal.name, principal.kind, principal.role) == (trader.name, "trader", "trader")
    assert principal.accounts == {"DU1", "DU2"} and principal.sees("DU1") and not principal.sees("DU3")
    assert principal.step_up_every_order and not principal.is_ops
    assert await authenticate(api_pool, cookie=cookie, bearer=None) == principal
    assert await authenticate(api_pool, cookie=cookie + "x", bearer=None) is None
    hashes = await ledger_pool.fetch(
        "SELECT token_hash FROM web_sessions WHERE session_id = $1", principal.session_id
    )
    assert [bytes(h["token_hash"]) for h in hashes] == [hashlib.sha256(cookie.encode()).digest()]


async def test_the_session_keeps_its_sign_in_assertion_while_it_lives(
    ceremonies: Ceremonies, cli_pool: asyncpg.Pool, clock: Clock
) -> None:
    """What a trader's cancels and the breaker's trip record as their authorization: the very
    assertion that opened the session, until the session ends."""
    trader = await new_trader(cli_pool)
    await enrol(ceremonies, trader)
    challenge = await ceremonies.begin_login()
    answer = trader.authenticator.get(challenge.options_json)
    opened = await ceremonies.finish_login(challenge.challenge_id, answer)
    assert isinstance(opened, tuple), opened
    principal, _ = opened
    credential = json.loads(answer)

    proof = await ceremonies.session_proof(principal)

    assert proof is not None
    assert (proof.trader, proof.credential_id) == (trader.name, credential["rawId"])
    response = credential["response"]
    assert (
        proof.authenticator_data_sha256
        == hashlib.sha256(base64url_to_bytes(response["authenticatorData"])).hexdigest()
    )
    assert (
        proof.client_data_sha256 == hashlib.sha256(base64url_to_bytes(response["clientDataJSON"])).hexdigest()
    )
    # The count the assertion carried, which is now the passkey's stored count.
    assert proof.sign_count > 0
    assert [a.sign_count for a in await ceremonies.authenticators(principal)] == [proof.sign_count]
    # Arming later does not change what signed the trader in.
    arming = await ceremonies.begin_arming(principal, GrantLimits(None, None, None))
    await ceremonies.finish_arming(
        principal, arming.challenge_id, trader.authenticator.get(arming.options_json)
    )
    assert await ceremonies.session_proof(principal) == proof

    clock.advance(ceremonies._settings.session_ttl_s)
    assert await ceremonies.session_proof(principal) is None


async def test_a_signed_out_session_has_no_sign_in_assertion(
    ceremonies: Ceremonies, cli_pool: asyncpg.Pool
) -> None:
    trader = await new_trader(cli_pool)
    await enrol(ceremonies, trader)
    principal, _ = await sign_in(ceremonies, trader)
    await ceremonies.logout(principal)
    assert await ceremonies.session_proof(principal) is None


async def test_logout_revokes_the_session(
    ceremonies: Ceremonies, cli_pool: asyncpg.Pool, api_pool: asyncpg.Pool
) -> None:
    trader = await new_trader(cli_pool)
    await enrol(ceremonies, trader)
    principal, cookie = await sign_in(ceremonies, trader)
    await ceremonies.logout(principal)
    assert await authenticate(api_pool, cookie=cookie, bearer=None) is None


async def test_session_expires_after_its_ttl(
    ceremonies: Ceremonies, cli_pool: asyncpg.Pool, api_pool: asyncpg.Pool, clock: Clock
) -> None:
    trader = await new_trader(cli_pool)
    await enrol(ceremonies, trader)
    _, cookie = await sign_in(ceremonies, trader)
    ttl = ceremonies._settings.session_ttl_s
    assert await authenticate(
        api_pool, cookie=cookie, bearer=None, now=clock.now + timedelta(seconds=ttl - 1)
    )
    assert (
        await authenticate(api_pool, cookie=cookie, bearer=None, now=clock.now + timedelta(seconds=ttl))
        is None
    )


async def test_ops_trader_has_the_ops_role(ceremonies: Ceremonies, cli_pool: asyncpg.Pool) -> None:
    trader = await new_trader(cli_pool, ops=True, accounts=("*",))
    await enrol(ceremonies, trader)
    principal, _ = await sign_in(ceremonies, trader)
    assert principal.role == "ops" and principal.is_ops and principal.sees("ANY")


async def test_replayed_assertion_is_refused(ceremonies: Ceremonies, cli_pool: asyncpg.Pool) -> None:
    trader = await new_trader(cli_pool)
    await enrol(ceremonies, trader)
    challenge = await ceremonies.begin_login()
    answer = trader.authenticator.get(challenge.options_json)
    assert isinstance(await ceremonies.finish_login(challenge.challenge_id, answer), tuple)
    # The same answer again: to its own (used) challenge, and to a fresh one.
    again = await ceremonies.finish_login(challenge.challenge_id, answer)
    assert isinstance(again, Refusal) and again.reason == r.CHALLENGE_UNKNOWN
    fresh = await ceremonies.begin_login()
    replayed = await ceremonies.finish_login(fresh.challenge_id, answer)
    assert isinstance(replayed, Refusal) and replayed.reason == r.CHALLENGE_UNKNOWN


async def test_cloned_authenticator_whose_count_does_not_increase_is_a_critical_breach(
    ceremonies: Ceremonies, cli_pool: asyncpg.Pool, api_pool: asyncpg.Pool
) -> None:
    trader = await new_trader(cli_pool)
    info = await enrol(ceremonies, trader)
    await sign_in(ceremonies, trader)  # count 2 stored
    trader.authenticator.sign_count = "fixed"  # a copy made at count 2 keeps answering 2
    challenge = await ceremonies.begin_login()
    refused = await ceremonies.finish_login(
        challenge.challenge_id, trader.authenticator.get(challenge.options_json)
    )
    assert isinstance(refused, Refusal) and refused.reason == r.SIGN_COUNT_REPLAYED
    events = await security_events_of(api_pool, trader.name)
    assert (events[-1]["reason"], events[-1]["severity"], events[-1]["title"]) == (
        r.SIGN_COUNT_REPLAYED,
        "critical",
        CRITICAL_BREACH,
    )
    stored = await api_pool.fetchval(
        "SELECT sign_count FROM webauthn_credentials WHERE trader = $1", trader.name
    )
    assert stored == 2 and info.sign_count == 1


async def test_synced_passkey_with_zero_counts_signs_in_and_is_reported_synced(
    ceremonies: Ceremonies, cli_pool: asyncpg.Pool
) -> None:
    trader = await new_trader(cli_pool, authenticator=SoftwareAuthenticator(sign_count="zero"))
    info = await enrol(ceremonies, trader)
    assert info.sign_count == 0 and info.synced
    principal, _ = await sign_in(ceremonies, trader)
    await sign_in(ceremonies, trader)
    [listed] = await ceremonies.authenticators(principal)
    assert listed.synced and listed.sign_count == 0 and listed.last_used_at is not None


async def test_backup_eligible_passkey_is_reported_synced(
    ceremonies: Ceremonies, cli_pool: asyncpg.Pool
) -> None:
    trader = await new_trader(cli_pool, authenticator=SoftwareAuthenticator(backup_eligible=True))
    info = await enrol(ceremonies, trader)
    assert info.synced and info.backup_eligible and info.backed_up and info.sign_count == 1


async def test_each_bad_assertion_is_refused_by_name(
    ceremonies: Ceremonies, cli_pool: asyncpg.Pool, api_pool: asyncpg.Pool
) -> None:
    trader = await new_trader(cli_pool)
    await enrol(ceremonies, trader)
    authenticator = trader.authenticator
    cases = {
        r.ORIGIN_MISMATCH: {"origin": "http://127.0.0.1:8000"},
        r.RP_ID_MISMATCH: {"rp_id": "evil.example"},
        r.CROSS_ORIGIN: {"cross_origin": True},
        r.USER_NOT_VERIFIED: {"user_verified": False},
    }
    for reason, knobs in cases.items():
        for knob, value in knobs.items():
            setattr(authenticator, knob, value)
        challenge = await ceremonies.begin_login()
        refused = await ceremonies.finish_login(
            challenge.challenge_id, authenticator.get(challenge.options_json)
        )
        assert isinstance(refused, Refusal) and refused.reason == reason, (reason, refused)
        for knob in knobs:
            setattr(authenticator, knob, getattr(SoftwareAuthenticator(), knob))
    challenge = await ceremonies.begin_login()
    forged = await ceremonies.finish_login(
        challenge.challenge_id, authenticator.get(challenge.options_json, break_signature=True)
    )
    assert isinstance(forged, Refusal) and forged.reason == r.BAD_SIGNATURE
    stranger = SoftwareAuthenticator()
    stranger.create(await _registration_options_for_nobody(ceremonies, cli_pool))
    challenge = await ceremonies.begin_login()
    unknown = await ceremonies.finish_login(challenge.challenge_id, stranger.get(challenge.options_json))
    assert isinstance(unknown, Refusal) and unknown.reason == r.UNKNOWN_CREDENTIAL
    events = await security_events_of(api_pool, trader.name)
    assert [(e["reason"], e["title"]) for e in events] == [
        (r.ORIGIN_MISMATCH, SECURITY_REFUSAL),
        (r.RP_ID_MISMATCH, SECURITY_REFUSAL),
        (r.CROSS_ORIGIN, SECURITY_REFUSAL),
        (r.USER_NOT_VERIFIED, SECURITY_REFUSAL),
        (r.BAD_SIGNATURE, CRITICAL_BREACH),
    ]
    # None of the refused answers moved the stored count (the good sign-in never happened).
    assert (
        await api_pool.fetchval("SELECT sign_count FROM webauthn_credentials WHERE trader = $1", trader.name)
        == 1
    )


async def _registration_options_for_nobody(ceremonies: Ceremonies, cli_pool: asyncpg.Pool) -> str:
    """Options for a passkey that is never registered (its enrolment is never finished)."""
    other = await new_trader(cli_pool)
    challenge = await ceremonies.begin_registration(other.enrolment_token)
    assert not isinstance(challenge, Refusal)
    return challenge.options_json


async def test_malformed_and_unknown_challenge_are_named(ceremonies: Ceremonies) -> None:
    challenge = await ceremonies.begin_login()
    malformed = await ceremonies.finish_login(challenge.challenge_id, '{"id": 1}')
    assert isinstance(malformed, Refusal) and malformed.reason == r.MALFORMED
    unknown = await ceremonies.finish_login("no-such-challenge", "{}")
    assert isinstance(unknown, Refusal) and unknown.reason == r.CHALLENGE_UNKNOWN


async def test_login_challenge_expires(ceremonies: Ceremonies, cli_pool: asyncpg.Pool, clock: Clock) -> None:
    trader = await new_trader(cli_pool)
    await enrol(ceremonies, trader)
    challenge = await ceremonies.begin_login()
    answer = trader.authenticator.get(challenge.options_json)
    clock.advance(ceremonies._settings.step_up_ttl_s)
    refused = await ceremonies.finish_login(challenge.challenge_id, answer)
    assert isinstance(refused, Refusal) and refused.reason == r.CHALLENGE_EXPIRED


async def test_two_assertions_racing_never_move_the_count_backwards(
    ceremonies: Ceremonies, cli_pool: asyncpg.Pool, api_pool: asyncpg.Pool
) -> None:
    """Both read count 2; the compare-and-swap lets one store its count first, and the other is
    checked again against that: 4 after 3 passes, 3 after 4 is a replay. Either way the stored
    count ends at 4."""
    trader = await new_trader(cli_pool)
    await enrol(ceremonies, trader)
    await sign_in(ceremonies, trader)
    first, second = await ceremonies.begin_login(), await ceremonies.begin_login()
    answer_3 = trader.authenticator.get(first.options_json)
    answer_4 = trader.authenticator.get(second.options_json)
    outcomes = await asyncio.gather(
        ceremonies.finish_login(second.challenge_id, answer_4),
        ceremonies.finish_login(first.challenge_id, answer_3),
    )
    assert isinstance(outcomes[0], tuple)
    if isinstance(outcomes[1], Refusal):
        assert outcomes[1].reason == r.SIGN_COUNT_REPLAYED
    stored = await api_pool.fetchval(
        "SELECT sign_count FROM webauthn_credentials WHERE trader = $1", trader.name
    )
    assert stored == 4
