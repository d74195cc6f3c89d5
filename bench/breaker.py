"""Circuit breaker benchmark: a -10% crash of one symbol with the floor's orders working.

    python -m bench.breaker [--trips 20] [--sizes 100,1000] [--crash-pct 10] [--quick]

Starts its own embedded Postgres, Kafka (Tansu), paper venue, primary and standby gateways (IB's
pacing on, 50 messages/s a client, throughout: it is never switched off) and the hot path
streaming the venue's five symbols, on free ports under a scratch ``var/bench-*`` directory
that is removed afterwards. Then, for each book size and trip:

* **floor** — the book: 1-share buys 20% under the bid, spread evenly over the five symbols,
  sent as signed ``enter`` commands through ``agent.commands`` (ib_async's 45 a second paces
  them to the venue); once all are working, a crash of one symbol (in turn) through the venue's
  control API (``POST /symbols/{SYM}/flash-crash``, ``ms`` 0: one tick). The hot path trips,
  cancels, confirms (:mod:`hotpath.circuit_breaker_sweep`) and is re-armed by a signed
  ``breaker_arm``; the symbol's price is put back. Measured from the crashing tick's arrival in
  the hot path (its ``/health``: the trip's wall time less its tick-to-cancel time):
  (a) -> the venue's own timestamp of the last of the book's orders cancelled (``GET /orders``,
  the market clock, which is this machine's wall clock: it starts at ``time.time_ns()`` and
  runs at scale 1), and (b) -> the floor has
  applied every cancel acknowledgement to its order map (the sweep's ``to_last_ack_us``: in the
  hot path's own clock). And the share of the book the venue lists as cancelled (must be 100%).
* **baseline** — ``ib_async`` alone: the same book placed by a bare client, then
  ``reqGlobalCancel``; from that call to the venue's timestamp of its last cancel (a) and to the
  client receiving the last ``Cancelled`` status (b).

The floor's figures start at the crashing tick (detection included), the baseline's at the
global cancel call. Goals: (a) p99 <= 10 ms at 1,000 orders; (b) p99 <= 10 ms at 100 and
<= 50 ms at 1,000. Setting a book up is paced by IB's limit (1,000 orders take ~22 s, floor and
baseline each), so the full run (20 trips at 100 and 20 at 1,000) takes some 20 minutes on a
quiet machine; ``--quick`` (2 trips at 50 and 100) under a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from bench.figures import Figures
from bench.hotpath import ACCOUNT, Stack, bench_settings, prepare_ledger
from config.settings import FloorSettings
from floor import services
from floor.paper_cmd import control_token
from paper.venue.control_token import authorization
from paper.venue.symbols import DEFAULT_SYMBOLS

console = Console(width=None if Console().is_terminal else 120)

SYMBOLS = tuple(c.contract.symbol for c in DEFAULT_SYMBOLS)
BASELINE_CLIENT_ID = 91
OPERATOR = "bench-breaker-ops"
CENT = Decimal("0.01")
GOALS_US = {("a", 1000): 10_000, ("b", 100): 10_000, ("b", 1000): 50_000}
BOOK_RATE = 45
"""Commands a second a book is sent at: ib_async's pacing, which sends them on no faster."""
SETTLE_S = 60.0
"""Bound on every wait for the venue, the hot path or the client: a trip that takes longer is
reported as a failure, never waited for."""


@dataclass
class SizeResult:
    size: int
    floor_a: list[int] = field(default_factory=list)
    floor_b: list[int] = field(default_factory=list)
    base_a: list[int] = field(default_factory=list)
    base_b: list[int] = field(default_factory=list)
    shares: list[float] = field(default_factory=list)
    """Per floor trip: the share of the book the venue lists as cancelled."""
    not_cancelled: int = 0
    failures: list[str] = field(default_factory=list)


# --- setup ----------------------------------------------------------------------------------


async def prepare(settings: FloorSettings) -> tuple[Any, Any]:
    """The ledger, topics and keys as :func:`bench.hotpath.prepare_ledger` makes them, plus an
    operator key of the benchmark's own that re-arms the breaker; (agent key, operator key)."""
    import asyncpg

    from ledger.keys import register_key
    from trading.signing import generate_private_key, public_key_bytes

    agent_key = await prepare_ledger(settings)
    operator_key = generate_private_key()
    conn = await asyncpg.connect(settings.db_url)
    try:
        await register_key(conn, OPERATOR, public_key_bytes(operator_key), "operator", ["*"])
    finally:
        await conn.close()
    return agent_key, operator_key


def start_floor(stack: Stack) -> None:
    from hotpath.service import hotpath_spec

    s = stack.settings
    for name, port in (("primary", s.ib_port), ("standby", s.ib_standby_port)):
        stack.step(f"starting gateway {name} (pacing on)")
        stack.per_run.append(stack.supervisor.start(services.gateway_spec(s, name, port, pacing=True)))
    stack.step("starting the hot path")
    stack.per_run.append(stack.supervisor.start(hotpath_spec(s, symbols=SYMBOLS, group_id=stack.group_id)))


# --- one trip -------------------------------------------------------------------------------


class Bench:
    def __init__(self, settings: FloorSettings, agent_key: Any, operator_key: Any) -> None:
        self.settings = settings
        self.agent_key = agent_key
        self.operator_key = operator_key
        self.venue = httpx.AsyncClient(
            base_url=f"http://{settings.host}:{settings.venue_control_port}",
            headers=authorization(control_token(settings)),
            timeout=30.0,
        )
        self.hot = httpx.AsyncClient(
            base_url=f"http://{settings.host}:{settings.hotpath_health_port}", timeout=10.0
        )
        self.producer: Any = None

    async def start(self) -> None:
        from bus.kafka import start_producer

        self.producer = await start_producer(self.settings.kafka, "bench-breaker")

    async def close(self) -> None:
        if self.producer is not None:
            await self.producer.stop()
        await self.venue.aclose()
        await self.hot.aclose()

    async def limits(self) -> dict[str, Decimal]:
        """A resting buy price per symbol: 20% under the bid, below any -10% crash."""
        status = (await self.venue.get("/status")).json()
        return {
            s["symbol"]: (Decimal(s["bid"]) * Decimal("0.8")).quantize(CENT, ROUND_DOWN)
            for s in status["symbols"]
            if s["bid"] is not None
        }

    async def open_orders(self) -> int:
        return int((await self.venue.get("/status")).json()["open_orders"])

    async def check_clock(self) -> None:
        """The venue's market clock must be this machine's wall clock: it starts at
        ``time.time_ns()`` and runs on the monotonic clock at scale 1, unpaused, so its
        timestamps compare with this process's ``time.time_ns()`` directly (a round-trip
        estimate of the offset would carry the HTTP hop's noise, milliseconds on a busy machine)."""
        status = (await self.venue.get("/status")).json()
        if status["paused"] or status["time_scale"] != 1:
            raise SystemExit("the venue's clock is paused or scaled: its timestamps are not wall-clock times")

    async def until(self, what: str, check: Callable[[], Any], bound_s: float = SETTLE_S) -> Any:
        deadline = time.monotonic() + bound_s
        while True:
            found = await check()
            if found:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: not within {bound_s:g} s")
            await asyncio.sleep(0.02)  # polled: the venue and the hot path push nothing here

    async def send(self, command: Any, key: bytes) -> None:
        from bus.topics import AGENT_COMMANDS
        from trading.signing import sign_command

        signer = self.operator_key if command.agent_id == OPERATOR else self.agent_key
        await self.producer.send_and_wait(AGENT_COMMANDS, sign_command(command, signer).to_wire(), key=key)

    async def floor_book(self, size: int) -> set[str]:
        from trading.commands import Command, CommandKind, Edge, OrderType, Side, TimeInForce, utc_now_ms

        limits = await self.limits()
        run = uuid.uuid4().hex[:8]
        refs = set()
        sends = []
        for i in range(size):
            symbol = SYMBOLS[i % len(SYMBOLS)]
            limit = limits[symbol]
            command = Command(
                kind=CommandKind.ENTER,
                command_id=f"brk-{run}-{i}",
                agent_id="bench-agent",
                account=ACCOUNT,
                nonce=uuid.uuid4().hex,
                issued_at=utc_now_ms(),
                symbol=symbol,
                side=Side.BUY,
                order_type=OrderType.LMT,
                limit_price=limit,
                edge=Edge(p=Decimal("0.55"), b=Decimal("1.5"), stop_price=limit - Decimal("5")),
                tif=TimeInForce.DAY,
                quantity=1,
            )
            refs.add(command.command_id)
            sends.append(self.send(command, f"{ACCOUNT}/{symbol}".encode()))
            if len(sends) == BOOK_RATE:
                # At IB's pace: a command the hot path decides long after it was signed (the
                # rest of a book queued behind it) is refused as stale.
                await asyncio.gather(*sends, asyncio.sleep(1.0))
                sends = []
        await asyncio.gather(*sends)
        await self.until(f"{size} floor orders working", lambda: self._working(size), _setup_bound_s(size))
        return refs

    async def _working(self, size: int) -> bool:
        return await self.open_orders() >= size

    async def health(self) -> dict[str, Any]:
        body: dict[str, Any] = (await self.hot.get("/health")).json()
        return body

    async def floor_trip(self, size: int, symbol: str, crash_pct: Decimal, result: SizeResult) -> None:
        refs = await self.floor_book(size)
        before = (await self.health())["last_sweep"]
        await self.venue.post(f"/symbols/{symbol}/flash-crash", json={"pct": float(crash_pct), "ms": 0})
        try:

            async def swept() -> dict[str, Any] | None:
                health = await self.health()
                sweep = health["last_sweep"]
                return health if sweep is not None and sweep != before else None

            health = await self.until(f"the trip at {size} orders", swept)
            trip, sweep = health["last_trip"], health["last_sweep"]
            at_ns = _wall_ns(trip["at"])
            tick_ns = at_ns - int(trip["tick_to_cancel_us"] * 1000)
            rows = await self.venue_rows(refs)
            cancelled = [r for r in rows if r["status"] == "Cancelled"]
            result.shares.append(len(cancelled) / size)
            result.not_cancelled += len(sweep["not_cancelled"])
            if cancelled:
                result.floor_a.append(max(r["ended_ns"] for r in cancelled) - tick_ns)
            if sweep["to_last_ack_us"] is not None:
                result.floor_b.append(int(sweep["to_last_ack_us"] * 1000))
        finally:
            await self.rearm()
            # Back up to where it was: up 1 / (1 - pct) - 1.
            up = (1 / (1 - crash_pct / 100) - 1) * 100
            await self.venue.post(f"/symbols/{symbol}/move", json={"pct": float(up), "ms": 0})
            await self.until("the book cancelled", self._empty)

    async def recover(self, ib: Any) -> None:
        """After a failed trip: re-armed, and no order left working (the rest of a book may
        still be leaving the hot path at IB's pacing: cancelled until none is left)."""
        await self.rearm()

        async def emptied() -> bool:
            ib.reqGlobalCancel()
            await asyncio.sleep(1.0)  # the paced remainder of a book arrives over seconds
            return await self._empty()

        await self.until("the venue's book emptied after a failed trip", emptied, _setup_bound_s(1000))

    async def _empty(self) -> bool:
        return await self.open_orders() == 0

    async def venue_rows(self, refs: set[str]) -> list[dict[str, Any]]:
        orders = (await self.venue.get("/orders")).json()["orders"]
        return [o for o in orders if o["order_ref"] in refs]

    async def rearm(self) -> None:
        from floor.breaker_cmd import breaker_command
        from trading.commands import CommandKind

        deadline = time.monotonic() + SETTLE_S
        while (await self.health())["trading_state"] != "ACTIVE":
            if time.monotonic() > deadline:
                raise TimeoutError(f"the re-arm: not within {SETTLE_S:g} s")
            # Signed afresh each time: an arm the hot path reads late is refused as stale.
            await self.send(breaker_command(CommandKind.BREAKER_ARM, OPERATOR), b"*/")
            with contextlib.suppress(TimeoutError):
                await self.until("the re-arm", self._active, 10.0)

    async def _active(self) -> bool:
        return (await self.health())["trading_state"] == "ACTIVE"

    async def baseline_trip(self, ib: Any, size: int, result: SizeResult) -> None:
        from ib_async import Order, Stock

        limits = await self.limits()
        run = uuid.uuid4().hex[:8]
        trades = []
        for i in range(size):
            symbol = SYMBOLS[i % len(SYMBOLS)]
            order = Order(
                action="BUY", totalQuantity=1, orderType="LMT", lmtPrice=float(limits[symbol]),
                account=ACCOUNT, orderRef=f"base-{run}-{i}", tif="DAY",
            )  # fmt: skip
            trades.append(ib.placeOrder(Stock(symbol, "SMART", "USD"), order))
        await self.until(f"{size} baseline orders working", lambda: self._working(size), _setup_bound_s(size))
        done = asyncio.get_running_loop().create_future()
        left = {t.order.orderId for t in trades}
        last_ns = [0]

        def on_status(trade: Any) -> None:
            if trade.orderStatus.status == "Cancelled" and trade.order.orderId in left:
                left.discard(trade.order.orderId)
                if not left and not done.done():
                    last_ns[0] = time.time_ns()
                    done.set_result(None)

        ib.orderStatusEvent += on_status
        try:
            sent_ns = time.time_ns()
            ib.reqGlobalCancel()
            await asyncio.wait_for(done, SETTLE_S)
        finally:
            ib.orderStatusEvent -= on_status
        rows = await self.venue_rows({t.order.orderRef for t in trades})
        result.base_a.append(max(r["ended_ns"] for r in rows) - sent_ns)
        result.base_b.append(last_ns[0] - sent_ns)
        await self.until("the baseline book cancelled", self._empty)


def _setup_bound_s(size: int) -> float:
    """A book goes out at IB's pacing (45 a second from ib_async): four times that, and a minute."""
    return SETTLE_S + 4 * size / 45


def _wall_ns(iso: str) -> int:
    at = datetime.fromisoformat(iso)
    return int(at.timestamp()) * 1_000_000_000 + at.microsecond * 1000


async def measure(
    settings: FloorSettings,
    keys: tuple[Any, Any],
    sizes: Sequence[int],
    trips: int,
    crash_pct: Decimal,
    step: Callable[[str], None],
    results: list[SizeResult],
) -> None:
    """Fill ``results`` trip by trip (an interrupted run still reports what it measured)."""
    from ib_async import IB

    bench = Bench(settings, *keys)
    ib = IB()
    try:
        await bench.start()
        await ib.connectAsync(settings.ib_gateway_host, settings.ib_port, BASELINE_CLIENT_ID, timeout=10)
        await bench.check_clock()
        await bench.until("the hot path consuming", bench._active)
        for size in sizes:
            result = SizeResult(size)
            results.append(result)
            for i in range(trips):
                symbol = SYMBOLS[i % len(SYMBOLS)]
                step(f"{size} orders: trip {i + 1}/{trips} (crash {symbol} -{crash_pct}%)")
                try:
                    await bench.floor_trip(size, symbol, crash_pct, result)
                    step(f"{size} orders: baseline {i + 1}/{trips}")
                    await bench.baseline_trip(ib, size, result)
                except TimeoutError as exc:
                    result.failures.append(str(exc))
                    await bench.recover(ib)
    finally:
        ib.disconnect()
        await bench.close()


def run_all(args: argparse.Namespace) -> list[SizeResult]:
    root = Path(__file__).resolve().parent.parent / "var"
    root.mkdir(exist_ok=True)
    var_dir = Path(tempfile.mkdtemp(prefix="bench-", dir=root))
    settings = bench_settings(var_dir)
    stack = Stack(settings, lambda text: console.log(text))
    results: list[SizeResult] = []
    try:
        stack.start_infra()
        stack.step("topics, migrations, keys, risk profile")
        keys = asyncio.run(prepare(settings))
        start_floor(stack)
        asyncio.run(measure(settings, keys, args.sizes, args.trips, args.crash_pct, stack.step, results))
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: the trips measured so far[/]")
    finally:
        stack.stop_all()
        if not args.keep_var:
            shutil.rmtree(var_dir, ignore_errors=True)
        else:
            console.print(f"logs kept under {settings.log_dir}")
    return results


# --- report ---------------------------------------------------------------------------------


def _row(table: Table, label: str, f: Figures, goal_us: float | None, baseline: Figures | None) -> None:
    verdict = ""
    if goal_us is not None and f.n:
        ok = f.p99_us <= goal_us
        colour, word = ("green", "met") if ok else ("red", "missed")
        verdict = f"[{colour}]p99 <= {goal_us / 1000:g} ms {word}[/]"
    ratio = ""
    if baseline is not None and baseline.n and f.n:
        ratio = f"x{f.p50_us / baseline.p50_us:,.1f} / x{f.p99_us / baseline.p99_us:,.1f}"
    table.add_row(label, str(f.n), f"{f.p50_us:,.0f}", f"{f.p99_us:,.0f}", f"{f.max_us:,.0f}", ratio, verdict)


def report(results: Sequence[SizeResult]) -> None:
    for r in results:
        table = Table(title=f"{r.size} open orders", title_justify="left")
        for col in ("measure", "trips", "p50 µs", "p99 µs", "max µs", "vs baseline p50 / p99", "goal"):
            table.add_column(col, justify="left" if col == "measure" else "right")
        base_a, base_b = Figures.of(r.base_a), Figures.of(r.base_b)
        _row(table, "baseline: reqGlobalCancel -> venue's last cancel", base_a, None, None)
        _row(table, "baseline: reqGlobalCancel -> last Cancelled received", base_b, None, None)
        _row(
            table,
            "(a) crash tick -> venue's last cancel",
            Figures.of(r.floor_a),
            GOALS_US.get(("a", r.size)),
            base_a,
        )
        _row(
            table,
            "(b) crash tick -> floor recorded every acknowledgement",
            Figures.of(r.floor_b),
            GOALS_US.get(("b", r.size)),
            base_b,
        )
        console.print(table)
        shares = ", ".join(f"{s:.0%}" for s in r.shares)
        every = bool(r.shares) and all(s == 1 for s in r.shares) and not r.not_cancelled
        colour = "green" if every else "red"
        console.print(f"  share cancelled per trip: [{colour}]{shares or 'none measured'}[/]")
        if r.not_cancelled:
            console.print(f"  [red]{r.not_cancelled} orders the floor reported not cancelled[/]")
        for failure in r.failures:
            console.print(f"  [red]trip failed: {failure}[/]")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.breaker", description=__doc__.split("\n")[0])
    parser.add_argument("--trips", type=int, default=20, help="trips per book size (default 20)")
    parser.add_argument("--sizes", default="100,1000", help="book sizes, comma-separated (default 100,1000)")
    parser.add_argument(
        "--crash-pct", type=Decimal, default=Decimal(10), help="the crash, percent (default 10)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="2 trips at 50 and at 100 orders (under a minute)"
    )
    parser.add_argument("--keep-var", action="store_true", help="keep the scratch var dir (logs)")
    args = parser.parse_args(argv)
    if args.quick:
        args.trips, args.sizes = 2, "50,100"
    try:
        args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error("--sizes: whole numbers, comma-separated")
    if args.trips <= 0 or not args.sizes or min(args.sizes) <= 0:
        parser.error("--trips and every --sizes must be positive")
    if not Decimal(0) < args.crash_pct < Decimal(100):
        parser.error("--crash-pct must be in (0, 100)")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    # ib_async logs every cancel confirmation as an error; the figures are the output here.
    logging.getLogger("ib_async").setLevel(logging.CRITICAL)
    started = time.monotonic()
    results = run_all(args)
    load1, load5, _ = os.getloadavg()
    console.print(
        f"{args.trips} trips per size on {os.cpu_count()} CPUs, load average {load1:.1f} (5 min {load5:.1f});"
        " figures on a shared machine carry its noise"
    )
    report(results)
    console.print(f"done in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
