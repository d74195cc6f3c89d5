"""Chaos scenarios 5-7: the hot path dies (``kill -9``) while 500 signed commands stream, and
comes back: from its committed offset and the ledger, with nothing lost and nothing doubled, its
breaker state and its trailing stops as they were.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from floor.breaker_cmd import breaker_command
from tests.chaos.floor import ACCOUNT, ChaosFloor
from tests.chaos.load import Load, streaming
from tests.chaos.verdict import assert_nothing_lost
from tests.factories import enter_command, exit_command
from tests.helpers import eventually
from trading.commands import CommandKind, OrderType, Side

pytestmark = [pytest.mark.chaos]


@pytest.mark.timeout(120)
async def test_5_hot_path_killed_mid_stream_resumes_without_loss_or_duplicate(chaos: ChaosFloor) -> None:
    # At 100/s, twice what ib_async writes a second, the kill finds requests still queued in
    # the process: every decided command must reach the broker all the same.
    async with streaming(chaos, rate=100.0) as load:
        await load.reached(150)
        await chaos.restart_hotpath()  # kill -9; the supervisor starts it again
        await load.reached(300)
    await assert_nothing_lost(chaos, load.sent)


@pytest.mark.chaos_full
@pytest.mark.timeout(180)
async def test_6_hot_path_killed_while_postgres_is_down_then_both_back_loses_nothing(
    chaos: ChaosFloor,
) -> None:
    async with streaming(chaos) as load:
        await load.reached(100)
        chaos.kill_postgres()
        # Intake holds a record for the ledger and the rest wait in Kafka, for longer than a
        # consumer's automatic offset commit takes (5 s) to pass the held record.
        await load.reached(400)
        restarts = chaos.kill_hotpath()  # its restarts fail until Postgres answers
        await chaos.start_postgres()
        await chaos.hotpath_back(restarts)
    await assert_nothing_lost(chaos, load.sent)


async def _trading_state(chaos: ChaosFloor, state: str) -> bool:
    return bool((await chaos.health())["trading_state"] == state)


@pytest.mark.chaos_full
@pytest.mark.timeout(180)
async def test_7a_hot_path_restarted_while_halted_stays_halted_until_re_armed(chaos: ChaosFloor) -> None:
    async with streaming(chaos) as load:
        await load.reached(50)
        operator = chaos.operator
        trip = await load.send(breaker_command(CommandKind.BREAKER_TRIP, operator.agent_id), signer=operator)
        await eventually(lambda: _trading_state(chaos, "HALTED"), timeout=10)
        await load.reached(150)
        await chaos.restart_hotpath()
        assert (await chaos.health())["trading_state"] == "HALTED", "a restart re-armed the floor"
        await load.reached(300)
        arm = await load.send(breaker_command(CommandKind.BREAKER_ARM, operator.agent_id), signer=operator)
        await eventually(lambda: _trading_state(chaos, "ACTIVE"), timeout=30)
    records = await assert_nothing_lost(chaos, load.sent)
    # Between the trip's entry and the re-arm's, no order was accepted.
    seqs = await chaos.pool.fetch(
        "SELECT command_id, seq FROM ledger_entries WHERE command_id = ANY($1::text[])",
        [trip.command_id, arm.command_id],
    )
    first, last = sorted(r["seq"] for r in seqs)
    accepted = await chaos.pool.fetch(
        "SELECT command_id FROM ledger_entries WHERE seq > $1 AND seq < $2 AND decision = 'accepted'"
        " AND kind IN ('enter', 'exit')",
        first,
        last,
    )
    assert not accepted, f"accepted while HALTED: {[r['command_id'] for r in accepted]}"
    assert records.sent


async def _venue_stop(chaos: ChaosFloor, command_id: str) -> Decimal | None:
    """The trailing stop's stop price at the venue now (the floor sends it as a STP it moves)."""
    orders = (await chaos.paper.acontrol("GET", "/orders"))["orders"]
    mine = [
        o for o in orders if o["order_ref"] == command_id and o["status"] in ("PreSubmitted", "Submitted")
    ]
    return Decimal(mine[0]["aux_price"]) if mine else None


async def _trailing_stop(chaos: ChaosFloor, load: Load) -> str:
    """A long AAPL position and a TRAIL exit working on it (5.00 under the price)."""
    _, ask = await chaos.paper.quote("AAPL")
    limit = (ask * Decimal("1.01")).quantize(Decimal("0.01"))
    buy = await load.send(
        enter_command(chaos.agent.agent_id, account=ACCOUNT, limit=limit, stop=limit - 5, quantity=5)
    )
    await eventually(lambda: _state_is(chaos, buy.command_id, "filled"), timeout=20)
    trail = exit_command(
        chaos.agent.agent_id, account=ACCOUNT, side=Side.SELL, quantity=5, order_type=OrderType.TRAIL,
        trail_amount=Decimal("5.00"),
    )  # fmt: skip
    await load.send(trail)
    await eventually(lambda: _venue_stop(chaos, trail.command_id), timeout=20)
    return trail.command_id


async def _state_is(chaos: ChaosFloor, command_id: str, kind: str) -> bool:
    row = await chaos.pool.fetchval(
        "SELECT kind FROM order_events WHERE command_id = $1 ORDER BY id DESC LIMIT 1", command_id
    )
    return bool(row == kind)


async def _stop_above(chaos: ChaosFloor, command_id: str, level: Decimal) -> Decimal | None:
    stop = await _venue_stop(chaos, command_id)
    return stop if stop is not None and stop > level else None


@pytest.mark.chaos_full
@pytest.mark.timeout(180)
async def test_7b_a_trailing_stop_keeps_trailing_after_the_hot_path_is_killed(chaos: ChaosFloor) -> None:
    async with streaming(chaos, n=0) as setup:
        trail = await _trailing_stop(chaos, setup)
    initial = await _venue_stop(chaos, trail)
    assert initial is not None
    async with streaming(chaos) as load:
        await load.reached(100)
        await chaos.paper.acontrol("POST", "/symbols/AAPL/move", {"pct": 2, "ms": 300})
        before: Decimal = await eventually(lambda: _stop_above(chaos, trail, initial + 2), timeout=20)
        await load.reached(200)
        await chaos.restart_hotpath()
        await chaos.paper.acontrol("POST", "/symbols/AAPL/move", {"pct": 3, "ms": 300})
        try:
            await eventually(lambda: _stop_above(chaos, trail, before + 3), timeout=20)
        except AssertionError:
            raise AssertionError(
                f"the stop stopped trailing after the restart: {before} at the venue before it, "
                f"{await _venue_stop(chaos, trail)} now, quote {await chaos.paper.quote('AAPL')}"
            ) from None
    await assert_nothing_lost(chaos, [*setup.sent, *load.sent])
