"""Sizing holds whatever the order, at the venue: orders of every type sent through the real
path (Kafka -> hot path -> ib_async -> paper gateway -> venue) are sized at the worst price
they can fill at given the touch, and the venue's own executions show no order whose fills
carry a notional above Max Trade Size or a loss to the edge's stop above Max Dollar Risk (a
market, stop or trailing entry at the protective limit it is sent with, however fast the
market moves through its trigger).

The two orders of the issue are among them: a SELL LMT far through the bid with its stop just
above the limit (sized at the limit, it sold ~240 MSFT at the bid, twice Max Trade Size; it is
refused, the stop being under the bid it fills at), and a TRAIL BUY without a stop (sized at the
ask, it went out as a stop 25 above with 119 shares, a loss of ~3,000 at the stop; it is sized
at that stop)."""

from __future__ import annotations

import dataclasses
import functools
import json
from collections import defaultdict
from decimal import Decimal

import asyncpg

from paper.venue.client import VenueClient
from paper.venue.messages import ExecutionFilter
from tests.factories import enter_command
from tests.fixtures.paper import PaperStack
from tests.helpers import eventually
from tests.hotpath.conftest import MAIN_PROFILE, VENUE_ACCOUNT
from tests.hotpath.live_floor import CENT, LiveFloor
from trading.commands import Command, Edge, OrderType, Side
from trading.order_events import EventKind

SYMBOL = "MSFT"
ENDED = (EventKind.FILLED, EventKind.REJECTED, EventKind.CANCELLED, EventKind.EXPIRED)


def edge(stop: Decimal) -> Edge:
    return Edge(p=Decimal("0.55"), b=Decimal("1.5"), stop_price=stop.quantize(CENT))


def orders(agent_id: str, bid: Decimal, ask: Decimal) -> dict[str, Command]:
    """Order types, sides, limits through and away from the market, stops and a trail."""

    def order(side: Side, order_type: OrderType, stop: Decimal, **prices: Decimal) -> Command:
        base = enter_command(agent_id, account=VENUE_ACCOUNT, symbol=SYMBOL, side=side)
        fields: dict[str, object] = {"limit_price": None} | {k: v.quantize(CENT) for k, v in prices.items()}
        return dataclasses.replace(base, order_type=order_type, edge=edge(stop), **fields)  # type: ignore[arg-type]

    return {
        # The first order: sized at 10.00 it sold at the bid.
        "sell limit far through the bid": order(Side.SELL, OrderType.LMT, bid / 2 + Decimal("0.20"),
                                                limit_price=bid / 2),
        # Through the market, the stop on the losing side of every fill: sized at the limit.
        "buy limit through the ask": order(Side.BUY, OrderType.LMT, ask - 3, limit_price=ask + 1),
        "sell limit through the bid": order(Side.SELL, OrderType.LMT, bid + 3, limit_price=bid - 1),
        "buy market": order(Side.BUY, OrderType.MKT, ask - 2),
        # A sell stop the market is already through fills at the bid, not at its trigger.
        "sell stop already through": order(Side.SELL, OrderType.STP, bid + 3, stop_price=bid + 1),
        "sell stop-limit already through": order(Side.SELL, OrderType.STP_LMT, bid + 3, stop_price=bid + 1,
                                                 limit_price=bid - 1),
        # The second order: a TRAIL without a stop goes out one trail above the ask.
        "trail buy without a stop": order(Side.BUY, OrderType.TRAIL, ask - Decimal("0.05"),
                                          trail_amount=Decimal(25)),
    }  # fmt: skip


async def test_no_order_fills_past_max_trade_size_or_max_dollar_risk_at_the_venue(live: LiveFloor) -> None:
    paper = live.paper
    bid, ask = await live.quote(SYMBOL)
    sent = orders(live.agent.agent_id, bid, ask)
    ended: dict[str, EventKind] = {}
    try:
        for name, command in sent.items():
            await live.submit(command)
            if command.order_type is OrderType.TRAIL:
                first = await live.event(command.command_id, EventKind.ACCEPTED, *ENDED)
                assert first.kind is EventKind.ACCEPTED, (name, first.reason)
                # The market rises through the stop (one trail above the ask): the stop-limit goes
                # live. The rise jumps up to ~0.6 a step, past its limit (5 bps above the stop),
                # where it rests; so the market falls back through the limit, where it fills.
                await paper.acontrol("POST", f"/symbols/{SYMBOL}/move", {"pct": 7, "ms": 1000})
                await eventually(functools.partial(_triggered, paper, command.command_id), timeout=10.0)
                await _move_back(paper, bid, ask)
            event = await live.event(command.command_id, *ENDED)
            ended[name] = event.kind
            if name == "sell limit far through the bid":
                assert (event.kind, event.reason) == (EventKind.REJECTED, "risk.stop_wrong_side")
            else:
                assert event.kind is EventKind.FILLED, (name, event.kind, event.reason)
    finally:
        # Back where it was, for the suites after this one that price from the venue's seed.
        await _move_back(paper, bid, ask)

    venue = await VenueClient.connect(paper.host, paper.venue_port, "sizing-observer")
    try:
        reports = await venue.executions(ExecutionFilter(account=VENUE_ACCOUNT, symbol=SYMBOL))
    finally:
        await venue.close()
    fills: dict[str, list[tuple[int, Decimal]]] = defaultdict(list)
    for report in reports:
        fills[report.execution.order_ref].append((report.execution.shares, report.execution.price))

    for name, command in sent.items():
        executions = fills.get(command.command_id, [])
        assert bool(executions) == (ended[name] is EventKind.FILLED), name
        assert command.edge is not None and command.side is not None
        stop, sign = command.edge.stop_price, command.side.sign
        notional = sum(shares * price for shares, price in executions)
        assert notional <= MAIN_PROFILE.max_trade_size, (name, notional, executions)
        if command.order_type in (OrderType.MKT, OrderType.STP, OrderType.TRAIL):
            # An entry of these types goes out with a protective limit and is sized at it: the
            # venue fills it there or better, however far its move jumps past the trigger.
            limit = await protective_limit(live.pool, command.command_id)
            assert all((price - limit) * sign <= 0 for _, price in executions), (limit, executions)
        loss = sum(shares * (price - stop) * sign for shares, price in executions)
        assert loss <= MAIN_PROFILE.max_dollar_risk, (name, loss, executions)


async def _move_back(paper: PaperStack, bid: Decimal, ask: Decimal) -> None:
    """The symbol's price back to the mid of ``bid`` and ``ask`` (within 1%)."""
    now_bid, now_ask = await paper.quote(SYMBOL)
    back = ((bid + ask) / (now_bid + now_ask) - 1) * 100
    await paper.acontrol("POST", f"/symbols/{SYMBOL}/move", {"pct": str(round(back, 4)), "ms": 1000})
    await eventually(lambda: _near(paper, (bid + ask) / 2), timeout=10.0)


async def _triggered(paper: PaperStack, command_id: str) -> bool:
    """The venue's stop order ``command_id`` went live (a held stop is ``PreSubmitted``)."""
    rows = (await paper.acontrol("GET", "/orders"))["orders"]
    return any(r["order_ref"] == command_id and r["status"] != "PreSubmitted" for r in rows)


async def _near(paper: PaperStack, mid: Decimal) -> bool:
    bid, ask = await paper.quote(SYMBOL)
    return abs((bid + ask) / 2 - mid) < mid / 100


async def protective_limit(pool: asyncpg.Pool, command_id: str) -> Decimal:
    """The limit an entry was sent with, as the hot path ledgered it before the broker saw it."""
    raw = await pool.fetchval(
        "SELECT detail FROM ledger_entries WHERE command_id = $1 AND authenticated", command_id
    )
    return Decimal(json.loads(raw)["protective_limit"])
