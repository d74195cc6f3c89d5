"""Step-up: one order's own ceremony, its challenge derived by the server from that order; the
answer executes that order and no other."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import asyncpg

from api import webauthn_results as r
from api.webauthn_ceremonies import Ceremonies
from api.webauthn_results import AssertionProof, Refusal
from tests.fixtures.identity import Clock, enrolled_and_signed_in
from tests.webauthn_authenticator import b64url

ORDER_A = hashlib.sha256(b'{"order":"A"}').hexdigest()
ORDER_B = hashlib.sha256(b'{"order":"B"}').hexdigest()


def challenge_for(order_hash: str) -> bytes:
    return hashlib.sha256(b"test-step-up" + secrets.token_bytes(16) + order_hash.encode()).digest()


async def test_step_up_for_the_order_it_was_derived_from_passes(
    ceremonies: Ceremonies, cli_pool: asyncpg.Pool
) -> None:
    trader, principal, _ = await enrolled_and_signed_in(ceremonies, cli_pool)
    derived = challenge_for(ORDER_A)
    challenge = await ceremonies.begin_step_up(principal, derived, ORDER_A)
    answer = trader.authenticator.get(challenge.options_json)
    proof = await ceremonies.finish_step_up(principal, challenge.challenge_id, answer, ORDER_A)
    assert isinstance(proof, AssertionProof) and proof.trader == trader.name and proof.sign_count == 3
    # The assertion signed the server's derived challenge, not one of the page's choosing.
    assert f'"challenge":"{b64url(derived)}"' in challenge.options_json.replace(" ", "")


async def test_step_up_for_order_a_cannot_execute_order_b(
    ceremonies: Ceremonies, cli_pool: asyncpg.Pool
) -> None:
    trader, principal, _ = await enrolled_and_signed_in(ceremonies, cli_pool)
    challenge = await ceremonies.begin_step_up(principal, challenge_for(ORDER_A), ORDER_A)
    answer = trader.authenticator.get(challenge.options_json)
    refused = await ceremonies.finish_step_up(principal, challenge.challenge_id, answer, ORDER_B)
    assert isinstance(refused, Refusal) and refused.reason == r.WRONG_ORDER
    # Single-use: the attempt used the challenge; A cannot be executed with it either now.
    again = await ceremonies.finish_step_up(principal, challenge.challenge_id, answer, ORDER_A)
    assert isinstance(again, Refusal) and again.reason == r.CHALLENGE_UNKNOWN


async def test_step_up_answer_for_a_cannot_answer_bs_challenge(
    ceremonies: Ceremonies, cli_pool: asyncpg.Pool
) -> None:
    trader, principal, _ = await enrolled_and_signed_in(ceremonies, cli_pool)
    for_a = await ceremonies.begin_step_up(principal, challenge_for(ORDER_A), ORDER_A)
    for_b = await ceremonies.begin_step_up(principal, challenge_for(ORDER_B), ORDER_B)
    answer_a = trader.authenticator.get(for_a.options_json)
    refused = await ceremonies.finish_step_up(principal, for_b.challenge_id, answer_a, ORDER_B)
    assert isinstance(refused, Refusal) and refused.reason == r.CHALLENGE_UNKNOWN


async def test_step_up_expires_after_its_ttl(
    ceremonies: Ceremonies, cli_pool: asyncpg.Pool, clock: Clock
) -> None:
    trader, principal, _ = await enrolled_and_signed_in(ceremonies, cli_pool)
    challenge = await ceremonies.begin_step_up(principal, challenge_for(ORDER_A), ORDER_A)
    assert challenge.expires_at == clock.now + timedelta(seconds=ceremonies._settings.step_up_ttl_s)
    answer = trader.authenticator.get(challenge.options_json)
    clock.advance(ceremonies._settings.step_up_ttl_s)
    refused = await ceremonies.finish_step_up(principal, challenge.challenge_id, answer, ORDER_A)
    assert isinstance(refused, Refusal) and refused.reason == r.CHALLENGE_EXPIRED
