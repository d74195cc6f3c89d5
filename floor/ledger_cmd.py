"""``floor ledger``: check the ledger's chain and signatures, look at its newest entries."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import asyncpg
import typer
from aiokafka import TopicPartition
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from bus.kafka import consumer
from bus.topics import LEDGER_CHECKPOINTS
from config.settings import FloorSettings
from ledger.append import ledger_head
from ledger.checkpoints import CHECKPOINTS_FILE, CheckpointLine, parse_checkpoint, read_checkpoints
from ledger.verify import Anchor, Authorised, VerifyReport, verify_ledger
from trading.commands import Command, CommandInvalid

app = typer.Typer(help="The hash-chained ledger.", no_args_is_help=True)
console = Console()


@app.command("verify")
def verify(
    anchor: Annotated[
        list[str] | None,
        typer.Option("--anchor", help="SEQ:HASH printed earlier by `floor ledger head` (repeatable)."),
    ] = None,
    checkpoints: Annotated[
        Path | None,
        typer.Option(
            "--checkpoints",
            help="The floor's signed checkpoints of the ledger head (default: var/ledger/checkpoints.jsonl).",
        ),
    ] = None,
    from_kafka: Annotated[
        bool,
        typer.Option("--from-kafka", help=f"Also check the checkpoints on the {LEDGER_CHECKPOINTS} topic."),
    ] = False,
) -> None:
    """Re-check every signature and the whole chain, and that the ledger still holds every entry
    the floor's signed checkpoints saw; name the first bad or missing entry (exit 1). Each
    entry a trader authorised with a passkey is listed with who authorised it."""
    settings = FloorSettings()
    # Read before the ledger is: no checkpoint is newer than what verify will see.
    lines = read_checkpoints(checkpoints or settings.var_dir / CHECKPOINTS_FILE)
    if from_kafka:
        lines += asyncio.run(topic_checkpoints(settings.kafka))
    try:
        anchors = tuple(Anchor.parse(a) for a in anchor or [])
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--anchor") from None
    with Progress(
        TextColumn("verifying ledger"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("verify", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        def authorised(entry: Authorised) -> None:
            console.print(str(entry), markup=False, highlight=False)

        report: VerifyReport = asyncio.run(
            verify_ledger(settings.role_url("cli"), progress, anchors, lines, authorised)
        )
    if report.first_bad is not None:
        console.print(
            f"[red bold]ledger NOT intact[/]: first bad entry is seq {report.first_bad.seq}: "
            f"{report.first_bad.problem}"
        )
        console.print(f"{report.entries} entries before it verified.")
        for problem in report.problems:
            console.print(f"[red bold]also[/]: {problem}")
        raise typer.Exit(1)
    if report.problems:
        for problem in report.problems:
            console.print(f"[red bold]ledger NOT intact[/]: {problem}")
        raise typer.Exit(1)
    console.print(
        f"[green bold]ledger intact[/]: {report.entries} entries, chain and signatures verified"
        f" against {report.checkpoints} signed checkpoints."
    )


async def topic_checkpoints(bootstrap: str) -> list[CheckpointLine]:
    """Every checkpoint on the topic now, from its first record to its end."""
    reader = consumer(bootstrap, group_id=None)
    await reader.start()
    try:
        await reader.topics()  # fetches the metadata partitions_for_topic reads
        partitions = [
            TopicPartition(LEDGER_CHECKPOINTS, p)
            for p in reader.partitions_for_topic(LEDGER_CHECKPOINTS) or ()
        ]
        if not partitions:
            return []
        reader.assign(partitions)
        await reader.seek_to_beginning(*partitions)
        ends = await reader.end_offsets(partitions)
        lines: list[CheckpointLine] = []
        while [tp for tp in partitions if await reader.position(tp) < ends[tp]]:
            for tp, records in (await reader.getmany(timeout_ms=500)).items():
                for record in records:
                    where = f"{LEDGER_CHECKPOINTS}[{tp.partition}] offset {record.offset}"
                    lines.append(parse_checkpoint(where, record.value or b""))
        return lines
    finally:
        await reader.stop()


@app.command("tail")
def tail(n: int = typer.Option(20, "--n", "-n", help="How many of the newest entries.")) -> None:
    """The newest entries, newest last."""
    settings = FloorSettings()

    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(settings.role_url("cli"))
        try:
            rows = await conn.fetch(
                "SELECT seq, recorded_at, kind, account, agent_id, command_id, decision, reason, detail,"
                " payload"
                " FROM ledger_entries ORDER BY seq DESC LIMIT $1",
                n,
            )
            return list(reversed(rows))
        finally:
            await conn.close()

    table = Table(title="Ledger", title_justify="left")
    columns = ("seq", "recorded", "kind", "account", "agent", "command", "decision", "detail", "authorised")
    for column in columns:
        table.add_column(column)
    for r in asyncio.run(run()):
        decision = r["decision"] + (f" ({r['reason']})" if r["reason"] else "")
        table.add_row(
            str(r["seq"]),
            f"{r['recorded_at']:%H:%M:%S.%f}"[:-3],
            r["kind"],
            r["account"] or "",
            r["agent_id"] or "",
            r["command_id"] or "",
            decision,
            r["detail"] or "",
            authorised_by(bytes(r["payload"])),
        )
    console.print(table)


def authorised_by(payload: bytes) -> str:
    """Who authorised a command with a passkey, from its signed payload ("" when nobody did, or
    the payload is not a command). Read, not verified: `floor ledger verify` verifies."""
    try:
        command = Command.from_json_dict(json.loads(payload))
    except (ValueError, CommandInvalid):
        return ""
    return "" if command.authorization is None else command.authorization.describe()


@app.command("head")
def head() -> None:
    """Print the newest entry as SEQ:HASH. Keep it somewhere else (a ticket, a chat, paper):
    `floor ledger verify --anchor SEQ:HASH` later proves history up to it was not rewritten."""
    settings = FloorSettings()

    async def run() -> tuple[int, bytes]:
        conn = await asyncpg.connect(settings.role_url("cli"))
        try:
            return await ledger_head(conn)
        finally:
            await conn.close()

    seq, digest = asyncio.run(run())
    if seq == 0:
        console.print("the ledger is empty")
        raise typer.Exit(1)
    print(Anchor(seq, digest))
