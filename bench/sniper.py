"""Sniper fill quality on the paper venue: icebergs against a naive baseline, in one run.

``python -m bench.sniper [--icebergs 200] [--qty 1000] [--display 100] [--time-scale 10]``

Starts its own paper venue (market clock scaled by ``--time-scale``), one TWS gateway and a
Temporal dev server, and runs the real ``Iceberg`` workflow; its slices are placed on the
gateway with ib_async (the hot path is left out: this measures slicing and pricing, not
intake). The workflow's 3-7 s intervals are scaled by ``1 / time-scale`` (``interval_scale``),
so venue market time and workflow timers run on the same time base; the output says which.

Baseline, in the same run: each parent also goes once as a single marketable limit (the far
touch plus ``--baseline-ticks`` ticks) for the whole quantity. Costs are side-adjusted (average
fill - mid) in basis points, positive = worse than the mid. The iceberg's is shown twice: as the
workflow reports it (each fill against the mid when its slice was sent, which cannot see the
price running away from unfilled slices) and against the mid when the parent started, the
baseline's measure (arrival price), which can.
Icebergs alternate BUY and SELL across the two symbols so the account stays near flat.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from temporalio import activity
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.commands import CancelCommandRequest, OrderCommandRequest, PublishResult
from activities.iceberg_parent import ParentCheck, ParentCheckRequest
from activities.market import MarketActivities
from activities.quotes import StreamingQuotes
from activities.record_writers import RecordWriter, Writers, WritersRequest
from bench.figures import percentile
from brokers.base import (
    BrokerEvent,
    BrokerOrder,
    BrokerOrderStatus,
    Executed,
    OrderRejected,
    OrderStatusChanged,
)
from brokers.ibkr import IbkrBroker, IbkrConfig
from bus.topics import ORDERS_EVENTS
from config.ports import free_port
from config.settings import FloorSettings
from floor.paper_cmd import venue_spec
from floor.services import gateway_spec, venv_bin
from floor.supervisor import Supervisor
from temporal.config import DATA_CONVERTER
from temporal.search_attributes import ensure_search_attributes
from trading.commands import Edge, OrderType, Side
from trading.iceberg import BPS
from trading.order_events import EventKind, OrderEvent, encode
from trading.orders import Fill
from trading.record_signing import HOTPATH_WRITER, sign_record
from trading.signing import generate_private_key, key_id, public_key_bytes
from workflows.iceberg import Iceberg, IcebergInput, IcebergStatus
from workflows.signed_events import SignedOrderEvent

ACCOUNT = "DU1234567"
MARKOUT_HORIZONS_S = (1, 10, 60)
PASSIVE_AFTER_S = 0.05
"""Real seconds after placing after which a slice's fill counts as passive."""
SYMBOLS = ("AAPL", "MSFT")
TICK = Decimal("0.01")
GOAL_BPS = Decimal(5)


@dataclass
class Working:
    parent_id: str | None
    command_id: str
    symbol: str
    side: Side
    quantity: int
    limit: Decimal
    filled: int = 0
    notional: Decimal = Decimal(0)
    exec_ids: set[str] = field(default_factory=set)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    seq: itertools.count[int] = field(default_factory=itertools.count)
    placed_at: float = field(default_factory=time.monotonic)


class SliceMarkouts:
    """Markouts of passive slice fills: the mid ``MARKOUT_HORIZONS_S`` seconds of market time
    after each fill, against the fill price, side-adjusted, in bps (positive = good for us)."""

    def __init__(self, quotes: StreamingQuotes, time_scale: float) -> None:
        self.quotes = quotes
        self.time_scale = time_scale
        self.samples: dict[int, list[Decimal]] = {h: [] for h in MARKOUT_HORIZONS_S}
        self._tasks: set[asyncio.Task[None]] = set()

    def fill(self, symbol: str, side: Side, price: Decimal) -> None:
        task = asyncio.get_running_loop().create_task(self._follow(symbol, side, price))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _follow(self, symbol: str, side: Side, price: Decimal) -> None:
        waited = 0
        for h in MARKOUT_HORIZONS_S:
            # Market time passes at the venue's pace; nothing to await but the clock.
            await asyncio.sleep((h - waited) / self.time_scale)
            waited = h
            q = await self.quotes.quote(symbol)
            self.samples[h].append(((q.bid + q.ask) / 2 - price) * side.sign * BPS / price)

    async def settle(self) -> None:
        """Wait (bounded) for the markouts of the last fills."""
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=max(MARKOUT_HORIZONS_S) / self.time_scale + 10)

    def describe(self) -> str:
        cells = []
        for h, xs in self.samples.items():
            mean = f"{statistics.fmean(float(x) for x in xs):.3f}" if xs else "n/a"
            cells.append(f"{h} s {mean} (n={len(xs)})")
        return "passive slice fills, markout bps (mid later - fill, side-adjusted; < 0 = adverse): " + (
            "  ".join(cells)
        )


class PaperDesk:
    """Places orders on the gateway and reports what happens to them as ``orders.events``
    records, signalled to the parent iceberg as the bridge would."""

    def __init__(self, broker: IbkrBroker, client: Client, markouts: SliceMarkouts | None = None) -> None:
        self.broker = broker
        self.client = client
        self.markouts = markouts
        self.orders: dict[str, Working] = {}
        self.writer_key = generate_private_key()
        """Signs the desk's slice records, as the hot path's key signs the floor's."""
        self._tasks: set[asyncio.Task[None]] = set()
        broker.set_event_handler(self._on_event)

    def place(self, w: Working) -> None:
        self.orders[w.command_id] = w
        self.broker.place(
            BrokerOrder(
                order_ref=w.command_id,
                account=ACCOUNT,
                symbol=w.symbol,
                side=w.side,
                quantity=w.quantity,
                order_type=OrderType.LMT,
                limit_price=w.limit,
            )
        )

    def _on_event(self, event: BrokerEvent) -> None:
        ref = getattr(event, "order_ref", None)
        w = self.orders.get(ref) if ref else None
        if w is None or w.done.is_set():
            return
        kind: EventKind | None = None
        fill: Fill | None = None
        if isinstance(event, Executed) and event.exec_id not in w.exec_ids:
            qty = min(event.quantity, w.quantity - w.filled)
            w.exec_ids.add(event.exec_id)
            if qty > 0:
                w.filled += qty
                w.notional += qty * event.price
                fill = Fill(event.exec_id, qty, event.price)
                passive = time.monotonic() - w.placed_at > PASSIVE_AFTER_S
                if self.markouts is not None and w.parent_id is not None and passive:
                    self.markouts.fill(w.symbol, w.side, event.price)
                kind = EventKind.FILLED if w.filled == w.quantity else EventKind.PARTIALLY_FILLED
        elif isinstance(event, OrderStatusChanged) and event.status in (
            BrokerOrderStatus.CANCELLED,
            BrokerOrderStatus.INACTIVE,
        ):
            kind = EventKind.CANCELLED if event.status is BrokerOrderStatus.CANCELLED else EventKind.REJECTED
        elif isinstance(event, OrderRejected) and not event.order_still_working:
            kind = EventKind.REJECTED
        if kind is None:
            return
        if kind in (EventKind.FILLED, EventKind.CANCELLED, EventKind.REJECTED):
            w.done.set()
        if w.parent_id is not None:
            record = OrderEvent(
                event_id=f"{w.command_id}-{next(w.seq)}",
                command_id=w.command_id,
                parent_id=w.parent_id,
                kind=kind,
                account=ACCOUNT,
                symbol=w.symbol,
                agent_id="sniper",
                side=w.side.value,
                quantity=w.quantity,
                filled_qty=w.filled,
                avg_fill_price=w.notional / w.filled if w.filled else None,
                last_fill=fill,
                reason=None,
                ts=datetime.now(UTC),
            )
            task = asyncio.get_running_loop().create_task(self._signal(w.parent_id, record))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _signal(self, parent_id: str, record: OrderEvent) -> None:
        signed = sign_record(ORDERS_EVENTS, encode(record), self.writer_key).decode()
        await self.client.get_workflow_handle(parent_id).signal("slice_record", SignedOrderEvent(signed))

    @activity.defn(name="check_iceberg_parent")
    async def check_iceberg_parent(self, req: ParentCheckRequest) -> ParentCheck:
        """The bench's parents are in no ledger (it measures fill quality, not trust): each
        passes, and the desk's own key is the one writer of slice records."""
        key = self.writer_key
        writer = RecordWriter(key_id(key), HOTPATH_WRITER, public_key_bytes(key).hex())
        return ParentCheck(activity.info().workflow_id or "", None, writers=[writer])

    @activity.defn(name="record_writers")
    async def record_writers(self, _: WritersRequest) -> Writers:
        """The desk's key again when a long iceberg re-reads its writers (they go stale after
        a few seconds of workflow time)."""
        key = self.writer_key
        return Writers([RecordWriter(key_id(key), HOTPATH_WRITER, public_key_bytes(key).hex())])

    @activity.defn(name="publish_order")
    async def publish_order(self, req: OrderCommandRequest) -> PublishResult:
        if req.command_id not in self.orders:  # a retried attempt places nothing new
            self.place(
                Working(
                    req.parent_id, req.command_id, req.symbol, Side(req.side), req.quantity, req.limit_price
                )
            )
        return PublishResult(req.command_id, 0, 0)

    @activity.defn(name="publish_cancel")
    async def publish_cancel(self, req: CancelCommandRequest) -> PublishResult:
        w = self.orders.get(req.target_command_id)
        if w is not None and not w.done.is_set():
            self.broker.cancel(req.target_command_id)
        return PublishResult(req.command_id, 0, 0)


def cost_bps(side: Side, avg: Decimal, mid: Decimal) -> Decimal:
    return (avg - mid) * side.sign * BPS / mid


async def run_baseline(
    desk: PaperDesk, quotes: StreamingQuotes, symbol: str, side: Side, qty: int, ticks: int, wait_s: float
) -> Decimal | None:
    q = await quotes.quote(symbol)
    mid = (q.bid + q.ask) / 2
    limit = q.ask + ticks * TICK if side is Side.BUY else q.bid - ticks * TICK
    w = Working(None, f"naive-{uuid.uuid4().hex[:12]}", symbol, side, qty, limit)
    desk.place(w)
    try:
        await asyncio.wait_for(w.done.wait(), wait_s)
    except TimeoutError:
        desk.broker.cancel(w.command_id)
        await asyncio.wait_for(w.done.wait(), 10)
    return cost_bps(side, w.notional / w.filled, mid) if w.filled else None


def describe(name: str, costs: list[Decimal], attempted: int) -> str:
    if not costs:
        return f"{name}: no fills out of {attempted}"
    ordered = sorted(costs)

    within = sum(1 for c in costs if abs(c) <= GOAL_BPS)
    return (
        f"{name}: {len(costs)}/{attempted} filled; (avg fill - mid) bps, side-adjusted: "
        f"min {ordered[0]:.2f}  p10 {percentile(ordered, 10):.2f}  p50 {percentile(ordered, 50):.2f}  "
        f"p90 {percentile(ordered, 90):.2f}  "
        f"max {ordered[-1]:.2f}  mean {statistics.fmean(float(c) for c in costs):.2f}; "
        f"within {GOAL_BPS} bps: {within}/{len(costs)} ({100 * within / len(costs):.1f} %)"
    )


async def bench(args: argparse.Namespace) -> None:
    var = Path(tempfile.mkdtemp(prefix="bench-sniper-"))
    settings = FloorSettings(
        var_dir=var,
        venue_port=free_port(),
        venue_control_port=free_port(),
        ib_port=free_port(),
        ib_standby_port=free_port(),
    )
    supervisor = Supervisor(settings.log_dir)
    try:
        supervisor.start(venue_spec(settings, time_scale=args.time_scale, flow=args.flow))
        supervisor.start(gateway_spec(settings, "primary", settings.ib_port, pacing=False, prefix="bench"))
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=str(venv_bin("temporal")), data_converter=DATA_CONVERTER
        )
        try:
            await ensure_search_attributes(env.client)
            broker = IbkrBroker(IbkrConfig(host=settings.host, port=settings.ib_port, client_id=7))
            await broker.connect()
            try:
                await run(args, env.client, broker)
            finally:
                await broker.close()
        finally:
            await env.shutdown()
    finally:
        supervisor.stop_all()


async def run(args: argparse.Namespace, client: Client, broker: IbkrBroker) -> None:
    quotes = StreamingQuotes(broker, tick=TICK, first_quote_timeout=10.0)
    markouts = SliceMarkouts(quotes, args.time_scale)
    desk = PaperDesk(broker, client, markouts)
    market = MarketActivities(quotes)
    scale = Decimal(repr(1 / args.time_scale))
    queue = "bench-sniper"
    print(
        f"time base: venue market clock x{args.time_scale:g} (market seconds per real second); "
        f"workflow intervals x{scale} -> both on the venue's time base"
        + (" (real time)" if args.time_scale == 1 else f" (scaled by {args.time_scale:g})")
    )
    iceberg_costs: list[Decimal] = []
    arrival_costs: list[Decimal] = []
    naive_costs: list[Decimal] = []
    statuses: dict[str, int] = {}
    started = time.monotonic()
    sem = asyncio.Semaphore(args.concurrency)

    async def one(i: int) -> None:
        symbol = SYMBOLS[i % len(SYMBOLS)]
        side = Side.BUY if (i // len(SYMBOLS)) % 2 == 0 else Side.SELL
        async with sem:
            q = await quotes.quote(symbol)
            mid = (q.bid + q.ask) / 2
            stop = mid * Decimal("0.95") if side is Side.BUY else mid * Decimal("1.05")
            result = await client.execute_workflow(
                Iceberg.run,
                IcebergInput(
                    account=ACCOUNT,
                    symbol=symbol,
                    side=side,
                    total_qty=args.qty,
                    display_qty=args.display,
                    edge=Edge(Decimal("0.55"), Decimal("2"), stop.quantize(TICK)),
                    jitter=Decimal("0.05"),
                    interval_scale=scale,
                ),
                id=f"bench-ice-{i}-{uuid.uuid4().hex[:6]}",
                task_queue=queue,
            )
            statuses[result.status.value] = statuses.get(result.status.value, 0) + 1
            if result.status is IcebergStatus.COMPLETED and result.quality is not None:
                iceberg_costs.append(result.quality.cost_bps)
                arrival_costs.append(cost_bps(side, result.quality.vwap, mid).quantize(Decimal("0.01")))
            naive = await run_baseline(
                desk,
                quotes,
                symbol,
                side,
                args.qty,
                args.baseline_ticks,
                wait_s=5.0 / args.time_scale + 2.0,
            )
            if naive is not None:
                naive_costs.append(naive.quantize(Decimal("0.01")))
            done = len(iceberg_costs) + statuses.get("Cancelled", 0) + statuses.get("Rejected", 0)
            if done % 20 == 0:
                print(
                    f"  {done}/{args.icebergs} icebergs done ({time.monotonic() - started:.0f} s)", flush=True
                )

    async with Worker(
        client,
        task_queue=queue,
        workflows=[Iceberg],
        activities=[
            market.get_quote,
            desk.publish_order,
            desk.publish_cancel,
            desk.check_iceberg_parent,
            desk.record_writers,
        ],
        max_concurrent_activities=64,
    ):
        await asyncio.gather(*(one(i) for i in range(args.icebergs)))
    await markouts.settle()
    print(f"venue order flow: {args.flow}")
    print(
        f"{args.icebergs} parents of {args.qty} shares, display {args.display}, "
        f"in {time.monotonic() - started:.0f} s"
    )
    print(f"iceberg outcomes: {statuses}")
    print(describe("iceberg (Sniper), each fill against its slice's mid", iceberg_costs, args.icebergs))
    print(
        describe(
            "iceberg (Sniper), against the mid when the parent started (as the baseline)",
            arrival_costs,
            args.icebergs,
        )
    )
    print(
        describe(
            f"naive (one marketable limit, far touch + {args.baseline_ticks} ticks)",
            naive_costs,
            args.icebergs,
        )
    )
    print(markouts.describe())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.sniper",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--icebergs", type=int, default=200)
    parser.add_argument("--qty", type=int, default=1000)
    parser.add_argument("--display", type=int, default=100)
    parser.add_argument("--time-scale", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--baseline-ticks", type=int, default=5)
    parser.add_argument(
        "--flow", choices=("agents", "zi"), default=None, help="venue order flow (default: FLOOR_PAPER_FLOW)"
    )
    args = parser.parse_args(argv)
    if args.time_scale <= 0:
        parser.error("--time-scale must be positive")
    args.flow = args.flow or FloorSettings().paper_flow
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
    sys.exit(0)
