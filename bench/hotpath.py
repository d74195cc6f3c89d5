"""Hot-path latency benchmark: signed commands through Kafka to the paper gateway.

    python -m bench.hotpath [--n 2000] [--rate 40] [--load-factor 5] [--only steady|load]
                            [--baseline-only] [--quick] [--tracing both|on|off]

Starts its own embedded Postgres, Kafka (Tansu), paper venue, primary and standby gateways and
the hot path (the same supervisor specs ``floor up`` uses), on free ports under a scratch
``var/bench-*`` directory that is removed afterwards. Then, for each run:

* **baseline** — a bare ib_async script (:mod:`bench.hotpath_baseline`) places the same orders
  on the same gateway with no checks: decide -> socket write;
* **durable commit** — single-row INSERTs, each committed, at the same rate on the same
  Postgres (:func:`bench.hotpath_baseline.run_commit_floor`): what the write-ahead append
  alone cannot go below on this machine (``--commit-floor-n``, 600 by default);
* **disk flush** — as many 8 KiB writes, each followed by ``fdatasync``, at the same rate to a
  file in the ledger's data directory (:func:`bench.hotpath_baseline.run_disk_flush`): what
  the durable commit cannot go below, whatever Postgres or the floor do;
* **hot path** — the same orders as signed ``enter`` commands produced to ``agent.commands``
  (``acks=all``, ``linger.ms=0``) at the same steady rate; the hot path verifies, sizes, checks
  risk, commits each to the ledger and places it. From its ``/stats`` timings:
  (a) produce -> broker socket write (end to end; the produce stamp is this process's
  ``time.time_ns()`` just before ``send``, the write stamp the hot path's ``perf_counter_ns``
  mapped to the wall clock — same machine, same clock) and (b) hot-path intake -> socket write
  (in process, ledger commit included), each also split at the intake and at the ledger
  commit, plus the hot path's achieved throughput against the offered rate;
* **bare consumer** — in the same run, a bare aiokafka consumer in a child process reads the
  very records the hot path reads, with its fetch wait (:mod:`bench.hotpath_hop`): produce ->
  its receipt is what the Kafka hop alone costs at that moment, and its receipt -> the hot
  path's intake is how long a record waited inside the hot path before intake took it. Each
  stage is printed with its ratio to the baseline that bounds it (:mod:`bench.hotpath_report`),
  and how many ledger appends were committed alone or together (group commit).

The *steady* run stays inside IB's pacing (50 msg/s per client; ib_async throttles at 45), so
the figures are latency, not queueing. The *load* run goes ``--load-factor`` times faster with
the gateways' pacing and ib_async's throttle off: at the defaults, 200 commands/s, the burst
whose (a) the plan wants under 15 ms at p99.

Orders are 1-share limit buys well below the market, so they rest and nothing fills: every
run measures the same path. All orders are cancelled (global cancel) after each phase.
Goals: (b) p99 <= 1 ms, (a) p99 <= 5 ms steady and <= 15 ms in the burst.
``--quick``: the burst only, 600 commands, in under a minute.

Each plan's hot path runs twice, tracing off (``OTEL_SDK_DISABLED=true``) then on (spans made
after the socket write and exported to the span store), and the figures of the two are printed
side by side with their ratio (``--tracing on|off`` runs one).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from bench.figures import Figures
from bench.hotpath_baseline import BenchOrder, run_baseline, run_commit_floor, run_disk_flush
from bench.hotpath_hop import BareConsumer
from bench.hotpath_report import RunResult, report, throughput, tracing_report
from bench.kafka_hop import cpu_seconds
from config.settings import FloorSettings
from floor import services
from floor.paper_cmd import venue_spec
from floor.supervisor import RunningService, Supervisor, stop_process_group

console = Console(width=None if Console().is_terminal else 160)

ACCOUNT = "DU1234567"
"""The paper venue's account."""
SYMBOL = "AAPL"
BASELINE_CLIENT_ID = 90
TRACING_MODES: dict[str, tuple[bool, ...]] = {
    "both": (False, True, True, False),
    "on": (True,),
    "off": (False,),
}
"""The hot path runs of each plan, against the same gateways, Postgres and Kafka, so the modes
differ by the spans alone (made, batched and exported to the span store). Both modes run in the
order off, on, on, off, each run with half the orders: a later run meets a grown ledger and a
warmer (or busier) machine, and that order effect alone measured x1.2 to x1.5 between two runs
of the same mode; in this order it falls on both modes alike."""


# --- the orders -----------------------------------------------------------------------------


def bench_orders(n: int) -> list[BenchOrder]:
    """``n`` resting 1-share limit buys, ~35% under AAPL's opening price (229.87)."""
    return [BenchOrder(SYMBOL, "BUY", 1, Decimal("150.00") + Decimal(i % 100) / 100) for i in range(n)]


# --- services -------------------------------------------------------------------------------


def bench_settings(var_dir: Path) -> FloorSettings:
    return FloorSettings.on_free_ports(var_dir)


class Stack:
    """The processes of one benchmark invocation."""

    def __init__(self, settings: FloorSettings, step: Callable[[str], None]) -> None:
        self.settings = settings
        self.supervisor = Supervisor(settings.log_dir)
        self.step = step
        self.per_run: list[RunningService] = []
        # One consumer group for every run, as a restarted hot path keeps its own: the next
        # run's hot path resumes after the commands the last one handled instead of re-reading
        # them all as duplicate deliveries ahead of its own.
        self.group_id = f"bench-{uuid.uuid4().hex[:8]}"

    def start_infra(self) -> None:
        s = self.settings
        for spec in (services.postgres_spec(s), services.kafka_spec(s), venue_spec(s)):
            self.step(f"starting {spec.name}")
            self.supervisor.start(spec)

    def start_run(self, *, pacing: bool) -> None:
        s = self.settings
        for name, port in (("primary", s.ib_port), ("standby", s.ib_standby_port)):
            self.step(f"starting gateway {name} (pacing {'on' if pacing else 'off'})")
            self.per_run.append(self.supervisor.start(services.gateway_spec(s, name, port, pacing=pacing)))

    def start_bench_hotpath(self, *, max_requests_per_s: int, tracing: bool) -> RunningService:
        """The hot path, its spans made and exported to the span store or (``tracing`` False)
        switched off with the SDK's own ``OTEL_SDK_DISABLED``."""
        from hotpath.service import hotpath_spec

        self.step(f"starting the hot path (tracing {'on' if tracing else 'off'})")
        env: dict[str, str | None] = {"IB_MAX_REQUESTS_PER_S": str(max_requests_per_s)}
        if not tracing:
            env["OTEL_SDK_DISABLED"] = "true"
        spec = hotpath_spec(self.settings, symbols=(SYMBOL,), group_id=self.group_id, env=env)
        service = self.supervisor.start(spec)
        self.per_run.append(service)
        return service

    def stop_service(self, service: RunningService) -> None:
        stop_process_group(service.pid)
        self.supervisor.running.remove(service)
        self.per_run.remove(service)

    def stop_run(self) -> None:
        """Stop the hot path and gateways (newest first); the venue keeps its state."""
        while self.per_run:
            service = self.per_run.pop()
            stop_process_group(service.pid)
            self.supervisor.running.remove(service)

    def stop_all(self) -> None:
        self.per_run.clear()
        self.supervisor.stop_all()


async def prepare_ledger(settings: FloorSettings) -> Any:
    """Topics, migrations, an agent key, the account's risk profile and the floor's own keys;
    returns the agent key."""
    import asyncpg

    from bus.kafka import ensure_topics
    from floor.database import prepare_database
    from floor.provision import provision
    from ledger.keys import register_key
    from ledger.risk_profiles import set_profile
    from trading.signing import generate_private_key, public_key_bytes
    from trading.sizing import RiskProfile

    await ensure_topics(settings.kafka)
    await prepare_database(settings)  # the roles too: the hot path connects as floor_hotpath
    # The hot path signs its records with its own key, made here as `floor up` makes it.
    await provision(settings, paper_account=None)
    agent_key = generate_private_key()
    operator_key = generate_private_key()
    conn = await asyncpg.connect(settings.db_url)
    try:
        await register_key(conn, "bench-agent", public_key_bytes(agent_key), "agent", [ACCOUNT])
        await register_key(conn, "bench-operator", public_key_bytes(operator_key), "operator", ["*"])
        profile = RiskProfile(
            max_trade_size=Decimal("50000"),
            max_dollar_risk=Decimal("5000"),
            max_position=1_000_000,
            max_gross_exposure=Decimal("100000000"),
            max_open_orders=1_000_000,
            staleness_ms=60_000,
        )
        await set_profile(conn, ACCOUNT, profile, operator_id="bench-operator", operator_key=operator_key)
    finally:
        await conn.close()
    # The floor's own keys, as `floor up` makes them: the hot path signs its breaker trips.
    from floor.provision import provision

    await provision(settings, paper_account=None)
    return agent_key


# --- the hot-path half ----------------------------------------------------------------------


async def run_hotpath(
    settings: FloorSettings,
    agent_key: Any,
    orders: Sequence[BenchOrder],
    rate: float,
    on_progress: Callable[[int], None],
    hotpath_pid: int | None = None,
) -> HotpathRun:
    """Produce the orders as signed commands; return the hot path's timings of them, this
    process's produce stamps (``time.time_ns()``) and a bare consumer's receipts of the same
    records (:mod:`bench.hotpath_hop`), by command id."""
    from bus.kafka import start_producer
    from bus.topics import AGENT_COMMANDS
    from trading.commands import Command, CommandKind, Edge, OrderType, Side, TimeInForce, utc_now_ms
    from trading.signing import sign_command

    bare = BareConsumer(settings.kafka, AGENT_COMMANDS, settings.command_fetch_wait_ms, len(orders))
    await bare.start()
    producer = await start_producer(settings.kafka, "bench-agent")
    produced_ns: dict[str, int] = {}
    deliveries: dict[str, Any] = {}
    loop = asyncio.get_running_loop()
    run_id = uuid.uuid4().hex[:8]
    cpu_before = cpu_seconds(hotpath_pid) if hotpath_pid else None
    try:
        start = loop.time()
        for i, spec in enumerate(orders):
            delay = start + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            command = Command(
                kind=CommandKind.ENTER,
                command_id=f"bench-{run_id}-{i}",
                agent_id="bench-agent",
                account=ACCOUNT,
                nonce=uuid.uuid4().hex,
                issued_at=utc_now_ms(),
                symbol=spec.symbol,
                side=Side(spec.side),
                order_type=OrderType.LMT,
                limit_price=spec.limit_price,
                edge=Edge(p=Decimal("0.55"), b=Decimal("1.5"), stop_price=spec.limit_price - Decimal("5")),
                tif=TimeInForce.DAY,
                quantity=spec.quantity,
            )
            wire = sign_command(command, agent_key).to_wire()
            key = ACCOUNT.encode()  # agent.commands is keyed by account (bus.command_keys)
            produced_ns[command.command_id] = time.time_ns()
            deliveries[command.command_id] = await producer.send(AGENT_COMMANDS, wire, key=key)
            on_progress(i + 1)
        await asyncio.gather(*deliveries.values())
    finally:
        await producer.stop()

    timings = await _collect_timings(settings, set(produced_ns), deadline_s=30.0)
    busy_s = loop.time() - start
    cpu_s = None if cpu_before is None or hotpath_pid is None else cpu_seconds(hotpath_pid) - cpu_before
    receipts = await bare.receipts()
    received_ns: dict[str, int] = {}
    for cid, delivery in deliveries.items():
        meta = delivery.result()
        if (meta.partition, meta.offset) in receipts:
            received_ns[cid] = receipts[(meta.partition, meta.offset)]
    cpu = None if cpu_s is None else (cpu_s, busy_s)
    groups, gc_pauses = await _process_stats(settings)
    return HotpathRun(timings, produced_ns, received_ns, groups, cpu, gc_pauses)


@dataclass(frozen=True)
class HotpathRun:
    timings: list[dict[str, Any]]
    produced_ns: dict[str, int]
    received_ns: dict[str, int]
    """The bare consumer's receipt of each command's record (same clock as the produce stamp)."""
    groups: dict[str, int] | None
    cpu: tuple[float, float] | None
    """The hot path's CPU seconds over the wall seconds from the first produce to the last
    timing collected."""
    gc: dict[str, Any] | None = None
    """The hot path's garbage-collector pauses since it started (its ``/stats`` ``gc``)."""


async def _process_stats(settings: FloorSettings) -> tuple[dict[str, int] | None, dict[str, Any] | None]:
    """The hot path's ledger append groups and garbage-collector pauses, from ``/stats``."""
    url = f"http://{settings.host}:{settings.hotpath_health_port}/stats"
    async with httpx.AsyncClient(timeout=10.0) as client:
        body = (await client.get(url)).json()
    groups, gc_pauses = body.get("ledger_appends"), body.get("gc")
    return (
        groups if isinstance(groups, dict) else None,
        gc_pauses if isinstance(gc_pauses, dict) else None,
    )


async def _collect_timings(
    settings: FloorSettings, wanted: set[str], deadline_s: float
) -> list[dict[str, Any]]:
    url = f"http://{settings.host}:{settings.hotpath_health_port}/stats"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_s
    async with httpx.AsyncClient(timeout=10.0) as client:
        while True:
            body = (await client.get(url)).json()
            found = [t for t in body["timings"] if t["command_id"] in wanted]
            if len(found) >= len(wanted) or loop.time() > deadline:
                return found
            await asyncio.sleep(0.2)  # the hot path publishes no "done" signal for a batch


async def cancel_everything(settings: FloorSettings) -> None:
    """Global cancel through a short bare session, so each phase starts from an empty book."""
    from ib_async import IB

    ib = IB()
    await ib.connectAsync(settings.ib_gateway_host, settings.ib_port, BASELINE_CLIENT_ID + 1, timeout=10)
    try:
        ib.reqGlobalCancel()
        await ib.reqCurrentTimeAsync()
    finally:
        ib.disconnect()


# --- driver ---------------------------------------------------------------------------------


def run_all(args: argparse.Namespace) -> list[RunResult]:
    root = Path(__file__).resolve().parent.parent / "var"
    root.mkdir(exist_ok=True)
    var_dir = Path(tempfile.mkdtemp(prefix="bench-", dir=root))
    settings = bench_settings(var_dir)
    orders = bench_orders(args.n)
    plans = [("steady", args.rate, True), ("load", args.rate * args.load_factor, False)]
    if args.only:
        plans = [p for p in plans if p[0] == args.only]
    results: list[RunResult] = []
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=False,
    ) as progress:  # fmt: skip
        setup = progress.add_task("services", total=None)
        stack = Stack(settings, lambda text: progress.update(setup, description=text))
        try:
            stack.start_infra()
            progress.update(setup, description="topics, migrations, keys, risk profile")
            agent_key = None if args.baseline_only else asyncio.run(prepare_ledger(settings))
            progress.update(setup, description="services ready", total=1, completed=1)
            for name, rate, pacing in plans:
                result = RunResult(name, rate)
                results.append(result)
                throttle = 45 if pacing else 0
                stack.start_run(pacing=pacing)
                base_task = progress.add_task(f"{name}: baseline @ {rate:g}/s", total=len(orders))
                latencies = asyncio.run(
                    run_baseline(
                        settings.ib_gateway_host, settings.ib_port, BASELINE_CLIENT_ID, ACCOUNT, orders, rate,
                        throttle=pacing, on_progress=_advance(progress, base_task),
                    )
                )  # fmt: skip
                result.baseline = Figures.of(latencies)
                floor_n = min(len(orders), args.commit_floor_n)
                if floor_n:
                    floor_task = progress.add_task(f"{name}: durable commit @ {rate:g}/s", total=floor_n)
                    result.commit_floor = Figures.of(
                        asyncio.run(
                            run_commit_floor(
                                settings.db_url, floor_n, rate, on_progress=_advance(progress, floor_task)
                            )
                        )
                    )
                    flush_task = progress.add_task(f"{name}: disk flush @ {rate:g}/s", total=floor_n)
                    result.disk_flush = Figures.of(
                        run_disk_flush(
                            settings.var_dir, floor_n, rate, on_progress=_advance(progress, flush_task)
                        )
                    )
                results.pop()  # one result per tracing mode, each with the run's baselines
                modes = () if args.baseline_only else TRACING_MODES[args.tracing]
                runs: dict[bool, list[HotpathRun]] = {}
                for i, tracing in enumerate(modes):
                    part = orders if len(modes) == 1 else orders[i % 2 :: 2]  # half each, alike
                    label = f"{name}, tracing {'on' if tracing else 'off'}"
                    hot = stack.start_bench_hotpath(max_requests_per_s=throttle, tracing=tracing)
                    hot_task = progress.add_task(f"{label}: hot path @ {rate:g}/s", total=len(part))
                    runs.setdefault(tracing, []).append(
                        asyncio.run(
                            run_hotpath(
                                settings, agent_key, part, rate, _advance(progress, hot_task),
                                hotpath_pid=hot.pid,
                            )
                        )
                    )  # fmt: skip
                    asyncio.run(cancel_everything(settings))
                    stack.stop_service(hot)
                for tracing, mode_runs in runs.items():
                    traced = dataclasses.replace(
                        result, name=f"{name}, tracing {'on' if tracing else 'off'}", notes=[]
                    )
                    results.append(traced)
                    fill_result(traced, mode_runs)
                if args.baseline_only:
                    results.append(result)
                stack.stop_run()
        finally:
            stack.stop_all()
            if not args.keep_var:
                shutil.rmtree(var_dir, ignore_errors=True)
            else:
                console.print(f"logs kept under {settings.log_dir}")
    return results


def fill_result(result: RunResult, runs: Sequence[HotpathRun]) -> None:
    """``result``'s hot-path figures from one or more runs of the same mode, pooled: their
    samples together, throughput and CPU share averaged over the runs."""
    timings = [t for r in runs for t in r.timings]
    result.timings(
        timings,
        {k: v for r in runs for k, v in r.produced_ns.items()},
        {k: v for r in runs for k, v in r.received_ns.items()},
    )
    rates = [t for t in (throughput(r.timings) for r in runs) if t is not None]
    result.throughput = sum(rates) / len(rates) if rates else None
    groups: dict[str, int] = {}
    for r in runs:
        for key, value in (r.groups or {}).items():
            groups[key] = max(groups.get(key, 0), value) if key == "largest" else groups.get(key, 0) + value
    result.groups = groups or None
    result.gc = _pooled_gc([r.gc for r in runs if r.gc])
    cpu = [r.cpu for r in runs if r.cpu is not None]
    if cpu and timings:
        cpu_s, busy_s = sum(c[0] for c in cpu), sum(c[1] for c in cpu)
        result.cpu_per_command_us = cpu_s / len(timings) * 1e6
        result.cpu_share = cpu_s / busy_s


def _pooled_gc(stats: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The garbage-collector pauses of several runs' hot paths, added up."""
    if not stats:
        return None

    def pooled(parts: Sequence[dict[str, Any]]) -> dict[str, float]:
        return {
            "count": sum(p.get("count", 0) for p in parts),
            "total_ms": sum(p.get("total_ms", 0.0) for p in parts),
            "max_ms": max((p.get("max_ms", 0.0) for p in parts), default=0.0),
        }

    generations = sorted({g for s in stats for g in s.get("generations", {})})
    return {
        "frozen": max(s.get("frozen", 0) for s in stats),
        "generations": {
            g: pooled([s["generations"][g] for s in stats if g in s.get("generations", {})])
            for g in generations
        },
        "idle": pooled([s["idle"] for s in stats if "idle" in s]),
    }


def _advance(progress: Progress, task: TaskID) -> Callable[[int], None]:
    return lambda done: progress.update(task, completed=done)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.hotpath", description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="commands per run (default 2000)")
    parser.add_argument("--rate", type=float, default=40.0, help="steady rate, commands/s (default 40)")
    parser.add_argument("--load-factor", type=float, default=5.0, help="load run = rate x this (default 5)")
    parser.add_argument("--only", choices=("steady", "load"), help="run one of the two")
    parser.add_argument("--baseline-only", action="store_true", help="skip the hot path half")
    parser.add_argument(
        "--commit-floor-n",
        type=int,
        default=600,
        help="paced durable INSERTs timed as the ledger's baseline, per run (0 to skip; default 600)",
    )
    parser.add_argument(
        "--tracing",
        choices=tuple(TRACING_MODES),
        default="both",
        help="the hot path with its spans on, off (OTEL_SDK_DISABLED), or both in turn (default)",
    )
    parser.add_argument("--keep-var", action="store_true", help="keep the scratch var dir (logs)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the burst only (the load run) with 600 commands and 100 paced INSERTs: under a minute",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.only, args.n, args.commit_floor_n = "load", min(args.n, 600), min(args.commit_floor_n, 100)
    if args.n <= 0 or args.rate <= 0 or args.load_factor <= 0:
        parser.error("--n, --rate and --load-factor must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    # ib_async logs every cancel confirmation as an error; the figures are the output here.
    logging.getLogger("ib_async").setLevel(logging.CRITICAL)
    started = time.monotonic()
    results = run_all(args)
    load1, load5, _ = os.getloadavg()
    console.print(
        f"{args.n} commands per run on {os.cpu_count()} CPUs, load average {load1:.1f} (5 min {load5:.1f}); "
        "figures on a shared machine carry its noise"
    )
    report(console, results)
    tracing_report(console, results)
    console.print(f"done in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
