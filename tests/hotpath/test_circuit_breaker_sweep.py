"""A flash crash with a book of the floor's orders working at the paper venue: every one is
cancelled and its acknowledgement awaited, the ``breaker.tripped`` event says how many and how
fast, intake refuses while halted, and an operator's signed re-arm restores it."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from decimal import Decimal

import asyncpg
import pytest

from ledger.risk_profiles import set_profile
from tests.factories import Agent
from tests.helpers import eventually
from tests.hotpath.conftest import MAIN_PROFILE, SYMBOLS, VENUE_ACCOUNT
from tests.hotpath.live_floor import LiveFloor
from tests.hotpath.test_circuit_breaker_flow import applied, rearm, send_breaker
from trading.commands import CommandKind
from trading.order_events import EventKind
from trading.signing import SignedCommand


async def test_a_trip_cancels_every_one_of_100_open_orders_and_intake_refuses_until_re_armed(
    live: LiveFloor, operator: Agent
) -> None:
    await _trip_cancels_every_open_order(live, operator, 100)


@pytest.mark.long
async def test_a_trip_cancels_every_one_of_1000_open_orders(live: LiveFloor, operator: Agent) -> None:
    await _trip_cancels_every_open_order(live, operator, 1000)


async def _trip_cancels_every_open_order(live: LiveFloor, operator: Agent, n: int) -> None:
    roomy = dataclasses.replace(
        MAIN_PROFILE, max_open_orders=n + 50, max_position=max(n, MAIN_PROFILE.max_position)
    )
    await _use_profile(live, operator, roomy)
    try:
        sent = await _working_book(live, n)
        crash_from = await _newest_ops_id(live.pool)
        await live.paper.acontrol("POST", "/symbols/AAPL/flash-crash", {"pct": 15, "ms": 300})
        try:
            tripped = await eventually(lambda: _tripped_event(live.pool, crash_from), timeout=30.0)
            detail = json.loads(tripped["detail"])
            assert tripped["severity"] == "critical"
            assert detail["symbol"] == "AAPL" and Decimal(detail["drop_pct"]) >= 10
            # Every order open at the trip is accounted for: cancelled (acknowledged), or ended
            # by the venue before its cancel landed; none left open.
            assert detail["open_at_trip"] >= n
            assert detail["not_cancelled"] == 0 and detail["rounds"] == 0
            assert detail["cancelled_orders"] + detail["ended_otherwise"] == detail["open_at_trip"]
            assert detail["cancelled_orders"] >= n  # priced 20% under the bid: none could fill
            assert 0 < detail["tick_to_cancel_us"] < 50_000
            assert detail["to_last_ack_us"] is not None and detail["to_last_ack_us"] < 5_000_000
            failed = await live.pool.fetchval(
                "SELECT count(*) FROM ops_events WHERE kind = 'breaker.cancel_failed' AND id > $1",
                crash_from,
            )
            assert failed == 0
            # The venue's own record: every order of the book cancelled, none working.
            ours = {env.command.command_id for env in sent}
            rows = [
                o for o in (await live.paper.acontrol("GET", "/orders"))["orders"] if o["order_ref"] in ours
            ]
            assert len(rows) == n and {o["status"] for o in rows} == {"Cancelled"}
            assert await live.open_orders() == 0
            health = await live.hotpath.health()
            assert health["trading_state"] == "HALTED"
            sweep = health["last_sweep"]
            assert isinstance(sweep, dict) and sweep["open_at_trip"] == detail["open_at_trip"]

            resting = await live.below_bid(Decimal("0.8"), "MSFT")
            halted = await live.submit(live.enter(symbol="MSFT", limit=resting, stop=resting - 5, quantity=1))
            refused = await live.event(halted.command.command_id, *EventKind)
            assert (refused.kind, refused.reason) == (EventKind.REJECTED, "breaker.halted")

            arm = await send_breaker(live.producer, operator, CommandKind.BREAKER_ARM)
            await eventually(lambda: applied(live.hotpath, arm.command.command_id), timeout=20.0)
            assert (await live.hotpath.health())["trading_state"] == "ACTIVE"
            accepted = await live.submit(
                live.enter(symbol="MSFT", limit=resting, stop=resting - 5, quantity=1)
            )
            after = await live.event(accepted.command.command_id, EventKind.SUBMITTED, EventKind.REJECTED)
            assert after.kind is EventKind.SUBMITTED, after.reason
        finally:
            await rearm(live.hotpath, live.producer, operator)
            # Restore the price for the rest of the session (up 1/0.85 - 1 = 17.65%).
            await live.paper.acontrol("POST", "/symbols/AAPL/move", {"pct": 17.65, "ms": 0})
    finally:
        await _use_profile(live, operator, MAIN_PROFILE)


async def _working_book(live: LiveFloor, n: int) -> list[SignedCommand]:
    """``n`` one-share buys 20% under the bid, alternating over the streamed symbols, all
    working at the venue (sent at once; the gateway's pacing spreads them out)."""
    limits = {symbol: await live.below_bid(Decimal("0.8"), symbol) for symbol in SYMBOLS}
    before = await live.open_orders()
    sent = []
    for i in range(n):
        symbol = SYMBOLS[i % len(SYMBOLS)]
        limit = limits[symbol]
        env = live.agent.sign(live.enter(symbol=symbol, limit=limit, stop=limit - 5, quantity=1))
        sent.append(env)
    await asyncio.gather(*(live.send(env) for env in sent))
    # IB's 50 messages a second: 1,000 orders take some 20 s to reach the venue.
    await eventually(lambda: _open_at_least(live, before + n), timeout=30.0 + n / 20)
    return sent


async def _open_at_least(live: LiveFloor, count: int) -> bool:
    return await live.open_orders() >= count


async def _use_profile(live: LiveFloor, operator: Agent, profile: object) -> None:
    assert isinstance(profile, type(MAIN_PROFILE))
    await set_profile(
        live.pool, VENUE_ACCOUNT, profile, operator_id=operator.agent_id, operator_key=operator.private_key
    )

    async def reloaded() -> bool:
        return await live.hotpath.profile(VENUE_ACCOUNT) == profile.to_json_dict()

    await eventually(reloaded, timeout=15.0)


async def _newest_ops_id(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT coalesce(max(id), 0) FROM ops_events"))


async def _tripped_event(pool: asyncpg.Pool, after_id: int) -> asyncpg.Record | None:
    return await pool.fetchrow(
        "SELECT severity, detail FROM ops_events WHERE source = 'hotpath' AND kind = 'breaker.tripped'"
        " AND id > $1 ORDER BY id LIMIT 1",
        after_id,
    )
