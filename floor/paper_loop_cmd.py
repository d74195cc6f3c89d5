"""``floor paper-loop``: N round-trip trades through the whole floor, then the audit.

Starts the floor if it is not running (as ``floor up`` does, stopped again at the end) or uses
the running one; drives the demo brain until N trades have been entered and exited, counted from
the executions the floor stored (:mod:`floor.paper_loop_run`); then checks every trade from the
ledger and the venue's own records (:mod:`floor.paper_loop_audit_step`), verifies the ledger as
``floor ledger verify`` does, writes the report and exits non-zero naming each violating trade.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any

import asyncpg
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from brain.runner import DemoBrain
from config.settings import FloorSettings
from floor.brain_cmd import DemoKeysRefused, provision_demo_agents
from floor.paper_cmd import PaperControlError, control_request, control_token, control_url
from floor.paper_loop_audit_step import AuditOutcome, audit_loop, verify
from floor.paper_loop_run import Brain, LoopEnd, LoopResult, drive
from floor.stack import FloorState, pid_alive, run_floor, start_floor, urls
from floor.supervisor import ServiceFailed, Supervisor
from ledger.verify import VerifyReport

console = Console()


@dataclass(frozen=True)
class PaperLoopRun:
    code: int
    """The command's exit code."""
    loop: LoopResult | None = None
    audit: AuditOutcome | None = None


@dataclass
class FloorHandle:
    started_here: bool
    stopped: threading.Event = field(default_factory=threading.Event)
    """Set when the floor this command started stops (its supervisor gave up)."""


@contextlib.contextmanager
def floor_running(settings: FloorSettings, say: Callable[[str], None]) -> Iterator[FloorHandle]:
    """The running floor (``floor up`` in another terminal), or one started here for the loop's
    length: supervised as ``floor up`` supervises it, stopped on the way out."""
    state = FloorState.load(settings.var_dir)
    if state is not None and pid_alive(state.supervisor_pid):
        say(f"using the running floor (supervisor pid {state.supervisor_pid})")
        yield FloorHandle(started_here=False)
        return
    supervisor = Supervisor(settings.log_dir)
    rows = start_floor(settings, supervisor, say)
    state = FloorState(os.getpid(), time.time(), tuple(rows), urls(settings))
    state.save(settings.var_dir)
    handle = FloorHandle(started_here=True)
    watching = threading.Thread(
        target=run_floor, args=(settings, supervisor, state, handle.stopped, say), name="floor", daemon=True
    )
    watching.start()
    try:
        yield handle
    finally:
        handle.stopped.set()
        watching.join(timeout=120.0)


@contextlib.contextmanager
def venue_clock(settings: FloorSettings, time_scale: float | None) -> Iterator[float | None]:
    """The paper venue's clock at ``time_scale`` (if given) for the block, as it was afterwards;
    yields the speed it runs at (None: a real broker, whose clock is the market's)."""
    if settings.ib_host:
        yield None
        return
    token = control_token(settings)
    url = control_url(settings)
    before = float(control_request(url, "GET", "/status", token=token)["time_scale"])
    if time_scale is None or time_scale == before:
        yield before
        return
    body = {"advance_ms": 0, "time_scale": time_scale}
    now = float(control_request(url, "POST", "/clock", body, token=token)["status"]["time_scale"])
    try:
        yield now
    finally:
        control_request(url, "POST", "/clock", {"advance_ms": 0, "time_scale": before}, token=token)


class DemoLoopBrain:
    """The demo brain (:class:`brain.runner.DemoBrain`) as the loop drives it: its agents' ids,
    whose executions the loop counts, and its run."""

    def __init__(self, brain: Any) -> None:
        self.brain = brain

    @property
    def agent_ids(self) -> tuple[str, ...]:
        return tuple(agent.agent_id for agent in self.brain.agents)

    def run(self, stop: asyncio.Event) -> Coroutine[Any, Any, None]:
        run: Coroutine[Any, Any, None] = self.brain.run(stop)
        return run

    def wind_down(self) -> None:
        self.brain.wind_down()

    @property
    def flat(self) -> bool:
        return bool(self.brain.flat)

    def signal_mids(self) -> dict[str, Decimal]:
        """The mid each entry's agent saw when it signalled, by command id: what slippage is
        measured against (a figure of the report, not a limit check)."""
        return {command_id: plan.mid for command_id, plan in self.brain.plans.items()}

    def diagnosis(self) -> str:
        """What the brain believes it is doing, for a loop that stalled."""
        return f"entries {self.brain.entries}, outcomes {dict(self.brain.outcomes)}, {self.brain.state()}"


class BrainUnavailable(Exception):
    """The demo brain could not be set up (its agents' keys); the message says what to do."""


def default_brain(settings: FloorSettings, seed: int, caps_binding_share: float) -> Brain:
    """The demo brain, its agents' keys made and registered first where missing (as ``floor
    brain`` does)."""
    try:
        for line in asyncio.run(provision_demo_agents(settings)):
            console.print(line, highlight=False)
    except DemoKeysRefused as exc:
        raise BrainUnavailable(f"demo keys: {exc}") from None
    except (OSError, asyncpg.PostgresError) as exc:
        raise BrainUnavailable(f"cannot reach the floor's database ({exc}): is the floor up?") from None
    share = Decimal(str(caps_binding_share))
    return DemoLoopBrain(DemoBrain(settings, seed=seed, caps_binding_share=share))


async def loop_and_audit(
    settings: FloorSettings,
    brain: Brain,
    trades: int,
    *,
    progress: Callable[[int], None],
    floor_stopped: Callable[[], bool] = lambda: False,
    stall_s: float = 120.0,
    notes: Sequence[str] = (),
) -> tuple[LoopResult, AuditOutcome]:
    """The loop, then the audit of what it produced (also after a loop that ended early: what
    was traded is checked all the same)."""
    pool = await asyncpg.create_pool(settings.role_url("cli"), min_size=1, max_size=2)
    try:
        result = await drive(
            pool, brain, trades, progress=progress, floor_stopped=floor_stopped, stall_s=stall_s
        )
    finally:
        await pool.close()
    ledger = await verify(settings)
    notes = [*notes, ledger_line(ledger)]
    mids = getattr(brain, "signal_mids", None)
    outcome = await audit_loop(settings, result, brain.agent_ids, notes, mids() if callable(mids) else None)
    outcome.ledger = ledger
    return result, outcome


def ledger_line(report: VerifyReport) -> str:
    if report.ok:
        return f"ledger intact: {report.entries} entries, chain and signatures verified"
    problems = [str(report.first_bad)] if report.first_bad is not None else []
    return "ledger NOT intact: " + "; ".join([*problems, *report.problems])


def run_paper_loop(
    settings: FloorSettings,
    trades: int,
    *,
    make_brain: Callable[[FloorSettings], Brain],
    time_scale: float | None = None,
    stall_s: float = 120.0,
    out: Console = console,
) -> PaperLoopRun:
    """The whole command; its exit code is 0 for N trades, no violation, the ledger intact."""
    try:
        with floor_running(settings, lambda line: out.print(line, highlight=False)) as floor:
            try:
                with venue_clock(settings, time_scale) as scale:
                    notes: list[str] = []
                    if scale is not None and scale != 1:
                        notes.append(
                            f"The paper venue's clock runs at x{scale:g}: "
                            "market time passes faster than real time."
                        )
                        out.print(f"[yellow]{notes[-1]}[/]")
                    result, outcome = _with_progress(
                        out,
                        trades,
                        lambda progress: loop_and_audit(
                            settings,
                            make_brain(settings),
                            trades,
                            progress=progress,
                            floor_stopped=floor.stopped.is_set,
                            stall_s=stall_s,
                            notes=notes,
                        ),
                    )
            except PaperControlError as exc:
                out.print(
                    f"[red bold]paper-loop[/]: the paper venue's control API failed: {escape(str(exc))}"
                )
                return PaperLoopRun(1)
            except BrainUnavailable as exc:
                out.print(f"[red bold]paper-loop[/]: {escape(str(exc))}")
                return PaperLoopRun(1)
    except ServiceFailed as exc:
        out.print(f"[red bold]paper-loop could not start the floor[/]: {escape(str(exc))}")
        out.print(f"Logs are under {settings.log_dir}/.")
        return PaperLoopRun(1)
    return PaperLoopRun(report(result, outcome, trades, out), result, outcome)


def _with_progress(
    out: Console,
    trades: int,
    work: Callable[[Callable[[int], None]], Coroutine[Any, Any, tuple[LoopResult, AuditOutcome]]],
) -> tuple[LoopResult, AuditOutcome]:
    """``work`` run with a progress bar of round trips and its ETA."""
    with Progress(
        TextColumn("round trips"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=out,
    ) as bar:
        task = bar.add_task("trades", total=trades)
        return asyncio.run(work(lambda done: bar.update(task, completed=done)))


def report(result: LoopResult, outcome: AuditOutcome, trades: int, out: Console) -> int:
    """Print what the loop did and what the audit found; the exit code."""
    code = 0
    rate = result.round_trips / result.elapsed_s * 60 if result.elapsed_s > 0 else 0.0
    out.print(f"{result.round_trips} round-trip trades in {result.elapsed_s:.0f} s ({rate:.1f} a minute)")
    if result.end is not LoopEnd.DONE:
        out.print(f"[red bold]{result.end.value}[/]: {escape(result.detail)}; {trades} were asked for.")
        code = 1
    if result.open_positions:
        held = ", ".join(
            f"{agent} {symbol} {qty:+d}" for (_, agent, symbol), qty in result.open_positions.items()
        )
        out.print(f"still open at the end (not counted): {escape(held)}")
    if result.refusals:
        refused = ", ".join(f"{reason} {n}" for reason, n in result.refusals.items())
        out.print(f"commands the floor refused (ledgered): {escape(refused)}", highlight=False)
    for line in outcome.summary:
        out.print(escape(line), highlight=False)
    if outcome.report_path is not None:
        out.print(f"report: {outcome.report_path}")
    for violation in outcome.violations:
        out.print(f"[red bold]VIOLATION[/] {escape(violation)}", highlight=False)
        code = 1
    if outcome.problem:
        out.print(f"[red bold]audit incomplete[/]: {escape(outcome.problem)}")
        code = 1
    ledger = outcome.ledger
    if ledger is None:
        out.print("[red bold]ledger not verified[/]")
        code = 1
    else:
        out.print(escape(ledger_line(ledger)), style="green" if ledger.ok else "red bold", highlight=False)
        code = code if ledger.ok else 1
    if code == 0:
        out.print(f"[green bold]{result.round_trips} trades, zero violations.[/]")
    return code


def paper_loop(
    trades: Annotated[int, typer.Option(min=1, help="round-trip trades to complete")] = 1000,
    seed: Annotated[int, typer.Option(help="the demo brain's seed")] = 1,
    caps_binding_share: Annotated[
        float,
        typer.Option(
            min=0.0, max=1.0, help="share of entries whose claimed edge asks for more than the caps allow"
        ),
    ] = 0.2,
    time_scale: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="run the paper venue's clock this many times faster during the loop (set back after)",
        ),
    ] = 20.0,
    stall_s: Annotated[
        float, typer.Option(help="give up after this many seconds without a completed trade")
    ] = 120.0,
) -> None:
    """Trade N round trips through the floor with the demo brain, then prove from the venue's
    executions and the ledger that no risk limit was exceeded (exit 1 naming each trade that did)."""
    settings = FloorSettings()

    def make_brain(s: FloorSettings) -> Brain:
        return default_brain(s, seed, caps_binding_share)

    run = run_paper_loop(settings, trades, make_brain=make_brain, time_scale=time_scale, stall_s=stall_s)
    raise typer.Exit(run.code)
