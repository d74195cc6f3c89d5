"""A TRAIL entry goes out as a stop-limit at the venue, and the Exit Manager moves its limit with
its stop: the distance between them stays the one it was sized with."""

from __future__ import annotations

import dataclasses
import functools
from decimal import Decimal

from tests.factories import cancel_command
from tests.helpers import eventually
from tests.hotpath.conftest import VENUE_ACCOUNT
from tests.hotpath.live_floor import LiveFloor
from tests.hotpath.test_protective_limit_flow import ENDED, SYMBOL, venue_order
from trading.commands import Edge, OrderType, Side
from trading.order_events import EventKind
from trading.protective_limits import DEFAULT_COLLAR_BPS, collar_price
from trading.symbols import TICK_SIZE


async def test_a_trailing_entrys_limit_moves_with_its_stop_at_the_venue(live: LiveFloor) -> None:
    """A BUY TRAIL entry goes out as a STP LMT two above the ask, its limit the collar above the
    stop. The price falls: the Exit Manager trails the stop down, and the venue's order shows
    the limit moved with it, the same distance above the stop."""
    paper = live.paper
    bid, ask = await live.quote(SYMBOL)
    edge = Edge(Decimal("0.55"), Decimal("1.5"), ask - 20)
    command = dataclasses.replace(
        live.enter(symbol=SYMBOL),
        order_type=OrderType.TRAIL,
        limit_price=None,
        edge=edge,
        trail_amount=Decimal(2),
    )
    await live.submit(command)
    working = await live.event(command.command_id, EventKind.SUBMITTED, *ENDED)
    assert working.kind is EventKind.SUBMITTED, working.reason
    sent = await venue_order(live, command.command_id)
    stop, limit = Decimal(str(sent["aux_price"])), Decimal(str(sent["lmt_price"]))
    assert (sent["order_type"], limit) == (
        "STP LMT",
        collar_price(Side.BUY, stop, DEFAULT_COLLAR_BPS, TICK_SIZE),
    )
    try:
        await paper.acontrol("POST", f"/symbols/{SYMBOL}/move", {"pct": -2, "ms": 300})
        moved = await eventually(
            functools.partial(_stop_below, live, command.command_id, stop - 2), timeout=20.0
        )
        assert Decimal(str(moved["lmt_price"])) - Decimal(str(moved["aux_price"])) == limit - stop, moved
    finally:
        await live.submit(cancel_command(live.agent.agent_id, command.command_id, account=VENUE_ACCOUNT))
        await live.event(command.command_id, *ENDED)
        now_bid, now_ask = await live.quote(SYMBOL)
        back = ((bid + ask) / (now_bid + now_ask) - 1) * 100
        await paper.acontrol("POST", f"/symbols/{SYMBOL}/move", {"pct": str(round(back, 4)), "ms": 300})


async def _stop_below(live: LiveFloor, command_id: str, below: Decimal) -> dict[str, object] | None:
    """The venue's order once its stop is below ``below`` (the Exit Manager moved it), else None."""
    row = await venue_order(live, command_id)
    return row if Decimal(str(row["aux_price"])) < below else None
