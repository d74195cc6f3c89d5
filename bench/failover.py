"""Failover benchmark: the active gateway killed or frozen while signed commands flow.

    python -m bench.failover [--kills 20] [--freezes 20] [--rate 40] [--freeze-s 1.5]
                             [--settle-s 1] [--baseline-connects 20] [--keep-var]

Starts its own embedded Postgres, Kafka (Tansu), paper venue, primary and standby gateways and
the hot path (the specs ``floor up`` uses, default heartbeat settings), on free ports under a
scratch ``var/bench-*`` directory that is removed afterwards. Signed ``enter`` commands (resting
1-share limit buys far under the market) are produced to ``agent.commands`` at a steady
``--rate`` for the whole run, through the real hot path: verify, size, risk, ledger, broker.

Each trial faults the gateway that carries the orders at that moment:

* **kill**: ``kill -9`` of its process (it is started again afterwards and comes back as the
  standby);
* **freeze**: the venue's freeze control, ``--freeze-s`` seconds of an open socket and no byte
  (it thaws and comes back as the standby).

and measures, from the fault (this process's wall clock just before the ``kill`` or the
freeze request) to:

* **detected**: the hot path's decision to fail over (its ``broker.failed_over`` ops event
  carries the time it decided, same machine, same clock);
* **first accepted by the standby**: the first order the venue accepts after that decision,
  as the gateways' master clients see it (:mod:`bench.failover_watch`). Commands keep arriving
  every ``1/rate`` s, so this includes waiting for the next one when none was held.

After the last trial the commands stop and the run is audited against the venue's own record
of every order (open and completed, by ``orderRef`` = command id) and the ledger: a command is
**lost** if it has no ledger decision, or was accepted and never reached the venue; it is
**duplicated** if the venue holds more than one order for it. Between trials the commands pause
until every one is decided and at the venue, the venue's orders are recorded and the venue
starts over (its ``/reset``): each failover's reconciliation then lists one trial's orders, not
the whole run's (a listing of thousands of orders is its own cost, not the failover's).

Baselines, same run, same machine: a fresh ib_async ``connectAsync`` to the gateway that is the
standby (what a floor without a connected hot standby would pay at least, before any
reconciliation), and produce -> accepted at the venue for the commands that met no fault (the
``--settle-s`` after each trial): what any order pays, fault or not.

Goals: p99 <= 250 ms from fault to first accepted order, for kills and for freezes; lost 0,
duplicated 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
from ib_async import IB
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench import hotpath
from bench.failover_watch import Acceptances, SessionLog, VenueRecord, ledger_decisions
from bench.figures import Figures
from bench.hotpath import ACCOUNT, SYMBOL, bench_settings, prepare_ledger
from config.settings import FloorSettings
from floor import services
from floor.supervisor import RunningService

console = Console(width=None if Console().is_terminal else 120)

GOAL_P99_MS = 250.0
BASELINE_CLIENT_ID = 95
AGENT = "bench-agent"
TRIAL_TIMEOUT_S = 10.0
BACK_TIMEOUT_S = 20.0


@dataclass
class Trial:
    kind: str
    """``kill`` or ``freeze``."""
    gateway: str
    fault_ns: int = 0
    back_ns: int = 0
    """Wall clock: the fault, and the faulted gateway back as the standby."""
    detected_ns: int | None = None
    accepted_ns: int | None = None
    error: str | None = None


@dataclass
class Outcome:
    trials: list[Trial] = field(default_factory=list)
    baseline_ns: list[int] = field(default_factory=list)
    steady_ns: list[int] = field(default_factory=list)
    """Produce -> accepted at the venue, for commands away from any fault."""
    heartbeat: tuple[int, int, int] = (0, 0, 0)
    """The hot path's heartbeat: interval ms, answer window ms, misses."""
    failovers: int = 0
    """Every failover the hot path made in the run: more than the faults means a healthy
    gateway was taken for a dead one."""
    produced: int = 0
    refused: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)

    def figures(self, kind: str, what: str) -> Figures:
        values = [getattr(t, what) for t in self.trials if t.kind == kind and getattr(t, what) is not None]
        return Figures.of(values)


# --- the stack --------------------------------------------------------------------------------


class Stack(hotpath.Stack):
    """:class:`bench.hotpath.Stack`'s services, with the gateways started, killed and started
    again one by one."""

    def __init__(self, settings: FloorSettings, step: Callable[[str], None]) -> None:
        super().__init__(settings, step)
        self.gateways: dict[str, RunningService] = {}

    @property
    def ports(self) -> dict[str, int]:
        return {"primary": self.settings.ib_port, "standby": self.settings.ib_standby_port}

    def address(self, name: str) -> str:
        return f"{self.settings.ib_gateway_host}:{self.ports[name]}"

    def start_gateway(self, name: str) -> None:
        spec = services.gateway_spec(self.settings, name, self.ports[name])
        self.gateways[name] = self.supervisor.start(spec)

    def start_hotpath(self, env: dict[str, str | None]) -> None:
        from hotpath.service import hotpath_spec

        self.step("starting the hot path")
        spec = hotpath_spec(self.settings, symbols=(SYMBOL,), group_id=self.group_id, env=env)
        self.supervisor.start(spec)

    def kill_gateway(self, name: str) -> None:
        """SIGKILL to the gateway's process group: no goodbye on any socket."""
        service = self.gateways.pop(name)
        os.killpg(service.pid, signal.SIGKILL)
        service.process.wait()
        self.supervisor.running.remove(service)


# --- commands ---------------------------------------------------------------------------------


class Commands:
    """Signed ``enter`` commands produced at a steady rate until stopped."""

    def __init__(self, settings: FloorSettings, agent_key: Any, rate: float) -> None:
        self.settings = settings
        self.agent_key = agent_key
        self.rate = rate
        self.produced: list[str] = []
        self.produced_ns: dict[str, int] = {}
        self._stop = asyncio.Event()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._wake = asyncio.Event()
        """Set by stop() and pause(): the producer looks at once."""
        self.parked = asyncio.Event()
        """Set while paused with nothing in flight."""

    async def run(self) -> None:
        from bus.command_keys import account_key
        from bus.kafka import start_producer
        from bus.topics import AGENT_COMMANDS
        from trading.commands import Command, CommandKind, Edge, OrderType, Side, TimeInForce, utc_now_ms
        from trading.signing import sign_command

        producer = await start_producer(self.settings.kafka, AGENT)
        loop = asyncio.get_running_loop()
        run_id = uuid.uuid4().hex[:8]
        try:
            start = loop.time()
            i = 0
            while not self._stop.is_set():
                if not self._flowing.is_set():
                    self.parked.set()
                    await self._flowing.wait()
                    self.parked.clear()
                    start = loop.time() - i / self.rate  # resume at the rate, no catch-up burst
                    continue
                delay = start + i / self.rate - loop.time()
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), delay)
                    continue  # stopped, paused, or due: looked at again
                price = Decimal("150.00") + Decimal(i % 100) / 100
                command = Command(
                    kind=CommandKind.ENTER,
                    command_id=f"fo-{run_id}-{i}",
                    agent_id=AGENT,
                    account=ACCOUNT,
                    nonce=uuid.uuid4().hex,
                    issued_at=utc_now_ms(),
                    symbol=SYMBOL,
                    side=Side.BUY,
                    order_type=OrderType.LMT,
                    limit_price=price,
                    edge=Edge(p=Decimal("0.55"), b=Decimal("1.5"), stop_price=price - Decimal("5")),
                    tif=TimeInForce.DAY,
                    quantity=1,
                )
                wire = sign_command(command, self.agent_key).to_wire()
                # Counted before it is sent: a command in flight when the run pauses is waited for.
                self.produced.append(command.command_id)
                self.produced_ns[command.command_id] = time.time_ns()
                await producer.send_and_wait(AGENT_COMMANDS, wire, key=account_key(ACCOUNT))
                i += 1
        finally:
            await producer.stop()

    def stop(self) -> None:
        self._stop.set()
        self._flowing.set()
        self._wake.set()

    async def pause(self) -> None:
        """Stop producing; return once nothing is being sent."""
        self._flowing.clear()
        self._wake.set()
        await asyncio.wait_for(self.parked.wait(), 10)

    def resume(self) -> None:
        self._wake.clear()
        self._flowing.set()


# --- trials -----------------------------------------------------------------------------------


async def control(settings: FloorSettings, path: str, body: dict[str, Any]) -> int:
    """POST to the venue's control API; the wall-clock ns just before the request."""
    import httpx

    from floor.paper_cmd import control_token
    from paper.venue.control_token import authorization

    url = f"http://{settings.host}:{settings.venue_control_port}{path}"
    async with httpx.AsyncClient(timeout=10.0, headers=authorization(control_token(settings))) as http:
        at = time.time_ns()
        reply = await http.post(url, json=body)
        reply.raise_for_status()
    return at


async def fault(stack: Stack, kind: str, active: str, freeze_s: float) -> int:
    """Fault the gateway named ``active``; the wall-clock ns just before."""
    if kind == "kill":
        at = time.time_ns()
        stack.kill_gateway(active)
        return at
    return await control(stack.settings, f"/gateways/{active}/freeze", {"seconds": freeze_s})


async def run_trial(
    stack: Stack, log: SessionLog, seen: Acceptances, kind: str, active: str, freeze_s: float, settle_s: float
) -> tuple[Trial, str]:
    """One fault of ``active``; returns the trial and the gateway active after it."""
    other = "standby" if active == "primary" else "primary"
    trial = Trial(kind, active)
    await log.mark()
    fault_ns = trial.fault_ns = await fault(stack, kind, active, freeze_s)
    if kind == "kill":
        seen.forget(stack.ports[active])
    try:
        change = await log.next("broker.failed_over", stack.address(other), TRIAL_TIMEOUT_S)
        if kind == "freeze":
            # The freeze takes effect when the venue's word reaches the gateway: the last byte
            # the gateway sent anyone (its master client streams quotes) is the better bound.
            fault_ns = max(fault_ns, seen.last_byte_ns(stack.ports[active]))
        trial.fault_ns = fault_ns
        trial.detected_ns = change.at_ns - fault_ns
        first = await seen.first_after(change.at_ns, TRIAL_TIMEOUT_S)
        if first is None:
            trial.error = "no order accepted after the failover"
        else:
            trial.accepted_ns = first[1] - fault_ns
    except TimeoutError as exc:
        trial.error = str(exc)
    # The faulted gateway comes back (restarted, or thawed) and the hot path takes it as standby.
    if kind == "kill":
        await asyncio.to_thread(stack.start_gateway, active)
    await log.next("broker.standby_up", stack.address(active), BACK_TIMEOUT_S)
    trial.back_ns = time.time_ns()
    await seen.watch(stack.ports[active])
    await asyncio.sleep(settle_s)  # commands flow undisturbed: the same run's no-fault figure
    return trial, other


def steady(commands: Commands, seen: Acceptances, trials: Sequence[Trial]) -> list[int]:
    """Produce -> accepted at the venue of the commands produced outside every fault's window
    (from 0.5 s before it to 0.3 s after its gateway is back): the normal path's latency, same
    run."""
    windows = [
        (t.fault_ns - 500_000_000, t.back_ns + 300_000_000) for t in trials if t.fault_ns and t.back_ns
    ]
    out = []
    for ref, produced in commands.produced_ns.items():
        accepted = seen.first_seen.get(ref)
        if accepted is not None and not any(a <= produced <= b for a, b in windows):
            out.append(accepted - produced)
    return out


async def baseline_connects(host: str, port: int, n: int) -> list[int]:
    """A fresh ib_async connection to ``port``, ``n`` times: connect to synchronised (ns)."""
    out: list[int] = []
    for _ in range(n):
        ib = IB()
        began = time.perf_counter_ns()
        await ib.connectAsync(host, port, BASELINE_CLIENT_ID, timeout=10)
        out.append(time.perf_counter_ns() - began)
        ib.disconnect()
        await asyncio.sleep(0.05)  # the gateway frees the client id when it sees the close
    return out


async def settled(
    pool: asyncpg.Pool,
    seen: Acceptances,
    commands: Commands,
    venue: VenueRecord,
    timeout: float,  # noqa: ASYNC109 - a deadline for polling two records, not for one await
) -> tuple[dict[str, str], set[str]]:
    """Wait (up to ``timeout`` s) until every produced command has its ledger decision and every
    accepted one is at the venue; the decisions and the commands still missing."""
    produced = set(commands.produced)
    deadline = time.monotonic() + timeout
    while True:
        decisions = await ledger_decisions(pool, AGENT)
        accepted = {c for c, d in decisions.items() if d == "accepted"}
        await venue.read(seen.any_client())
        missing = (produced - set(decisions)) | (accepted - set(venue.counts()))
        if not missing or time.monotonic() > deadline:
            return decisions, missing
        await asyncio.sleep(0.2)  # held orders go out when their session is ready


async def fresh_venue(
    settings: FloorSettings, pool: asyncpg.Pool, seen: Acceptances, commands: Commands, venue: VenueRecord
) -> None:
    """With the commands paused and every one of them at the venue, its orders are recorded and
    the venue starts over, so no epoch's reconciliation lists more than a trial's orders."""
    await commands.pause()
    try:
        _, missing = await settled(pool, seen, commands, venue, timeout=30)
        if missing:
            console.print(f"  [yellow]{len(missing)} commands not settled before the venue's reset[/]")
        await control(settings, "/reset", {"seed": settings.paper_seed})
        venue.reset()
    finally:
        commands.resume()


def audit(
    outcome: Outcome, commands: Commands, decisions: dict[str, str], missing: set[str], venue: VenueRecord
) -> None:
    produced = set(commands.produced)
    outcome.produced = len(produced)
    outcome.refused = sum(1 for c in produced if decisions.get(c) == "rejected")
    outcome.lost = sorted(missing)
    outcome.duplicated = sorted(ref for ref, n in venue.counts().items() if n > 1 and ref in produced)


def heartbeat_rules(settings: FloorSettings, args: argparse.Namespace) -> tuple[int, int, int]:
    """The hot path's heartbeat (ms, answer ms, misses): the floor's defaults unless the
    command line says otherwise."""
    return (
        args.heartbeat_ms or settings.ib_heartbeat_ms,
        args.answer_ms or settings.ib_answer_ms,
        args.misses or settings.ib_heartbeat_misses,
    )


async def run(settings: FloorSettings, args: argparse.Namespace, stack: Stack, progress: Progress) -> Outcome:
    agent_key = await prepare_ledger(settings)
    await asyncio.to_thread(stack.start_gateway, "primary")
    await asyncio.to_thread(stack.start_gateway, "standby")
    outcome = Outcome(heartbeat=heartbeat_rules(settings, args))
    ms, answer, misses = outcome.heartbeat
    env: dict[str, str | None] = {
        "FLOOR_IB_HEARTBEAT_MS": str(ms),
        "FLOOR_IB_ANSWER_MS": str(answer),
        "FLOOR_IB_HEARTBEAT_MISSES": str(misses),
    }
    await asyncio.to_thread(stack.start_hotpath, env)
    host = settings.ib_gateway_host
    seen = Acceptances(host, SYMBOL)
    pool = await asyncpg.create_pool(settings.db_url, min_size=1, max_size=2)
    assert pool is not None
    log = SessionLog(pool)
    commands = Commands(settings, agent_key, args.rate)
    venue = VenueRecord()
    try:
        for port in stack.ports.values():
            await seen.watch(port)
        base = progress.add_task(
            "baseline: fresh ib_async connects to the standby", total=args.baseline_connects
        )
        for ns in await baseline_connects(host, settings.ib_standby_port, args.baseline_connects):
            outcome.baseline_ns.append(ns)
            progress.advance(base)
        producing = asyncio.create_task(commands.run())
        await seen.first_after(0, TRIAL_TIMEOUT_S)  # orders flow
        active = "primary"
        plan = ["kill"] * args.kills + ["freeze"] * args.freezes
        task = progress.add_task("faults", total=len(plan))
        for kind in plan:
            progress.update(task, description=f"{kind} of the active gateway ({active})")
            trial, active = await run_trial(stack, log, seen, kind, active, args.freeze_s, args.settle_s)
            outcome.trials.append(trial)
            progress.advance(task)
            await fresh_venue(settings, pool, seen, commands, venue)
        commands.stop()
        await producing
        progress.update(task, description="audit: the ledger and the venue's records")
        decisions, missing = await settled(pool, seen, commands, venue, timeout=30)
        audit(outcome, commands, decisions, missing, venue)
        outcome.failovers = await log.count_all("broker.failed_over") + await log.count_all(
            "broker.disconnected"
        )
        outcome.steady_ns = steady(commands, seen, outcome.trials)
    finally:
        commands.stop()
        seen.close()
        await pool.close()
    return outcome


# --- report -----------------------------------------------------------------------------------


def _row(table: Table, label: str, f: Figures, goal: bool) -> None:
    verdict = ""
    if goal and f.n:
        ok = f.p99_us <= GOAL_P99_MS * 1000
        verdict = f"[{'green' if ok else 'red'}]p99 <= {GOAL_P99_MS:g} ms {'met' if ok else 'missed'}[/]"
    cells = [f"{v / 1000:,.1f}" for v in (f.p50_us, f.p99_us, f.max_us)]
    table.add_row(label, str(f.n), *cells, verdict)


def report(outcome: Outcome, args: argparse.Namespace) -> None:
    ms, answer, misses = outcome.heartbeat
    title = (
        f"failover with {args.rate:g} commands/s flowing; heartbeat {ms} ms, "
        f"{misses} missed answers of {answer} ms"
    )
    table = Table(title=title, title_justify="left")
    for col in ("measure", "n", "p50 ms", "p99 ms", "max ms", "goal"):
        table.add_column(col, justify="left" if col == "measure" else "right")
    _row(table, "baseline: fresh ib_async connect to the standby", Figures.of(outcome.baseline_ns), False)
    _row(table, "baseline: command produced -> accepted, no fault", Figures.of(outcome.steady_ns), False)
    for kind in ("kill", "freeze"):
        _row(table, f"{kind}: fault -> failover decided", outcome.figures(kind, "detected_ns"), False)
        _row(
            table,
            f"{kind}: fault -> first order accepted by the standby",
            outcome.figures(kind, "accepted_ns"),
            True,
        )
    console.print(table)
    errors = [t for t in outcome.trials if t.error]
    for t in errors:
        console.print(f"  [red]{t.kind} of {t.gateway}: {t.error}[/]")
    spurious = outcome.failovers - len(outcome.trials)
    colour = "green" if spurious == 0 else "red"
    console.print(
        f"  [{colour}]failovers and disconnects in the run: {outcome.failovers} for {len(outcome.trials)} "
        f"faults[/] (more: a healthy gateway was taken for a dead one)"
    )
    lost, dup = len(outcome.lost), len(outcome.duplicated)
    colour = "green" if lost == dup == 0 else "red"
    console.print(
        f"  [{colour}]{outcome.produced} commands: lost {lost}, duplicated {dup}[/] "
        f"(refused by the floor: {outcome.refused}; checked against the ledger and the venue's orders)"
    )
    for ref in outcome.lost[:10]:
        console.print(f"  [red]lost: {ref}[/]")
    for ref in outcome.duplicated[:10]:
        console.print(f"  [red]duplicated: {ref}[/]")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.failover", description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=20, help="kill -9 trials (default 20)")
    parser.add_argument("--freezes", type=int, default=20, help="freeze trials (default 20)")
    parser.add_argument("--rate", type=float, default=40.0, help="commands/s flowing (default 40)")
    parser.add_argument("--freeze-s", type=float, default=1.5, help="seconds each freeze lasts (default 1.5)")
    parser.add_argument(
        "--settle-s", type=float, default=1.0, help="undisturbed flow after each trial (default 1)"
    )
    parser.add_argument("--baseline-connects", type=int, default=20, help="fresh connects timed (default 20)")
    parser.add_argument("--heartbeat-ms", type=int, help="FLOOR_IB_HEARTBEAT_MS for the hot path")
    parser.add_argument("--answer-ms", type=int, help="FLOOR_IB_ANSWER_MS for the hot path")
    parser.add_argument("--misses", type=int, help="FLOOR_IB_HEARTBEAT_MISSES for the hot path")
    parser.add_argument("--keep-var", action="store_true", help="keep the scratch var dir (logs)")
    args = parser.parse_args(argv)
    if args.kills < 0 or args.freezes < 0 or args.rate <= 0 or args.freeze_s <= 0:
        parser.error("--kills and --freezes must be >= 0, --rate and --freeze-s positive")
    return args


def main(argv: Sequence[str] | None = None) -> Outcome:
    args = parse_args(argv)
    # ib_async logs every cancel confirmation and lost connection as an error; the figures are
    # the output here.
    logging.getLogger("ib_async").setLevel(logging.CRITICAL)
    root = Path(__file__).resolve().parent.parent / "var"
    root.mkdir(exist_ok=True)
    var_dir = Path(tempfile.mkdtemp(prefix="bench-", dir=root))
    settings = bench_settings(var_dir)
    started = time.monotonic()
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=False,
    ) as progress:  # fmt: skip
        setup = progress.add_task("services", total=None)
        stack = Stack(settings, lambda text: progress.update(setup, description=text))
        try:
            stack.start_infra()
            progress.update(setup, description="services ready", total=1, completed=1)
            outcome = asyncio.run(run(settings, args, stack, progress))
        finally:
            stack.stop_all()
            if not args.keep_var:
                shutil.rmtree(var_dir, ignore_errors=True)
            else:
                console.print(f"logs kept under {settings.log_dir}")
    load1, load5, _ = os.getloadavg()
    console.print(
        f"{len(outcome.trials)} faults on {os.cpu_count()} CPUs, load average {load1:.1f} "
        f"(5 min {load5:.1f}); figures on a shared machine carry its noise"
    )
    report(outcome, args)
    console.print(f"done in {time.monotonic() - started:.0f} s")
    return outcome


if __name__ == "__main__":
    main()
