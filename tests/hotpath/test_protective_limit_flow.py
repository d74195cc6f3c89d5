"""A MKT, STP or TRAIL entry sized right at Max Trade Size stays within it at the venue, however
thin the touch: the floor sends it with a protective limit and sizes it at that limit.

Each entry goes through the real path (Kafka -> hot path -> ib_async -> paper gateway -> venue)
against a still market (the venue's clock paused: the book holds unless our orders trade). The
profile's Max Trade Size is set to exactly the touch's price times one share more than the touch
holds plus a few: sized at the touch, the order takes the whole touch and walks into the next
level, past the cap (the 200-trade loop's ``356 NVDA at 140.449466 = $50,000.01``). Sized at its
protective limit, every share fills at or inside that limit and the notional, from the venue's
own executions, is within the cap. Then the position those entries built, grown past Max Trade
Size, is closed by one exit: an exit is never refused for its size."""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import asyncpg
import httpx
import pytest

from hotpath.registry import REFRESH_S as REGISTRY_REFRESH_S
from ledger.risk_profiles import set_profile
from tests.factories import Agent, exit_command
from tests.fixtures.hotpath import fresh_agent
from tests.fixtures.paper import PaperStack
from tests.helpers import eventually
from tests.hotpath.conftest import MAIN_PROFILE, VENUE_ACCOUNT
from tests.hotpath.live_floor import LiveFloor
from trading.commands import Edge, OrderType, Side
from trading.order_events import EventKind
from trading.protective_limits import DEFAULT_COLLAR_BPS, collar_price
from trading.symbols import TICK_SIZE

SYMBOL = "AAPL"
WALK = 5
"""Shares beyond the touch each entry is sized to take: it must walk into the next level."""
ENDED = (EventKind.FILLED, EventKind.REJECTED, EventKind.CANCELLED, EventKind.EXPIRED)


@dataclasses.dataclass
class Desk:
    """The still market and the operator who sets the venue account's profile."""

    live: LiveFloor
    operator: Agent

    async def cap(self, max_trade_size: Decimal) -> None:
        """The account's Max Trade Size, every other limit out of the way; in force once the hot
        path shows it."""
        profile = dataclasses.replace(
            MAIN_PROFILE,
            max_trade_size=max_trade_size,
            max_dollar_risk=Decimal(10**7),
            max_position=10**6,
            max_gross_exposure=Decimal(10**9),
        )
        await self.profile(profile.max_trade_size, profile)

    async def profile(self, shown: Decimal, profile: object) -> None:
        await set_profile(
            self.live.pool, VENUE_ACCOUNT, profile, operator_id=self.operator.agent_id,  # type: ignore[arg-type]
            operator_key=self.operator.private_key,
        )  # fmt: skip

        last: list[object] = [None]

        async def in_force() -> bool:
            last[0] = current = await self.live.hotpath.profile(VENUE_ACCOUNT)
            return current is not None and Decimal(str(current["max_trade_size"])) == shown

        # Announced on commit, reloaded at once; the hot path also reloads every 30 s whatever it
        # heard (hotpath.registry), which bounds the wait should the announcement be missed.
        try:
            await eventually(in_force, timeout=REGISTRY_REFRESH_S + 5)
        except AssertionError as exc:
            raise AssertionError(f"the hot path enforces {last[0]}, not Max Trade Size {shown}") from exc

    async def asks(self) -> list[tuple[Decimal, int]]:
        depth = await self.live.paper.acontrol("GET", f"/symbols/{SYMBOL}/depth")
        return [(Decimal(level["price"]), int(level["size"])) for level in depth["asks"]]


@pytest.fixture(scope="module")
async def still_market(paper: PaperStack) -> AsyncIterator[None]:
    """The venue's clock paused for the module's tests: the book holds unless our orders trade.
    One pause for all of them: each pause leaves the market clock a request's latency behind the
    wall clock, which the suites after this one compare the venue's execution times with."""
    paused = await paper.acontrol("POST", "/clock", {"paused": True})
    try:
        yield
    finally:
        # The market clock catches up with the wall clock it stood still behind (the client made
        # first: making one takes longer than the request).
        async with httpx.AsyncClient(timeout=10.0, headers=paper.control_headers) as client:
            behind_ms = (time.time_ns() - int(paused["status"]["time_ns"])) / 1e6
            body = {"advance_ms": max(0.0, behind_ms), "paused": False}
            (await client.post(f"{paper.control_url}/clock", json=body)).raise_for_status()


@pytest.fixture
async def desk(live: LiveFloor, ledger_pool: asyncpg.Pool, still_market: None) -> AsyncIterator[Desk]:
    operator = await fresh_agent(ledger_pool, f"ops-{uuid.uuid4().hex[:8]}", "operator")
    desk = Desk(live, operator)
    try:
        yield desk
    finally:
        await desk.profile(MAIN_PROFILE.max_trade_size, MAIN_PROFILE)


async def executions(live: LiveFloor, command_id: str) -> list[tuple[int, Decimal]]:
    rows = (await live.paper.acontrol("GET", "/executions"))["executions"]
    return [(int(r["shares"]), Decimal(r["price"])) for r in rows if r["order_ref"] == command_id]


async def venue_order(live: LiveFloor, command_id: str) -> dict[str, object]:
    rows = (await live.paper.acontrol("GET", "/orders"))["orders"]
    row: dict[str, object] = next(r for r in rows if r["order_ref"] == command_id)
    return row


@pytest.mark.parametrize(
    ("order_type", "sent_as"),
    [(OrderType.MKT, "LMT"), (OrderType.STP, "STP LMT"), (OrderType.TRAIL, "STP LMT")],
)
async def test_an_entry_sized_at_max_trade_size_walking_a_thin_touch_fills_within_the_cap(
    desk: Desk, order_type: OrderType, sent_as: str
) -> None:
    live = desk.live
    asks = await desk.asks()
    (touch, at_touch), *behind = asks
    limit = collar_price(Side.BUY, touch, DEFAULT_COLLAR_BPS, TICK_SIZE)
    within = sum(size for price, size in behind if price <= limit)
    assert within >= 2 * WALK, f"the still book has too little behind the touch within {limit}: {asks[:5]}"
    await eventually(lambda: _touch_is(live, touch), timeout=5.0)
    # Sized at the touch this is exactly the quantity, and it walks WALK shares past the touch.
    cap = (at_touch + WALK) * touch
    await desk.cap(cap)

    bid, _ = await live.quote(SYMBOL)
    prices: dict[str, object] = {}
    if order_type is not OrderType.MKT:
        # A buy stop the market is already through: live at once, at the touch.
        prices["stop_price"] = bid - Decimal("0.50")
    if order_type is OrderType.TRAIL:
        prices["trail_amount"] = Decimal(1)
    edge = Edge(Decimal("0.55"), Decimal("1.5"), touch - 5)
    command = dataclasses.replace(
        live.enter(symbol=SYMBOL), order_type=order_type, limit_price=None, edge=edge, **prices
    )
    await live.submit(command)
    ended = await live.event(command.command_id, *ENDED)
    fills = await executions(live, command.command_id)
    shares = sum(q for q, _ in fills)
    notional = sum(q * p for q, p in fills)
    assert ended.kind is EventKind.FILLED, (ended.kind, ended.reason, fills)
    assert notional <= cap, f"{shares} shares filled for ${notional} > Max Trade Size ${cap}: {fills}"
    assert shares > at_touch and max(p for _, p in fills) > touch, f"it did not walk the book: {fills}"
    assert all(p <= limit for _, p in fills), (limit, fills)

    # The broker got the protective limit; the ledger and the state rows say so.
    order = await venue_order(live, command.command_id)
    assert (order["order_type"], Decimal(str(order["lmt_price"]))) == (sent_as, limit)
    entry = await live.entry(command.command_id)
    assert entry is not None and json.loads(entry["detail"])["protective_limit"] == str(limit)
    assert ended.limit_price == limit


async def test_an_exit_of_a_position_grown_past_max_trade_size_is_taken_whole(desk: Desk) -> None:
    """Two entries, each within Max Trade Size, add to a position worth more than it; one exit
    closes the whole of it (before, ``risk.max_trade_size`` refused it and left the position
    open). That also leaves the account flat in the symbol for the suites after this one."""
    live = desk.live
    asks = await desk.asks()
    touch = asks[0][0]
    cap = 100 * touch  # each entry: at most 100 shares at the touch
    await desk.cap(cap)
    before = await live.hotpath.position(VENUE_ACCOUNT, SYMBOL)
    assert before >= 0, f"a short {SYMBOL} position left by another test: {before}"
    for _ in range(2):
        bought = dataclasses.replace(
            live.enter(symbol=SYMBOL, limit=touch + 1, stop=touch - 5, quantity=80), order_type=OrderType.LMT
        )
        await live.submit(bought)
        assert (await live.event(bought.command_id, *ENDED)).kind is EventKind.FILLED
    await eventually(lambda: _position_at_least(live, before + 160), timeout=10.0)
    position = await live.hotpath.position(VENUE_ACCOUNT, SYMBOL)
    bid, _ = await live.quote(SYMBOL)
    assert position * bid > cap  # the position has outgrown what one order may be

    leave = exit_command(
        live.agent.agent_id, account=VENUE_ACCOUNT, symbol=SYMBOL, side=Side.SELL, quantity=position,
        order_type=OrderType.MKT,
    )  # fmt: skip
    await live.submit(leave)
    ended = await live.event(leave.command_id, *ENDED)
    assert ended.kind is EventKind.FILLED, (ended.kind, ended.reason)
    assert (await venue_order(live, leave.command_id))["order_type"] == "MKT"  # sent as signed
    sold = await executions(live, leave.command_id)
    assert sum(q for q, _ in sold) == position and sum(q * p for q, p in sold) > cap


async def _touch_is(live: LiveFloor, ask: Decimal) -> bool:
    _, now = await live.quote(SYMBOL)
    return now == ask


async def _position_at_least(live: LiveFloor, shares: int) -> bool:
    return await live.hotpath.position(VENUE_ACCOUNT, SYMBOL) >= shares
