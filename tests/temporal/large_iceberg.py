"""What a 10,000-share iceberg needs from the shared venue account, and the account as it was
found afterwards.

The hot-path suites trade the venue's one account (``DU1234567``) under ``MAIN_PROFILE``:
1,000 shares per symbol and $500,000 gross exposure, far below a 10,000-share parent. The
``large_iceberg_room`` fixture, for one test:

* gives the account :data:`LARGE_PROFILE` (a signed ledger change, as an operator makes it) and
  waits until the hot path trades under it: the hot path reloads profiles in the background,
  and its refusal of a probe parent (:func:`profile_in_force`) names the profile it holds;
* makes the symbol's market :data:`BUSY_FACTOR` times as active at the venue (its order-flow
  event rate, through the venue's control API), so slices placed at ``1 / BUSY_FACTOR`` of the
  production intervals meet as much flow per interval as production slices do;
* afterwards trades the account back to the position it found, through the floor's own path
  (signed ``exit`` commands through the hot path, so the ledger, ``order_events`` and the hot
  path's book follow), then restores ``MAIN_PROFILE`` (again awaited by probe) and the market's
  rate, so the suites that run later find the account and the limits they expect.

Why a busier market: AAPL's spread is one tick, so a slice joins the best bid or offer behind
the queue already there and fills as market orders eat that queue; at the usual rate a
sub-second slice would mostly be cancelled and repriced.

Symbol: AAPL, not MSFT. The venue checks buying power Reg T style (four times what the 25 %
initial margin leaves of a $1,000,000 account): 10,000 MSFT (about $4.2 million) is more than
the account may hold, 10,000 AAPL (about $2.3 million) is not. The hot path streams only AAPL
and MSFT, so those are the symbols it has fresh prices for.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle

from ledger.risk_profiles import set_profile
from tests.factories import Agent, cancel_all_command, exit_command, new_agent
from tests.fixtures.hotpath import fresh_agent, register, send
from tests.fixtures.paper import PaperStack
from tests.helpers import eventually
from tests.hotpath.conftest import MAIN_PROFILE, VENUE_ACCOUNT, HotPathProcess
from tests.hotpath.live_floor import CENT
from trading.commands import Command, CommandKind, Edge, Side, TimeInForce, utc_now_ms
from trading.order_events import TERMINAL_KINDS
from trading.risk import Refusal
from trading.sizing import RiskProfile

SYMBOL = "AAPL"
BUSY_FACTOR = 8
"""How many times the venue's usual order flow the symbol gets during the test; the iceberg's
intervals are scaled by its inverse (``IcebergInput.interval_scale``)."""
STOP_DISTANCE = Decimal(10)
"""Stop distance of the slices' edge: 100 shares risk $1,000, within the profiles' $2,000."""

LARGE_PROFILE = dataclasses.replace(
    MAIN_PROFILE, max_trade_size=Decimal("300000"), max_position=30_000, max_gross_exposure=Decimal("3500000")
)
"""Room for 10,000 AAPL on top of what the other suites hold (at most 1,000 of each symbol):
exposure binds, at $3.5 million. The position limit is set well above it so that a probe parent
of :data:`PROBE_QTY` is refused for exposure under this profile and for position under
``MAIN_PROFILE``. The trade size admits the 1,000-share orders that flatten the account."""
PROBE_QTY = 28_000
"""More than twice any position the account holds before the probe, so the probe never reduces
it; within LARGE_PROFILE's position limit; over its exposure limit at any AAPL price above $135."""
FLATTEN_CHUNK = 1_000
"""Shares per flattening order: within LARGE_PROFILE's trade size and the venue's buying power."""

REASON_UNDER = {
    MAIN_PROFILE: Refusal.MAX_POSITION.value,
    LARGE_PROFILE: Refusal.MAX_GROSS_EXPOSURE.value,
}
"""Why the hot path refuses the probe parent under each profile."""


def _pred(check: Callable[[], Awaitable[bool]]) -> Callable[[], bool | Awaitable[bool]]:
    """An async predicate as :func:`eventually` types it."""
    return check


async def position(pool: asyncpg.Pool, symbol: str) -> int:
    """The account's signed position in ``symbol`` from the floor's own fills."""
    rows = await pool.fetch(
        "SELECT side, coalesce(sum(fill_qty), 0) AS q FROM order_events"
        " WHERE account = $1 AND symbol = $2 AND exec_id IS NOT NULL GROUP BY side",
        VENUE_ACCOUNT,
        symbol,
    )
    return sum(int(r["q"]) * (1 if r["side"] == "BUY" else -1) for r in rows)


@dataclass
class IcebergRoom:
    """What the test gets: the account's starting position in :data:`SYMBOL`, and a place to
    register its iceberg so that a failed run does not leave it trading."""

    start_position: int
    icebergs: list[WorkflowHandle[Any, Any]] = field(default_factory=list)


@dataclass
class _Floor:
    paper: PaperStack
    producer: AIOKafkaProducer
    pool: asyncpg.Pool
    agent: Agent
    hotpath: HotPathProcess

    async def profile_in_force(self) -> str:
        """The reason the hot path gives for refusing a probe parent of :data:`PROBE_QTY`.

        A parent is risk-checked and ledgered, never sent (a refused one starts nothing), so
        the probe changes nothing at the venue."""
        command = Command(
            kind=CommandKind.ICEBERG, command_id=f"probe-{uuid.uuid4().hex}", agent_id=self.agent.agent_id,
            account=VENUE_ACCOUNT, nonce=uuid.uuid4().hex, issued_at=utc_now_ms(), symbol=SYMBOL,
            side=Side.BUY, edge=Edge(Decimal("0.55"), Decimal("2"), Decimal("1")), tif=TimeInForce.DAY,
            quantity=PROBE_QTY, display_size=100,
        )  # fmt: skip
        await send(self.producer, self.agent.sign(command))

        async def ledgered() -> asyncpg.Record | None:
            return await self.pool.fetchrow(
                "SELECT decision, reason FROM ledger_entries WHERE command_id = $1", command.command_id
            )

        entry: Callable[[], asyncpg.Record | None | Awaitable[asyncpg.Record | None]] = ledgered
        row = await eventually(entry, timeout=20, interval=0.05)
        assert row is not None and row["decision"] == "rejected", row
        reason: str = row["reason"]
        return reason

    async def await_profile(self, profile: RiskProfile) -> None:
        wanted = REASON_UNDER[profile]

        async def in_force() -> bool:
            return await self.profile_in_force() == wanted

        await eventually(_pred(in_force), timeout=30, interval=0.2)

    async def flatten_to(self, target: int) -> None:
        """Trade :data:`SYMBOL` back toward ``target`` shares with marketable limit ``exit``
        orders of at most :data:`FLATTEN_CHUNK` (a percent through the far touch: they take what
        the book offers and any rest meets the flow that arrives at the touch).

        Positions here are the hot path's own, the ones its exits are checked against (the
        venue account also carries trades other tests made on it directly). An exit only ever
        shrinks a position, so a ``target`` past zero from here leaves the account flat."""
        current = await self.hotpath.position(VENUE_ACCOUNT, SYMBOL)
        goal = min(max(target, 0), current) if current >= 0 else max(min(target, 0), current)
        delta = goal - current
        if delta == 0:
            return
        side = Side.BUY if delta > 0 else Side.SELL
        bid, ask = await self.paper.quote(SYMBOL)
        limit = (
            (ask * Decimal("1.01")).quantize(CENT, ROUND_FLOOR)
            if side is Side.BUY
            else (bid * Decimal("0.99")).quantize(CENT, ROUND_CEILING)
        )
        left = abs(delta)
        while left:
            qty = min(left, FLATTEN_CHUNK)
            left -= qty
            command = exit_command(
                self.agent.agent_id, account=VENUE_ACCOUNT, side=side, quantity=qty, limit=limit,
                symbol=SYMBOL, command_id=f"flatten-{uuid.uuid4().hex}",
            )  # fmt: skip
            await send(self.producer, self.agent.sign(command))

        async def flat() -> bool:
            return await self.hotpath.position(VENUE_ACCOUNT, SYMBOL) == goal

        await eventually(_pred(flat), timeout=60, interval=0.2)

    async def stop_icebergs(self, handles: list[WorkflowHandle[Any, Any]]) -> None:
        """End any iceberg a failed test left running, and its working slice: the position it
        leaves must stay put while the account is flattened."""
        stopped = []
        for handle in handles:
            if (await handle.describe()).status is WorkflowExecutionStatus.RUNNING:
                await handle.terminate(reason="test over")
                stopped.append(handle.id)
        if not stopped:
            return
        cancel_all = cancel_all_command(
            self.agent.agent_id, account=VENUE_ACCOUNT, symbol=SYMBOL, command_id=f"cancel-{uuid.uuid4().hex}"
        )
        await send(self.producer, self.agent.sign(cancel_all))

        async def slices_over() -> bool:
            working = await self.pool.fetchval(
                "SELECT count(*) FROM (SELECT command_id FROM order_events WHERE parent_id = ANY($1)"
                " GROUP BY command_id HAVING NOT bool_or(kind = ANY($2))) AS w",
                stopped,
                [k.value for k in TERMINAL_KINDS],
            )
            return working == 0

        await eventually(_pred(slices_over), timeout=30, interval=0.2)


@pytest.fixture
async def large_iceberg_room(
    hotpath: HotPathProcess,
    paper: PaperStack,
    ledger_pool: asyncpg.Pool,
    command_producer: AIOKafkaProducer,
    temporal_client: Client,
) -> AsyncIterator[IcebergRoom]:
    del temporal_client  # required running, not used directly
    operator = new_agent(f"ops-{uuid.uuid4().hex[:8]}", frozenset({VENUE_ACCOUNT}))
    await register(ledger_pool, operator, "operator")
    trader = await fresh_agent(ledger_pool)
    floor = _Floor(paper, command_producer, ledger_pool, trader, hotpath)

    async def use(profile: RiskProfile) -> None:
        await set_profile(
            ledger_pool,
            VENUE_ACCOUNT,
            profile,
            operator_id=operator.agent_id,
            operator_key=operator.private_key,
        )
        await floor.await_profile(profile)

    status = await paper.acontrol("GET", "/status")
    usual_rate = next(s for s in status["symbols"] if s["symbol"] == SYMBOL)["event_rate"]
    room = IcebergRoom(start_position=await position(ledger_pool, SYMBOL))
    book_start = await hotpath.position(VENUE_ACCOUNT, SYMBOL)
    await floor.await_profile(MAIN_PROFILE)  # the probe tells the profiles apart from here on
    await paper.acontrol("POST", f"/symbols/{SYMBOL}/rate", {"rate": usual_rate * BUSY_FACTOR})
    try:
        await use(LARGE_PROFILE)
        yield room
        await floor.stop_icebergs(room.icebergs)
        await floor.flatten_to(book_start)
    finally:
        try:
            await use(MAIN_PROFILE)
        finally:
            await paper.acontrol("POST", f"/symbols/{SYMBOL}/rate", {"rate": usual_rate})
