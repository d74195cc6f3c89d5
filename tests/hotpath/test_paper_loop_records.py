"""The paper-loop audit's records read back from the real ledger and the venue's own executions,
after a round trip through the hot path process."""

from __future__ import annotations

from decimal import Decimal

from config.settings import FloorSettings
from floor.paper_loop_records import read_loop_records
from ledger.append import ledger_head
from tests.factories import exit_command
from tests.hotpath.live_floor import LiveFloor
from trading.commands import Side
from trading.order_events import EventKind
from trading.paper_loop_audit import CLOSED, audit
from trading.sizing import BINDING_REQUESTED


async def test_a_round_trip_is_read_from_the_ledger_and_the_venue_and_audited(
    live: LiveFloor, floor_settings: FloorSettings
) -> None:
    since, _ = await ledger_head(live.pool)
    limit = await live.above_ask(Decimal("1.01"))  # marketable: fills at once
    entry = await live.submit(live.enter(limit=limit, stop=limit - 5, quantity=7))
    bought = await live.event(entry.command.command_id, EventKind.FILLED, EventKind.REJECTED)
    assert bought.kind is EventKind.FILLED, bought.reason
    sell_at = await live.below_bid(Decimal("0.99"))  # marketable too
    out = await live.submit(
        exit_command(live.agent.agent_id, account=live.account, side=Side.SELL, quantity=7, limit=sell_at)
    )
    sold = await live.event(out.command.command_id, EventKind.FILLED, EventKind.REJECTED)
    assert sold.kind is EventKind.FILLED, sold.reason

    # The CLI's own database role, and the venue's control API with its token from var/paper/.
    mid = limit - Decimal("0.50")  # as an agent would say it saw the market
    records = await read_loop_records(
        floor_settings,
        since_seq=since,
        agents=[live.agent.agent_id],
        signal_mids={entry.command.command_id: mid},
    )
    result = audit(records)

    [at_venue] = [o for o in records.venue_orders if o.order_ref == entry.command.command_id]
    assert (at_venue.total_qty, at_venue.filled, at_venue.status) == (7, 7, "Filled")

    assert result.ok, result.violations
    [trade] = result.trades
    assert trade.command_id == entry.command.command_id
    # The desk's exit, and the floor's own stops on the position it opened (withdrawn as the
    # desk's exit took their place: never filled), which count as the trade's.
    assert out.command.command_id in trade.exits
    floor_stops = [e for e in trade.exits if e != out.command.command_id]
    assert all(e.startswith(f"{entry.command.command_id}.stop-") for e in floor_stops), trade.exits
    assert (trade.quantity_sent, trade.filled, trade.exit_filled, trade.outcome) == (7, 7, 7, CLOSED)
    assert (trade.kelly_quantity, trade.binding) == (7, BINDING_REQUESTED)
    assert trade.avg_fill is not None and sold.avg_fill_price is not None
    assert trade.avg_fill == bought.avg_fill_price
    # Whole cents: cent prices times whole shares. The event's average of a sell filled at
    # several prices does not terminate (229.8585714... over 7 shares), so it is rounded back.
    assert trade.realized_pnl == ((sold.avg_fill_price - trade.avg_fill) * 7).quantize(Decimal("0.01"))
    assert trade.dollar_risk == (trade.avg_fill - (limit - 5)) * 7
    assert trade.slippage == trade.avg_fill - mid
    assert trade.latency_ms is not None and trade.latency_ms >= 0
    assert result.summary.latency_ms["p50"] == trade.latency_ms
