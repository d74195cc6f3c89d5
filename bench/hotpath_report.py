"""What :mod:`bench.hotpath` measured in one run, split by stage, and how it is printed.

Each command's way is cut at the stamps the hot path and the bench take: produced (the bench,
just before ``send``) -> read by a bare consumer (the same record, :mod:`bench.hotpath_hop`)
-> the hot path's intake -> its checks passed -> its ledger entry committed -> the broker
socket write. Each stage is printed next to the baseline that bounds it in the same run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.figures import Figures

GOAL_IN_PROCESS_P99_US = 1_000
GOAL_END_TO_END_P99_US = 5_000
GOAL_BURST_P99_US = 15_000
"""The plan's signal -> broker call under a burst (the load run)."""


@dataclass
class RunResult:
    name: str
    rate: float
    baseline: Figures | None = None
    commit_floor: Figures | None = None
    disk_flush: Figures | None = None
    bare_hop: Figures | None = None
    """produce -> a bare consumer's receipt of the same records, same fetch wait."""
    in_process: Figures | None = None
    end_to_end: Figures | None = None
    to_ledger: Figures | None = None
    to_decision: Figures | None = None
    decision_to_ledger: Figures | None = None
    ledger_to_write: Figures | None = None
    before_intake: Figures | None = None
    waited_in_hotpath: Figures | None = None
    """bare consumer's receipt -> the hot path's intake: time a record spent in the hot path
    before intake took it (its consumer's buffer, behind earlier commands)."""
    throughput: float | None = None
    groups: Mapping[str, int] | None = None
    gc: Mapping[str, Any] | None = None
    """The hot path's garbage-collector pauses over the run, by generation."""
    cpu_per_command_us: float | None = None
    """The hot path's CPU time per command (its whole process: intake, broker callbacks,
    publishing), over the run."""
    cpu_share: float | None = None
    """The hot path's CPU seconds per wall second over the run (1.0: one core, all of it)."""
    missing: int = 0
    notes: list[str] = field(default_factory=list)

    def timings(
        self,
        timings: Sequence[dict[str, Any]],
        produced_ns: Mapping[str, int],
        received_ns: Mapping[str, int] | None = None,
    ) -> None:
        """Fill the hot path's figures from its ``/stats`` timings and the produce stamps (and
        the bare consumer's receipts of the same commands, by command id)."""
        self.in_process = Figures.of([t["write_ns"] - t["intake_ns"] for t in timings])
        self.end_to_end = Figures.of([t["write_wall_ns"] - produced_ns[t["command_id"]] for t in timings])
        self.to_ledger = Figures.of([t["ledgered_ns"] - t["intake_ns"] for t in timings])
        self.to_decision = Figures.of([t["decided_ns"] - t["intake_ns"] for t in timings])
        self.decision_to_ledger = Figures.of([t["ledgered_ns"] - t["decided_ns"] for t in timings])
        self.ledger_to_write = Figures.of([t["write_ns"] - t["ledgered_ns"] for t in timings])
        self.before_intake = Figures.of([intake_wall_ns(t) - produced_ns[t["command_id"]] for t in timings])
        if received_ns:
            self.bare_hop = Figures.of(
                [received_ns[cid] - produced_ns[cid] for cid in produced_ns if cid in received_ns]
            )
            self.waited_in_hotpath = Figures.of(
                [
                    max(0, intake_wall_ns(t) - received_ns[t["command_id"]])
                    for t in timings
                    if t["command_id"] in received_ns
                ]
            )
        self.throughput = throughput(timings)
        self.missing = len(produced_ns) - len(timings)


def intake_wall_ns(timing: dict[str, Any]) -> int:
    """The intake stamp on the wall clock, by the offset the hot path used for the write."""
    return int(timing["intake_ns"] + (timing["write_wall_ns"] - timing["write_ns"]))


def throughput(timings: Sequence[dict[str, Any]]) -> float | None:
    """Commands per second the hot path took in, first intake to last socket write."""
    if len(timings) < 2:
        return None
    first = min(intake_wall_ns(t) for t in timings)
    last = max(t["write_wall_ns"] for t in timings)
    return (len(timings) - 1) / ((last - first) / 1e9) if last > first else None


def _row(
    table: Table, label: str, f: Figures | None, goal_us: float | None, base: Figures | None = None
) -> None:
    if f is None:
        return
    verdict = ""
    if goal_us is not None:
        ok = f.p99_us <= goal_us
        colour, word = ("green", "met") if ok else ("red", "missed")
        verdict = f"[{colour}]p99 <= {goal_us / 1000:g} ms {word}[/]"
    ratio = ""
    if base is not None and base.n and f.n and base.p99_us > 0:
        ratio = f"x{f.p50_us / base.p50_us:,.1f} / x{f.p99_us / base.p99_us:,.1f}"
    table.add_row(label, str(f.n), f"{f.p50_us:,.1f}", f"{f.p99_us:,.1f}", f"{f.max_us:,.1f}", ratio, verdict)


def report(console: Console, results: Sequence[RunResult]) -> None:
    for r in results:
        burst = r.name.startswith("load")
        table = Table(title=f"{r.name} run: {r.rate:g} commands/s", title_justify="left")
        for col in ("measure", "n", "p50 µs", "p99 µs", "max µs", "vs its baseline p50 / p99", "goal"):
            table.add_column(col, justify="right" if col != "measure" else "left")
        _row(table, "baseline: bare ib_async, decide -> socket write", r.baseline, None)
        _row(table, "baseline: one durable INSERT + commit, same Postgres", r.commit_floor, None)
        _row(table, "baseline: 8 KiB write + fdatasync, the ledger's disk", r.disk_flush, None)
        _row(table, "baseline: bare consumer, produce -> receive (same records)", r.bare_hop, None)
        _row(table, "(b) hot path intake -> socket write", r.in_process, GOAL_IN_PROCESS_P99_US, r.baseline)
        _row(
            table, "(a) command produce -> socket write", r.end_to_end,
            GOAL_BURST_P99_US if burst else GOAL_END_TO_END_P99_US, r.bare_hop,
        )  # fmt: skip
        _row(table, "    (a) part: produce -> hot-path intake", r.before_intake, None, r.bare_hop)
        _row(table, "        of which in the hot path (bare receipt -> intake)", r.waited_in_hotpath, None)
        _row(table, "    (b) part: intake -> ledger committed", r.to_ledger, None, r.commit_floor)
        _row(table, "        of which intake -> checks passed", r.to_decision, None)
        _row(table, "        of which checks -> committed", r.decision_to_ledger, None, r.commit_floor)
        _row(table, "    (b) part: ledger committed -> socket write", r.ledger_to_write, None)
        console.print(table)
        if r.baseline and r.commit_floor and r.in_process and r.in_process.n:
            # What no write-ahead floor can beat on this machine: placing plus one durable commit.
            p50 = r.baseline.p50_us + r.commit_floor.p50_us
            p99 = r.baseline.p99_us + r.commit_floor.p99_us
            console.print(
                f"  (b) vs bare ib_async + one durable commit (p50 {p50:,.0f} µs, p99 {p99:,.0f} µs):"
                f" p50 x{r.in_process.p50_us / p50:,.2f}, p99 x{r.in_process.p99_us / p99:,.2f}"
            )
        if r.groups:
            g = r.groups
            console.print(
                f"  ledger appends: {g.get('single', 0):,} alone, {g.get('grouped', 0):,} in "
                f"{g.get('groups', 0):,} group commits (largest {g.get('largest', 0)})"
                + (f", {g['refused_groups']} groups refused, each alone" if g.get("refused_groups") else "")
            )
        if r.gc:
            gens = r.gc.get("generations", {})
            console.print(
                "  garbage-collector pauses: "
                + ", ".join(
                    f"gen {g} {p['count']:,} x (total {p['total_ms']:,.1f} ms, longest {p['max_ms']:,.2f} ms)"
                    for g, p in sorted(gens.items())
                )
                + f"; {r.gc.get('frozen', 0):,} objects frozen"
                + (f"; {idle} idle full collections" if (idle := r.gc.get("idle", {}).get("count")) else "")
            )
        if r.cpu_per_command_us is not None and r.cpu_share is not None:
            console.print(
                f"  hot-path CPU: {r.cpu_per_command_us:,.0f} µs a command, {r.cpu_share * 100:.0f}% of one"
                " core over the run (one event loop: near 100% every record queues behind the rest)"
            )
        if r.throughput is not None:
            kept_up = r.throughput >= 0.95 * r.rate
            verdict = "kept up" if kept_up else "fell behind: (a) includes the backlog"
            console.print(
                f"  hot-path intake throughput {r.throughput:,.0f} commands/s "
                f"of {r.rate:g}/s offered ({verdict})"
            )
        if r.missing:
            console.print(f"  [yellow]{r.missing} commands produced, not timed (refused or still queued)[/]")
        for note in r.notes:
            console.print(f"  [yellow]{note}[/]")


def tracing_report(console: Console, results: Sequence[RunResult]) -> None:
    """Each plan's hot path with tracing off and on, side by side: on / off per figure."""
    by_plan: dict[str, dict[str, RunResult]] = {}
    for r in results:
        plan, _, mode = r.name.partition(", tracing ")
        if mode:
            by_plan.setdefault(plan, {})[mode] = r
    for plan, modes in by_plan.items():
        off, on = modes.get("off"), modes.get("on")
        if off is None or on is None:
            continue
        table = Table(
            title=f"{plan} run: tracing off vs on (same gateways, Postgres, Kafka)", title_justify="left"
        )
        for col in ("measure", "off p50 / p99 µs", "on p50 / p99 µs", "on / off p50", "on / off p99"):
            table.add_column(col, justify="right" if col != "measure" else "left")
        for label, a, b in (
            ("(b) hot path intake -> socket write", off.in_process, on.in_process),
            ("(a) command produce -> socket write", off.end_to_end, on.end_to_end),
            ("    (b) part: ledger committed -> socket write", off.ledger_to_write, on.ledger_to_write),
        ):
            if a is None or b is None or not a.n or not b.n:
                continue
            table.add_row(
                label,
                f"{a.p50_us:,.1f} / {a.p99_us:,.1f}",
                f"{b.p50_us:,.1f} / {b.p99_us:,.1f}",
                f"x{b.p50_us / a.p50_us:,.2f}",
                f"x{b.p99_us / a.p99_us:,.2f}",
            )
        console.print(table)
        if off.cpu_per_command_us and on.cpu_per_command_us:
            cpu_off, cpu_on = off.cpu_per_command_us, on.cpu_per_command_us
            console.print(
                f"  hot-path CPU a command: {cpu_off:,.0f} µs off, {cpu_on:,.0f} µs on"
                f" (x{cpu_on / cpu_off:,.2f}: the spans are made after the write)"
            )
