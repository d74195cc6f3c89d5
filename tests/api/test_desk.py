"""The desk's refusals before anything is sent, against the real database, Kafka and the real
WebAuthn ceremonies (a software passkey): staging, the arming grant read on every Execute, the
step-up bound to one order, sessions and traders kept apart."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from api import desk_results as d
from api import webauthn_results as r
from api.desk import Desk
from api.door import Door
from api.hub import Hub
from api.principals import KIND_TOKEN, ROLE_OPS, Principal
from api.webauthn_ceremonies import Ceremonies
from bus.kafka import start_producer
from bus.topics import AGENT_COMMANDS, SECURITY_EVENTS
from config.settings import FloorSettings
from ledger.access import LedgerAccess
from observability.security import SecurityLog
from tests.fixtures.desk import ACCOUNT, SYMBOLS, DeskTrader, arm, desk_settings, desk_trader, ticket
from tests.fixtures.identity import Clock, sign_in
from tests.webauthn_authenticator import unb64url
from trading import arming_limits
from trading.step_up import order_bytes, order_hash


async def staged(desk: Desk, who: DeskTrader, **fields: object) -> d.Staged:
    result = await desk.stage(who.principal, ticket(**fields))
    assert isinstance(result, d.Staged), result
    return result


async def claimed(pool: asyncpg.Pool, staged_id: str) -> str | None:
    command_id: str | None = await pool.fetchval(
        "SELECT command_id FROM staged_orders WHERE id = $1", staged_id
    )
    return command_id


async def test_a_staged_order_is_stored_with_the_hash_of_its_canonical_bytes(
    desk: Desk, alice: DeskTrader, api_pool: asyncpg.Pool
) -> None:
    result = await staged(desk, alice, limit_price="187.50", stop_loss="180", quantity=3)
    assert result.order_hash == order_hash(order_bytes(result.terms))
    row = await api_pool.fetchrow("SELECT * FROM staged_orders WHERE id = $1", result.staged_id)
    assert (row["trader"], row["session_id"], row["quantity"], str(row["limit_price"])) == (
        alice.name, alice.principal.session_id, 3, "187.50",
    )  # fmt: skip
    assert row["command_id"] is None


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"symbol": "TSLA"}, "symbol"),
        ({"account": "DU-SOMEONE-ELSE"}, "account"),
        ({"limit_price": "1e2"}, "limit_price"),
        ({"quantity": 0}, "quantity"),
        ({"order_type": "MKT"}, "limit_price"),
    ],
)
async def test_a_bad_ticket_is_invalid_and_nothing_is_stored(
    desk: Desk, alice: DeskTrader, api_pool: asyncpg.Pool, fields: dict[str, object], field: str
) -> None:
    result = await desk.stage(alice.principal, ticket(**fields))
    assert isinstance(result, d.Invalid) and (result.reason, result.field) == (d.TICKET_INVALID, field)
    assert await api_pool.fetchval("SELECT count(*) FROM staged_orders WHERE trader = $1", alice.name) == 0


async def test_a_program_with_a_token_has_no_desk(desk: Desk) -> None:
    program = Principal("bot", KIND_TOKEN, ROLE_OPS, frozenset({"*"}), None)
    assert isinstance(refused := await desk.stage(program, ticket()), d.Invalid)
    assert refused.reason == d.NO_SESSION
    assert isinstance(refused := await desk.trip_breaker(program), d.Invalid)
    assert refused.reason == d.NO_SESSION


async def test_execute_when_session_unarmed_is_refused(
    desk: Desk, alice: DeskTrader, api_pool: asyncpg.Pool
) -> None:
    order = await staged(desk, alice)
    result = await desk.execute(alice.principal, order.staged_id)
    assert isinstance(result, d.NotArmed) and result.reason == d.NOT_ARMED
    assert await claimed(api_pool, order.staged_id) is None


async def test_execute_after_the_grant_expired_is_refused(
    desk: Desk,
    alice: DeskTrader,
    ceremonies: Ceremonies,
    clock: Clock,
    floor_settings: FloorSettings,
    api_pool: asyncpg.Pool,
) -> None:
    await arm(ceremonies, alice)
    order = await staged(desk, alice)
    clock.advance(floor_settings.arming_ttl_s + 1)
    result = await desk.execute(alice.principal, order.staged_id)
    assert isinstance(result, d.NotArmed)
    assert await claimed(api_pool, order.staged_id) is None


async def test_execute_after_disarming_is_refused(
    desk: Desk, alice: DeskTrader, ceremonies: Ceremonies
) -> None:
    await arm(ceremonies, alice)
    order = await staged(desk, alice)
    await ceremonies.disarm(alice.principal)
    assert isinstance(await desk.execute(alice.principal, order.staged_id), d.NotArmed)


async def test_beyond_the_grants_quantity_needs_a_step_up_bound_to_that_order(
    desk: Desk, alice: DeskTrader, ceremonies: Ceremonies, api_pool: asyncpg.Pool
) -> None:
    await arm(ceremonies, alice, max_quantity=5)
    order = await staged(desk, alice, quantity=6)
    result = await desk.execute(alice.principal, order.staged_id)
    assert isinstance(result, d.StepUpRequired), result
    assert result.reason == arming_limits.OVER_QUANTITY
    assert (result.order_hash, result.order_hash_prefix) == (order.order_hash, order.order_hash[:8])
    options = json.loads(result.options_json)
    challenge = await api_pool.fetchrow(
        "SELECT purpose, challenge, order_hash, session_id, expires_at FROM webauthn_challenges"
        " WHERE challenge_id = $1",
        result.challenge_id,
    )
    assert (challenge["purpose"], challenge["order_hash"], challenge["session_id"]) == (
        "step_up", order.order_hash, alice.principal.session_id,
    )  # fmt: skip
    assert unb64url(options["challenge"]) == bytes(challenge["challenge"])
    assert challenge["expires_at"] == result.expires_at
    assert await claimed(api_pool, order.staged_id) is None


async def test_beyond_the_grants_notional_at_the_limit_price_needs_a_step_up(
    desk: Desk, alice: DeskTrader, ceremonies: Ceremonies
) -> None:
    await arm(ceremonies, alice, max_notional=Decimal("10"))
    beyond = await staged(desk, alice, quantity=10, limit_price="1.01")
    result = await desk.execute(alice.principal, beyond.staged_id)
    assert isinstance(result, d.StepUpRequired) and result.reason == arming_limits.OVER_NOTIONAL
    assert "10.10" in result.detail


async def test_a_step_up_assertion_for_order_a_cannot_execute_order_b(
    desk: Desk, alice: DeskTrader, ceremonies: Ceremonies, api_pool: asyncpg.Pool
) -> None:
    await arm(ceremonies, alice, max_quantity=1)
    order_a = await staged(desk, alice, quantity=2)
    order_b = await staged(desk, alice, quantity=3)
    step_up_a = await desk.execute(alice.principal, order_a.staged_id)
    assert isinstance(step_up_a, d.StepUpRequired)
    answer_a = d.StepUpAnswer(step_up_a.challenge_id, alice.trader.authenticator.get(step_up_a.options_json))

    result = await desk.execute(alice.principal, order_b.staged_id, answer_a)

    assert isinstance(result, d.Invalid) and result.reason == r.WRONG_ORDER, result
    assert await claimed(api_pool, order_b.staged_id) is None
    assert await claimed(api_pool, order_a.staged_id) is None


async def test_a_step_up_challenge_is_single_use(
    desk: Desk, alice: DeskTrader, ceremonies: Ceremonies, api_pool: asyncpg.Pool
) -> None:
    await arm(ceremonies, alice, max_quantity=1)
    order = await staged(desk, alice, quantity=2)
    step_up = await desk.execute(alice.principal, order.staged_id)
    assert isinstance(step_up, d.StepUpRequired)
    assertion = alice.trader.authenticator.get(step_up.options_json)
    # The first answer is refused for another reason (the passkey's signature broken) and
    # spends the challenge: the genuine answer afterwards finds it used.
    broken = d.StepUpAnswer(
        step_up.challenge_id, alice.trader.authenticator.get(step_up.options_json, break_signature=True)
    )
    assert isinstance(first := await desk.execute(alice.principal, order.staged_id, broken), d.Invalid)
    assert first.reason == r.BAD_SIGNATURE
    again = await desk.execute(
        alice.principal, order.staged_id, d.StepUpAnswer(step_up.challenge_id, assertion)
    )
    assert isinstance(again, d.Invalid) and again.reason == r.CHALLENGE_UNKNOWN
    assert await claimed(api_pool, order.staged_id) is None


async def test_an_instrument_outside_the_grant_is_refused_outright(
    desk: Desk, alice: DeskTrader, ceremonies: Ceremonies
) -> None:
    await arm(ceremonies, alice, symbols=frozenset({"MSFT"}))
    order = await staged(desk, alice, symbol="AAPL")
    result = await desk.execute(alice.principal, order.staged_id)
    assert isinstance(result, d.GrantExceeded) and result.reason == arming_limits.SYMBOL_NOT_ARMED
    assert "AAPL" in result.detail


async def test_a_trader_who_confirms_every_order_steps_up_within_the_grant(
    desk: Desk,
    ceremonies: Ceremonies,
    cli_pool: asyncpg.Pool,
    ledger_pool: asyncpg.Pool,
    floor_settings: FloorSettings,
) -> None:
    careful = await desk_trader(ceremonies, cli_pool, ledger_pool, floor_settings, step_up_every_order=True)
    await arm(ceremonies, careful)
    order = await staged(desk, careful)
    result = await desk.execute(careful.principal, order.staged_id)
    assert isinstance(result, d.StepUpRequired) and result.reason == d.STEP_UP_EVERY_ORDER


async def test_an_order_executes_only_in_the_session_and_for_the_trader_that_staged_it(
    desk: Desk,
    alice: DeskTrader,
    ceremonies: Ceremonies,
    cli_pool: asyncpg.Pool,
    ledger_pool: asyncpg.Pool,
    floor_settings: FloorSettings,
) -> None:
    order = await staged(desk, alice)
    other_session, _ = await sign_in(ceremonies, alice.trader)
    await arm(ceremonies, alice)
    result = await desk.execute(other_session, order.staged_id)
    assert isinstance(result, d.Invalid) and result.reason == d.STAGED_ELSEWHERE

    bob = await desk_trader(ceremonies, cli_pool, ledger_pool, floor_settings)
    await arm(ceremonies, bob)
    result = await desk.execute(bob.principal, order.staged_id)
    assert isinstance(result, d.Invalid) and result.reason == d.NOT_STAGED
    assert isinstance(await desk.execute(bob.principal, "stg-nothing"), d.Invalid)


async def test_the_api_role_cannot_rewrite_a_staged_orders_terms(
    desk: Desk, alice: DeskTrader, api_pool: asyncpg.Pool
) -> None:
    order = await staged(desk, alice)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await api_pool.execute("UPDATE staged_orders SET quantity = 500 WHERE id = $1", order.staged_id)


async def test_a_cancel_of_an_order_the_trader_cannot_see_is_unknown(desk: Desk, alice: DeskTrader) -> None:
    result = await desk.cancel(alice.principal, "no-such-order")
    assert isinstance(result, d.Invalid) and result.reason == d.UNKNOWN_ORDER
    other = await desk.cancel_all(alice.principal, "DU-SOMEONE-ELSE")
    assert isinstance(other, d.Invalid) and other.reason == d.ACCOUNT_NOT_ALLOWED


async def test_re_arming_the_breaker_needs_a_live_grant(desk: Desk, alice: DeskTrader) -> None:
    result = await desk.rearm_breaker(alice.principal)
    assert isinstance(result, d.NotArmed)


async def test_a_signed_out_session_can_no_longer_cancel_or_trip(
    desk: Desk, alice: DeskTrader, ceremonies: Ceremonies
) -> None:
    """A principal kept by a WebSocket outlives the session: its sign-in no longer vouches."""
    await ceremonies.logout(alice.principal)
    cancel_all = await desk.cancel_all(alice.principal, ACCOUNT)
    assert isinstance(cancel_all, d.Invalid) and cancel_all.reason == d.NO_SESSION
    tripped = await desk.trip_breaker(alice.principal)
    assert isinstance(tripped, d.Invalid) and tripped.reason == d.NO_SESSION


class _AckNeverComes:
    """A producer whose record goes out but whose acknowledgement the test holds back: the
    moment a client that goes away cancels Execute."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer
        self.sent = asyncio.Event()

    async def send_and_wait(self, topic: str, value: bytes, key: bytes | None = None) -> object:
        await self._producer.send(topic, value, key=key)
        self.sent.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


def _desk_on(door: Door, api_pool: asyncpg.Pool, ceremonies: Ceremonies, hub: Hub,
             settings: FloorSettings) -> Desk:  # fmt: skip
    return Desk(api_pool, ceremonies, door, hub, desk_settings(settings), books=hub, outcome_timeout_s=1.0)


def _door_on(api_pool: asyncpg.Pool, publisher: object) -> Door:
    ledger = LedgerAccess(api_pool)
    return Door(
        ledger, ledger, publisher,  # type: ignore[arg-type]
        SecurityLog(ledger, None, SECURITY_EVENTS), AGENT_COMMANDS, symbols=SYMBOLS,
    )  # fmt: skip


async def test_an_execute_cancelled_while_publishing_keeps_the_staged_order_claimed(
    desk: Desk,
    alice: DeskTrader,
    ceremonies: Ceremonies,
    api_pool: asyncpg.Pool,
    desk_producer: AIOKafkaProducer,
    desk_hub: Hub,
    floor_settings: FloorSettings,
) -> None:
    publisher = _AckNeverComes(desk_producer)
    hanging = _desk_on(_door_on(api_pool, publisher), api_pool, ceremonies, desk_hub, floor_settings)
    await arm(ceremonies, alice)
    order = await staged(desk, alice)
    execute = asyncio.create_task(hanging.execute(alice.principal, order.staged_id))
    await asyncio.wait_for(publisher.sent.wait(), 10.0)
    execute.cancel()
    with pytest.raises(asyncio.CancelledError):
        await execute
    # The record may be at the broker: pressing Execute again must not make a second order.
    assert (held := await claimed(api_pool, order.staged_id)) is not None
    again = await desk.execute(alice.principal, order.staged_id)
    assert isinstance(again, d.Invalid) and again.reason == d.ALREADY_EXECUTED
    assert await claimed(api_pool, order.staged_id) == held


async def test_an_execute_kafka_did_not_acknowledge_is_pending_and_keeps_the_staged_order_claimed(
    desk: Desk,
    alice: DeskTrader,
    ceremonies: Ceremonies,
    api_pool: asyncpg.Pool,
    desk_hub: Hub,
    floor_settings: FloorSettings,
    kafka_bootstrap: str,
) -> None:
    stopped = await start_producer(kafka_bootstrap, "test-desk-stopped")
    await stopped.stop()  # every send now fails: the door answers bus_unavailable
    broken = _desk_on(_door_on(api_pool, stopped), api_pool, ceremonies, desk_hub, floor_settings)
    await arm(ceremonies, alice)
    order = await staged(desk, alice)
    result = await broken.execute(alice.principal, order.staged_id)
    assert isinstance(result, d.Executed) and result.state == d.PENDING, result
    assert await claimed(api_pool, order.staged_id) == result.command_id
    again = await desk.execute(alice.principal, order.staged_id)
    assert isinstance(again, d.Invalid) and again.reason == d.ALREADY_EXECUTED


async def test_cancel_all_on_every_account_is_invalid_naming_the_breaker(
    desk: Desk,
    ceremonies: Ceremonies,
    cli_pool: asyncpg.Pool,
    ledger_pool: asyncpg.Pool,
    floor_settings: FloorSettings,
) -> None:
    everywhere = await desk_trader(ceremonies, cli_pool, ledger_pool, floor_settings, accounts=("*",))
    result = await desk.cancel_all(everywhere.principal, "*")
    assert isinstance(result, d.Invalid), result
    assert (result.reason, result.field) == (d.TICKET_INVALID, "account")
    assert "breaker" in result.detail


@pytest.mark.parametrize(
    "fields",
    [
        # Neither price bounds the fill: the SELL fills at the bid, the BUY stop at the ask.
        {"side": "SELL", "quantity": 100_000, "limit_price": "0.01"},
        {"order_type": "STP", "limit_price": None, "stop_price": "0.01", "quantity": 100_000},
    ],
)
async def test_an_order_its_limit_does_not_bound_needs_a_step_up_without_a_fresh_book(
    desk: Desk, alice: DeskTrader, ceremonies: Ceremonies, api_pool: asyncpg.Pool, fields: dict[str, object]
) -> None:
    await arm(ceremonies, alice, max_notional=Decimal("10000"))
    order = await staged(desk, alice, **fields)
    result = await desk.execute(alice.principal, order.staged_id)
    assert isinstance(result, d.StepUpRequired), result
    assert result.reason == arming_limits.NOTIONAL_UNKNOWN
    assert await claimed(api_pool, order.staged_id) is None
