"""``floor sniper start|amend|pause|resume|cancel|status|report``: the Sniper (iceberg orders)
from the command line.

``start`` signs an ``iceberg`` command with the agent's key and posts it to the API door (the hot
path ledgers the parent; the bridge starts the ``Iceberg`` workflow, id ``iceberg-<command id>``).
``amend``, ``pause``, ``resume`` and ``cancel`` sign the matching ``iceberg_*`` command the same
way: the hot path checks that the signer is the parent's author (or an operator), ledgers it and
the Iceberg reads it from the ledger. Nothing here signals Temporal: a signal carries no signature.
``status`` prints a running or finished iceberg's progress (the workflow's progress query).

``report``: fill quality of finished icebergs, and a plot of fills against the mid.

Reads finished ``Iceberg`` workflows from Temporal (their results carry every slice: send time,
mid at send, quantity, average fill) and prints, per iceberg, VWAP against the fill-weighted
mid at each slice's send time, in basis points, then the distribution over all of them and the
share within the Sniper's goal (0.05 % = 5 bps). ``--plot`` writes a PNG: slice fill prices and
the mid at send time, over time.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from config.settings import FloorSettings
from config.workflow_ids import iceberg_workflow_id
from floor.door_client import decimal_option, submit
from temporal.client import connect, iceberg_progress
from trading.commands import Command, CommandInvalid, CommandKind, Edge, Side, TimeInForce, utc_now_ms
from trading.iceberg_parents import WORKFLOW_PREFIX
from workflows.iceberg import Iceberg, IcebergProgress, IcebergResult

app = typer.Typer(
    help="The Sniper (iceberg orders): start, status, fill-quality reports.", no_args_is_help=True
)


@app.callback()
def _group() -> None:
    """The Sniper's sub-commands."""


def build_iceberg(
    *,
    agent: str,
    account: str,
    symbol: str,
    side: str,
    total: int,
    display: int,
    limit: Decimal | None,
    p: Decimal,
    b: Decimal,
    stop: Decimal,
    tif: str,
) -> Command:
    """An ``iceberg`` command with a fresh command id and nonce, issued now."""
    return Command(
        kind=CommandKind.ICEBERG,
        command_id=f"cli-{uuid.uuid4().hex}",
        agent_id=agent,
        account=account,
        nonce=uuid.uuid4().hex,
        issued_at=utc_now_ms(),
        symbol=symbol,
        side=Side(side),
        edge=Edge(p=p, b=b, stop_price=stop),
        tif=TimeInForce(tif),
        quantity=total,
        display_size=display,
        limit_price=limit,
    )


@app.command()
def start(
    agent: Annotated[str, typer.Option(help="Agent whose key signs the iceberg command")],
    account: Annotated[str, typer.Option(help="Broker account")],
    symbol: Annotated[str, typer.Option(help="Instrument, e.g. AAPL")],
    side: Annotated[str, typer.Option(help="BUY or SELL")],
    total: Annotated[int, typer.Option(help="Total shares of the parent order")],
    display: Annotated[int, typer.Option(help="Shares shown per slice")],
    p: Annotated[str, typer.Option("--p", help="Claimed win probability, 0 < p < 1 (sizes each slice)")],
    b: Annotated[str, typer.Option("--b", help="Claimed payoff ratio (win / loss)")],
    stop: Annotated[str, typer.Option("--stop", help="Where the trade is wrong (the edge's stop)")],
    limit: Annotated[str | None, typer.Option(help="Worst price any slice may pay")] = None,
    tif: Annotated[str, typer.Option(help="DAY, GTC or IOC")] = "DAY",
    api: Annotated[str | None, typer.Option(help="API base URL (default: from the settings)")] = None,
) -> None:
    """Sign an iceberg command with AGENT's key and post it; prints the API's answer and the
    iceberg's workflow id (for ``floor sniper status``)."""
    settings = FloorSettings()
    try:
        command = build_iceberg(
            agent=agent,
            account=account,
            symbol=symbol,
            side=side.upper(),
            total=total,
            display=display,
            limit=decimal_option(limit, "--limit"),
            p=decimal_option(p, "--p") or Decimal(0),
            b=decimal_option(b, "--b") or Decimal(0),
            stop=decimal_option(stop, "--stop") or Decimal(0),
            tif=tif.upper(),
        )
    except (CommandInvalid, ValueError) as exc:
        typer.echo(f"invalid command: {exc}", err=True)
        raise typer.Exit(2) from None
    submit(command, settings, api, workflow_id=iceberg_workflow_id(command.command_id))


def build_control(
    kind: CommandKind,
    *,
    agent: str,
    account: str,
    iceberg_id: str,
    total: int | None = None,
    display: int | None = None,
    limit: Decimal | None = None,
) -> Command:
    """An ``iceberg_*`` control for the iceberg ``iceberg_id`` (its command or workflow id)."""
    parent = iceberg_id if iceberg_id.startswith(WORKFLOW_PREFIX) else iceberg_workflow_id(iceberg_id)
    return Command(
        kind=kind,
        command_id=f"cli-{uuid.uuid4().hex}",
        agent_id=agent,
        account=account,
        nonce=uuid.uuid4().hex,
        issued_at=utc_now_ms(),
        parent_id=parent,
        quantity=total,
        display_size=display,
        limit_price=limit,
    )


IcebergId = Annotated[str, typer.Argument(help="The iceberg command id, or its workflow id")]
AgentOption = Annotated[
    str, typer.Option(help="Agent whose key signs (the iceberg's author, or an operator)")
]
AccountOption = Annotated[str, typer.Option(help="The iceberg's account")]
ApiOption = Annotated[str | None, typer.Option(help="API base URL (default: from the settings)")]


def _send_control(command_kind: CommandKind, api: str | None, **fields: object) -> None:
    settings = FloorSettings()
    try:
        command = build_control(command_kind, **fields)  # type: ignore[arg-type]
    except (CommandInvalid, ValueError) as exc:
        typer.echo(f"invalid command: {exc}", err=True)
        raise typer.Exit(2) from None
    submit(command, settings, api, workflow_id=command.parent_id)


@app.command()
def amend(
    iceberg_id: IcebergId,
    agent: AgentOption,
    account: AccountOption,
    total: Annotated[int | None, typer.Option(help="New total shares")] = None,
    display: Annotated[int | None, typer.Option(help="New display size")] = None,
    limit: Annotated[str | None, typer.Option(help="New worst price any slice may pay")] = None,
    api: ApiOption = None,
) -> None:
    """Change a running iceberg's total, display size or limit (a signed iceberg_amend)."""
    _send_control(
        CommandKind.ICEBERG_AMEND, api, agent=agent, account=account, iceberg_id=iceberg_id,
        total=total, display=display, limit=decimal_option(limit, "--limit"),
    )  # fmt: skip


@app.command()
def pause(iceberg_id: IcebergId, agent: AgentOption, account: AccountOption, api: ApiOption = None) -> None:
    """Hold a running iceberg's next slice until resumed (a signed iceberg_pause)."""
    _send_control(CommandKind.ICEBERG_PAUSE, api, agent=agent, account=account, iceberg_id=iceberg_id)


@app.command()
def resume(iceberg_id: IcebergId, agent: AgentOption, account: AccountOption, api: ApiOption = None) -> None:
    """Let a paused iceberg send slices again (a signed iceberg_resume)."""
    _send_control(CommandKind.ICEBERG_RESUME, api, agent=agent, account=account, iceberg_id=iceberg_id)


@app.command()
def cancel(iceberg_id: IcebergId, agent: AgentOption, account: AccountOption, api: ApiOption = None) -> None:
    """Stop an iceberg: its working slice is pulled, it ends Cancelled (a signed iceberg_cancel)."""
    _send_control(CommandKind.ICEBERG_CANCEL, api, agent=agent, account=account, iceberg_id=iceberg_id)


def progress_lines(workflow_id: str, progress: IcebergProgress) -> list[str]:
    avg = "-" if progress.avg_fill_price is None else str(progress.avg_fill_price)
    limit = "-" if progress.limit_price is None else str(progress.limit_price)
    lines = [
        f"{workflow_id}: {progress.status.value}",
        f"filled {progress.filled_qty}/{progress.total_qty}, working {progress.working_qty},"
        f" display {progress.display_qty}, limit {limit}",
        f"slices sent {progress.slices_sent}, average fill {avg}",
    ]
    return lines + [f"note: {n}" for n in progress.notes]


@app.command()
def status(
    iceberg_id: Annotated[str, typer.Argument(help="The iceberg command id, or its workflow id")],
    temporal_address: Annotated[
        str | None, typer.Option("--temporal", help="Temporal address (default: settings).")
    ] = None,
) -> None:
    """Progress of an iceberg: filled, working, slices sent, average fill."""
    settings = FloorSettings()
    workflow_id = iceberg_id if iceberg_id.startswith("iceberg-") else iceberg_workflow_id(iceberg_id)

    async def load() -> IcebergProgress:
        client = await connect(temporal_address or settings.temporal, settings.temporal_namespace)
        return await iceberg_progress(client, workflow_id)

    try:
        progress = asyncio.run(load())
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            typer.echo(f"no iceberg {workflow_id}", err=True)
        else:
            typer.echo(f"cannot query {workflow_id}: {exc}", err=True)
        raise typer.Exit(1) from None
    except RuntimeError as exc:
        typer.echo(f"cannot reach Temporal at {temporal_address or settings.temporal}: {exc}", err=True)
        raise typer.Exit(1) from None
    for line in progress_lines(workflow_id, progress):
        typer.echo(line)


GOAL_BPS = Decimal(5)
"""The Sniper's goal: average fill within 0.05 % of the mid."""


@dataclass(frozen=True)
class FinishedIceberg:
    workflow_id: str
    result: IcebergResult


@dataclass(frozen=True)
class QualitySummary:
    icebergs: int
    with_fills: int
    cost_bps: list[Decimal]
    """Side-adjusted VWAP - mid, in bps, one per iceberg with fills (positive: worse than mid)."""

    @property
    def within_goal(self) -> int:
        return sum(1 for c in self.cost_bps if abs(c) <= GOAL_BPS)

    @property
    def share_within_goal(self) -> Decimal | None:
        return None if not self.cost_bps else Decimal(self.within_goal) / len(self.cost_bps)

    def percentile(self, q: int) -> Decimal | None:
        """Nearest-rank percentile (no interpolation, so the figure is one that occurred)."""
        if not self.cost_bps:
            return None
        ordered = sorted(self.cost_bps)
        rank = max(1, -(-q * len(ordered) // 100))
        return ordered[rank - 1]


def summarize(finished: list[FinishedIceberg]) -> QualitySummary:
    costs = [f.result.quality.cost_bps for f in finished if f.result.quality is not None]
    return QualitySummary(icebergs=len(finished), with_fills=len(costs), cost_bps=costs)


async def fetch_finished(
    client: Client, limit: int = 50, workflow_id: str | None = None
) -> list[FinishedIceberg]:
    """The most recently finished icebergs, newest first: completed, cancelled or expired at the
    close alike (each ends its workflow normally; the result's status says which)."""
    query = 'WorkflowType = "Iceberg" AND ExecutionStatus = "Completed"'
    if workflow_id:
        query += f' AND WorkflowId = "{workflow_id}"'
    out = []
    async for wf in client.list_workflows(query, limit=limit):
        handle = client.get_workflow_handle_for(Iceberg.run, wf.id, run_id=wf.run_id)
        out.append(FinishedIceberg(wf.id, await handle.result()))
    return out


def table(finished: list[FinishedIceberg]) -> Table:
    t = Table(title="Finished icebergs", title_justify="left")
    for col in (
        "iceberg",
        "ended",
        "symbol",
        "side",
        "filled",
        "slices",
        "VWAP",
        "mid at send",
        "diff bps",
        "cost bps",
    ):
        t.add_column(col, justify="left" if col in ("iceberg", "ended", "symbol", "side") else "right")
    for f in finished:
        r, q = f.result, f.result.quality
        t.add_row(
            f.workflow_id,
            r.status.value,
            r.symbol,
            r.side.value,
            f"{r.filled_qty}/{r.total_qty}",
            str(len(r.slices)),
            str(q.vwap) if q else "-",
            str(q.benchmark_mid) if q else "-",
            str(q.diff_bps) if q else "-",
            _cost(q.cost_bps) if q else "-",
        )
    short = [f for f in finished if f.result.reason]
    if short:
        t.caption = "\n".join(f"{f.workflow_id}: {f.result.reason}" for f in short)
        t.caption_justify = "left"
    return t


def _cost(bps: Decimal) -> str:
    return f"[green]{bps}[/]" if abs(bps) <= GOAL_BPS else f"[red]{bps}[/]"


def plot(finished: list[FinishedIceberg], path: Path, max_panels: int = 6) -> int:
    """Write the PNG; returns the number of panels drawn (one per iceberg with fills)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [f for f in finished if any(s.filled_qty for s in f.result.slices)][:max_panels]
    if not shown:
        return 0
    fig, axes = plt.subplots(len(shown), 1, figsize=(9, 2.8 * len(shown)), squeeze=False)
    for ax, f in zip(axes[:, 0], shown, strict=True):
        slices = f.result.slices
        # Plotting only: the exact Decimals are in the table and the workflow result.
        ax.step(
            [s.sent_at for s in slices],
            [float(s.mid_at_send) for s in slices],
            where="post",
            color="0.5",
            label="mid at send",
        )
        filled = [s for s in slices if s.avg_price is not None]
        ax.scatter(
            [s.sent_at for s in filled],
            [float(s.avg_price) for s in filled if s.avg_price is not None],
            s=[12 + 40 * s.filled_qty / max(x.filled_qty for x in filled) for s in filled],
            color="tab:blue" if f.result.side.value == "BUY" else "tab:red",
            label="slice fill (avg)",
        )
        q = f.result.quality
        title = f"{f.workflow_id}  {f.result.side.value} {f.result.filled_qty} {f.result.symbol}"
        if q is not None:
            title += f"  VWAP {q.vwap}  vs mid {q.benchmark_mid}: {q.cost_bps} bps"
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("price")
        ax.legend(fontsize=7, loc="best")
    fig.autofmt_xdate()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return len(shown)


@app.command()
def report(
    limit: Annotated[int, typer.Option(help="How many finished icebergs, newest first.")] = 50,
    workflow_id: Annotated[
        str | None, typer.Option("--id", help="Only this iceberg (its workflow id).")
    ] = None,
    plot_path: Annotated[
        Path | None, typer.Option("--plot", help="Write a PNG of fills vs mid here.")
    ] = None,
    temporal_address: Annotated[
        str | None, typer.Option("--temporal", help="Temporal address (default: settings).")
    ] = None,
) -> None:
    """Fill quality of finished icebergs: VWAP against the mid at each slice's send time."""
    settings = FloorSettings()
    console = Console()

    async def load() -> list[FinishedIceberg]:
        client = await connect(temporal_address or settings.temporal, settings.temporal_namespace)
        return await fetch_finished(client, limit, workflow_id)

    try:
        finished = asyncio.run(load())
    except RuntimeError as exc:
        typer.echo(
            f"cannot read icebergs from Temporal at {temporal_address or settings.temporal}: {exc}", err=True
        )
        raise typer.Exit(1) from None
    if not finished:
        typer.echo("no finished icebergs")
        raise typer.Exit(0)
    console.print(table(finished))
    s = summarize(finished)
    share = s.share_within_goal
    console.print(
        f"{s.icebergs} icebergs, {s.with_fills} with fills; cost bps "
        f"median {_fmt(s.percentile(50))}, p90 {_fmt(s.percentile(90))}, "
        f"mean {_fmt(_mean(s.cost_bps))}; within {GOAL_BPS} bps: "
        f"{s.within_goal}/{len(s.cost_bps)}" + (f" ({share * 100:.1f} %)" if share is not None else "")
    )
    if plot_path is not None:
        panels = plot(finished, plot_path)
        console.print(f"plot: {plot_path} ({panels} icebergs)")


def _mean(values: list[Decimal]) -> Decimal | None:
    return None if not values else sum(values, Decimal(0)) / len(values)


def _fmt(value: Decimal | None) -> str:
    return "-" if value is None else f"{value:.2f}"
