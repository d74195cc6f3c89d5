"""Protective stops at the venue: one cancelled behind the floor's back is reported and placed
again from its last level; one the market reaches fills and closes the position."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import asyncpg
import httpx

from hotpath.protective_stops import PROTECTED, STOP_REPLACED
from hotpath.stop_guard import STOP_LOST
from tests.factories import cancel_command, exit_command
from tests.helpers import eventually
from tests.hotpath.live_floor import LiveFloor, kinds_of
from trading.commands import Command, OrderType, Side
from trading.order_events import EventKind


async def protected_long(live: LiveFloor, symbol: str, **trail: Decimal) -> Command:
    """A long of 5 ``symbol`` bought at once and its trailing stop working at the venue."""
    limit = await live.above_ask(Decimal("1.01"), symbol)
    entry = await live.submit(live.enter(symbol=symbol, limit=limit, stop=limit * Decimal("0.9"), quantity=5))
    filled = await live.event(entry.command.command_id, EventKind.FILLED, EventKind.REJECTED)
    assert filled.kind is EventKind.FILLED, filled.reason
    stop = exit_command(
        live.agent.agent_id, account=live.account, side=Side.SELL, quantity=5, order_type=OrderType.TRAIL,
        symbol=symbol, **trail,
    )  # fmt: skip
    await live.submit(stop)
    working = await live.event(stop.command_id, EventKind.SUBMITTED, EventKind.REJECTED)
    assert working.kind is EventKind.SUBMITTED, working.reason
    return stop


async def venue_order(live: LiveFloor, order_ref: str) -> dict[str, Any] | None:
    """The venue's newest order with ``order_ref``."""
    rows = [o for o in (await live.paper.acontrol("GET", "/orders"))["orders"] if o["order_ref"] == order_ref]
    return rows[-1] if rows else None


async def ops_event(pool: asyncpg.Pool, kind: str, command_id: str) -> dict[str, Any] | None:
    row = await pool.fetchrow(
        "SELECT severity, detail FROM ops_events WHERE kind = $1 AND detail->>'command_id' = $2",
        kind,
        command_id,
    )
    return None if row is None else {"severity": row["severity"], **_json(row["detail"])}


def _json(value: Any) -> dict[str, Any]:
    import json

    return value if isinstance(value, dict) else json.loads(value)


async def position(live: LiveFloor, symbol: str) -> int:
    async with httpx.AsyncClient(timeout=5.0) as client:
        stats = (await client.get(f"{live.hotpath.control_url}/stats")).json()
    return int(stats["positions"].get(live.account, {}).get(symbol, 0))


async def test_a_stop_cancelled_behind_the_floors_back_is_reported_and_placed_again_at_its_level(
    live: LiveFloor,
) -> None:
    stop = await protected_long(live, "MSFT", trail_percent=Decimal("3"))
    before = await eventually(lambda: venue_order(live, stop.command_id), timeout=10.0)
    assert before["status"] in ("PreSubmitted", "Submitted")

    # An operator at the broker cancels it: the floor hears only the order's status.
    cancelled = await live.paper.acontrol("POST", "/orders/cancel", {"order_ref": stop.command_id})
    assert cancelled["cancelled"], cancelled

    lost = await eventually(lambda: ops_event(live.pool, STOP_LOST, stop.command_id), timeout=10.0)
    assert (lost["severity"], lost["unprotected_qty"], lost["symbol"]) == ("critical", 5, "MSFT")
    replaced = await eventually(lambda: ops_event(live.pool, STOP_REPLACED, stop.command_id), timeout=10.0)
    new_id = replaced["stop_command_id"]
    assert new_id == f"{stop.command_id}.restop1"
    working = await live.event(new_id, EventKind.SUBMITTED, EventKind.REJECTED)
    assert working.kind is EventKind.SUBMITTED, working.reason

    again = await eventually(lambda: venue_order(live, new_id), timeout=10.0)
    assert (again["action"], again["total_qty"]) == ("SELL", 5)
    # Where the lost stop stood, or tighter if the price rose since: never looser.
    assert Decimal(again["aux_price"]) >= Decimal(lost["stop"]) >= Decimal(before["aux_price"])
    ledger = await live.pool.fetchrow(
        "SELECT agent_id, decision FROM ledger_entries WHERE command_id = $1", new_id
    )  # write-ahead: the replacement the venue holds is a signed, accepted ledger entry
    assert ledger is not None and (ledger["agent_id"], ledger["decision"]) == ("floor-control", "accepted")

    # The floor's own cancel of it is no loss: nothing is placed again.
    cancel = await live.submit(cancel_command(live.agent.agent_id, new_id, account=live.account))
    done = await live.event(new_id, EventKind.CANCELLED, EventKind.FILLED)
    assert done.kind is EventKind.CANCELLED, cancel
    assert await ops_event(live.pool, STOP_LOST, new_id) is None
    assert await venue_order(live, f"{stop.command_id}.restop2") is None

    out = exit_command(
        live.agent.agent_id, account=live.account, side=Side.SELL, quantity=5, symbol="MSFT",
        limit=await live.below_bid(Decimal("0.99"), "MSFT"),
    )  # fmt: skip
    await live.submit(out)
    assert (await live.event(out.command_id, EventKind.FILLED, EventKind.REJECTED)).kind is EventKind.FILLED


async def test_a_filled_entry_is_stopped_at_the_venue_and_the_market_filling_the_stop_closes_it(
    live: LiveFloor,
) -> None:
    start = await position(live, "MSFT")
    limit = await live.above_ask(Decimal("1.001"), "MSFT")
    stop_at = (limit * Decimal("0.99")).quantize(Decimal("0.01"))
    entry = await live.submit(live.enter(symbol="MSFT", limit=limit, stop=stop_at, quantity=5))
    filled = await live.event(entry.command.command_id, EventKind.FILLED, EventKind.REJECTED)
    assert filled.kind is EventKind.FILLED, filled.reason

    # No exit from the desk: the floor protects the position itself, at the entry's stop.
    protected = await eventually(lambda: _protected(live.pool, entry.command.command_id), timeout=10.0)
    stop_id = protected["stop_command_id"]
    assert (protected["quantity"], Decimal(protected["stop"])) == (5, stop_at)
    working = await live.event(stop_id, EventKind.SUBMITTED, EventKind.REJECTED)
    assert working.kind is EventKind.SUBMITTED, working.reason
    at_venue = await eventually(lambda: venue_order(live, stop_id), timeout=10.0)
    assert (at_venue["action"], at_venue["total_qty"]) == ("SELL", 5)
    assert Decimal(at_venue["aux_price"]) >= stop_at  # where it started, or trailed up since
    assert await eventually(lambda: _is(position(live, "MSFT"), start + 5), timeout=10.0)

    await live.paper.acontrol("POST", "/symbols/MSFT/move", {"pct": -3, "ms": 500})
    done = await live.event(stop_id, EventKind.FILLED, EventKind.CANCELLED, EventKind.REJECTED)
    assert done.kind is EventKind.FILLED and done.filled_qty == 5, done
    assert await eventually(lambda: _is(position(live, "MSFT"), start), timeout=10.0)
    kinds = await eventually(lambda: _ends_filled(live, stop_id), timeout=10.0)
    assert kinds[-1] == "filled"
    assert await ops_event(live.pool, STOP_LOST, stop_id) is None


async def _protected(pool: asyncpg.Pool, entry_id: str) -> dict[str, Any] | None:
    row = await pool.fetchrow(
        "SELECT detail FROM ops_events WHERE kind = $1 AND detail->>'from_command' = $2", PROTECTED, entry_id
    )
    return None if row is None else _json(row["detail"])


async def _is(value: Any, expected: int) -> bool:
    return (await value) == expected


async def _ends_filled(live: LiveFloor, command_id: str) -> list[str] | None:
    kinds = await kinds_of(live.pool, command_id)
    return kinds if kinds and kinds[-1] == "filled" else None
