"""Ledger append latency against a plain durable INSERT, measured in the same run.

    python -m bench.ledger_append [--n 2000] [--block 100] [--repeat 1] [--migrations-upto NNNN]
                                  [--background K [--every-ms 2]] [--hold-snapshot]

Starts its own embedded Postgres (the supervisor spec ``floor up`` uses) on a free port under a
scratch ``var/bench-ledger-*`` directory that is removed afterwards, applies the migrations,
then times, one at a time and each committed when it returns:

* **baseline** — ``INSERT`` of a comparable row (the same columns and values as a ledger entry,
  primary key only) into a plain table, autocommit, through the same kind of asyncpg pool;
* **append (pool)** — :func:`ledger.append.append_command` with ``Decision.ACCEPTED`` and a
  detail mapping, exactly as ``hotpath.ledger_store.LedgerStore.append_accepted`` calls it, on
  the asyncpg pool ``hotpath/main.py`` opens;
* **append (dedicated)** — the same call on a :class:`ledger.db.DedicatedConnection`;
* **SELECT 1** — one round trip, on a connection and through the pool (acquire, query,
  release with its reset query), to show what the pool adds to every call.

The baseline runs on a dedicated connection (the best a durable single-row insert gets) and,
for comparison with the pooled append, on the pool.

With ``--background K`` other writers share the pool meanwhile, as the hot path's order-event
and ops-event rows do. The series alternate in blocks of ``--block`` so that load from other
processes on a shared machine falls on all alike; commands are signed before timing starts.
Prints p50 / p99 / max (nearest rank, microseconds) and the ratio to the baseline, plus the
server settings that decide what a commit costs.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import shutil
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import asyncpg
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench.figures import Figures
from config.ports import free_port
from config.settings import FloorSettings
from floor import services
from floor.supervisor import Supervisor
from ledger.append import Decision, append_command
from ledger.db import DedicatedConnection
from ledger.migrate import MIGRATIONS_DIR, apply_migrations, migration_files
from trading.commands import Command, CommandKind, Edge, OrderType, Side, TimeInForce, utc_now_ms
from trading.signing import SignedCommand, generate_private_key, sign_command, signature_hash

console = Console(width=None if Console().is_terminal else 120)

ROOT = Path(__file__).resolve().parent.parent

_BASELINE_TABLE = """
CREATE TABLE IF NOT EXISTS bench_plain_insert (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    prev_hash bytea NOT NULL, entry_hash bytea NOT NULL, kind text NOT NULL, account text,
    agent_id text, command_id text, nonce text, issued_at timestamptz, payload bytea NOT NULL,
    signer text NOT NULL, scheme text NOT NULL, signature bytea NOT NULL,
    signature_hash text NOT NULL, authenticated boolean NOT NULL, decision text NOT NULL,
    reason text, received_at timestamptz NOT NULL, recorded_at timestamptz NOT NULL, detail text
)
"""

_BASELINE_INSERT = (
    "INSERT INTO bench_plain_insert (prev_hash, entry_hash, kind, account, agent_id, command_id,"
    " nonce, issued_at, payload, signer, scheme, signature, signature_hash, authenticated, decision,"
    " reason, received_at, recorded_at, detail)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
)

_SETTINGS = (
    "server_version",
    "synchronous_commit",
    "fsync",
    "wal_sync_method",
    "commit_delay",
    "wal_level",
    "full_page_writes",
    "wal_compression",
    "shared_buffers",
)


def bench_command(agent_id: str) -> Command:
    return Command(
        kind=CommandKind.ENTER,
        command_id=f"cmd-{uuid.uuid4().hex}",
        agent_id=agent_id,
        account="DU1234567",
        nonce=uuid.uuid4().hex,
        issued_at=utc_now_ms(),
        symbol="AAPL",
        side=Side.BUY,
        order_type=OrderType.LMT,
        limit_price=Decimal("150.25"),
        edge=Edge(p=Decimal("0.55"), b=Decimal("1.5"), stop_price=Decimal("148")),
        tif=TimeInForce.DAY,
    )


def bench_detail(quantity: int) -> dict[str, str | int]:
    """What the hot path puts in an accepted entry's detail (values as strings, like its store)."""
    return {
        "quantity": quantity,
        "entry_price": "150.25",
        "bankroll": "100000.00",
        "kelly_fraction": "0.25",
        "binding_limit": "max_trade_size",
    }


SERIES = (
    "baseline INSERT (conn)",
    "baseline INSERT (pool)",
    "append_command (pool)",
    "append_command (dedicated)",
    "SELECT 1 (conn)",
    "SELECT 1 (pool)",
)


async def run_once(
    dsn: str,
    n: int,
    block: int,
    progress: Progress,
    label: str,
    background: int = 0,
    every_ms: float = 2.0,
    hold_snapshot: bool = False,
    pace_ms: float = 0.0,
) -> dict[str, Figures]:
    key = generate_private_key()
    agent_id = f"bench-{uuid.uuid4().hex[:8]}"
    signed = [sign_command(bench_command(agent_id), key) for _ in range(2 * n + 40)]
    # The same pool the hot path opens (hotpath/main.py).
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    conn = await asyncpg.connect(dsn)
    writer = DedicatedConnection(dsn)
    try:
        await conn.execute(_BASELINE_TABLE)
        now = datetime.now(UTC)

        def baseline_on(
            db: asyncpg.Connection | asyncpg.Pool,
        ) -> Callable[[SignedCommand], Awaitable[object]]:
            async def insert(s: SignedCommand) -> object:
                c = s.command
                return await db.execute(
                    _BASELINE_INSERT,
                    bytes(32), bytes(32), c.kind.value, c.account, c.agent_id, c.command_id, c.nonce,
                    c.issued_at, s.canonical, s.signer, s.scheme, s.signature,
                    signature_hash(s.signature), True, "accepted", None, now, now,
                    '{"quantity":1}',
                )  # fmt: skip

            return insert

        def append_on(db: asyncpg.Pool | DedicatedConnection) -> Callable[[SignedCommand], Awaitable[object]]:
            async def append(s: SignedCommand) -> object:
                return await append_command(db, s, decision=Decision.ACCEPTED, detail=bench_detail(7))

            return append

        def round_trip_on(
            db: asyncpg.Connection | asyncpg.Pool,
        ) -> Callable[[SignedCommand], Awaitable[object]]:
            async def select_one(_: SignedCommand) -> object:
                return await db.fetchval("SELECT 1")

            return select_one

        calls = dict(
            zip(
                SERIES,
                (
                    baseline_on(conn),
                    baseline_on(pool),
                    append_on(pool),
                    append_on(writer),
                    round_trip_on(conn),
                    round_trip_on(pool),
                ),
                strict=True,
            )
        )
        appends = iter(signed)
        baseline_rows = itertools.cycle(signed)  # the plain table has no unique columns

        def rows_for(name: str) -> Iterator[SignedCommand]:
            return appends if name.startswith("append") else baseline_rows

        stop = asyncio.Event()

        async def other_writers() -> None:
            # What else the hot path commits on its pool: order state rows, ops events.
            async def one() -> None:
                await pool.execute(
                    "INSERT INTO ops_events (source, kind, severity, detail)"
                    " VALUES ('bench', 'load', 'info', $1::jsonb)",
                    '{"bench": true}',
                )

            while not stop.is_set():
                await asyncio.gather(*(one() for _ in range(background)))
                await asyncio.sleep(every_ms / 1000)  # offered load, not waiting for a condition

        load = asyncio.create_task(other_writers()) if background else None
        # A long reader (``floor ledger verify`` pages through one snapshot) keeps every dead
        # version of the ledger_head row alive, and each append scans past all of them.
        reader = await asyncpg.connect(dsn) if hold_snapshot else None
        snapshot = reader.transaction(isolation="repeatable_read") if reader is not None else None
        if reader is not None and snapshot is not None:
            await snapshot.start()
            await reader.fetchval("SELECT count(*) FROM ledger_entries")

        # Warm every path (connections, prepared statements, plpgsql caches) outside the figures.
        for name, call in calls.items():
            for _ in range(10):
                await call(next(rows_for(name)))

        samples: dict[str, list[int]] = {name: [] for name in SERIES}
        task = progress.add_task(label, total=len(SERIES) * n)
        for start in range(0, n, block):
            count = min(block, n - start)
            for name, call in calls.items():
                rows = rows_for(name)
                for _ in range(count):
                    s = next(rows)
                    if pace_ms:
                        await asyncio.sleep(pace_ms / 1000)  # offered rate, as commands arrive
                    t0 = time.perf_counter_ns()
                    await call(s)
                    samples[name].append(time.perf_counter_ns() - t0)
                progress.advance(task, count)
        stop.set()
        if load is not None:
            await load
        if reader is not None and snapshot is not None:
            await snapshot.rollback()
            await reader.close()
        return {name: Figures.of(v) for name, v in samples.items()}
    finally:
        await writer.close()
        await conn.close()
        await pool.close()


async def server_settings(dsn: str) -> dict[str, str]:
    conn = await asyncpg.connect(dsn)
    try:
        return {name: await conn.fetchval(f"SHOW {name}") for name in _SETTINGS}
    finally:
        await conn.close()


def report(
    results: list[dict[str, Figures]], settings: dict[str, str], applied: list[str], args: argparse.Namespace
) -> None:
    console.print("server: " + ", ".join(f"{k}={v}" for k, v in settings.items()))
    if args.hold_snapshot:
        console.print("meanwhile: a repeatable-read snapshot held open on another connection")
    if args.background:
        console.print(
            f"meanwhile: {args.background} concurrent ops_events inserts on the pool every {args.every_ms} ms"
        )
    console.print("migrations: " + ", ".join(applied))
    table = Table(title="ledger append vs. plain durable INSERT (µs, sequential, each committed)")
    for col in ("run", "what", "n", "p50", "p99", "max", "p50 ×base", "p99 ×base"):
        table.add_column(col, justify="right")
    for run, figures in enumerate(results, 1):
        base = figures[SERIES[0]]
        for name, f in figures.items():
            table.add_row(
                str(run),
                name,
                str(f.n),
                f"{f.p50_us:.0f}",
                f"{f.p99_us:.0f}",
                f"{f.max_us:.0f}",
                f"{f.p50_us / base.p50_us:.2f}",
                f"{f.p99_us / base.p99_us:.2f}",
            )
    console.print(table)
    console.print("×base: against the baseline INSERT on a dedicated connection in the same run.")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=2000, help="timed calls of each kind per run")
    parser.add_argument("--block", type=int, default=100, help="calls of one kind before switching")
    parser.add_argument("--repeat", type=int, default=1, help="runs, each on fresh commands")
    parser.add_argument(
        "--background",
        type=int,
        default=0,
        metavar="K",
        help="meanwhile, K concurrent durable inserts into ops_events on the pool every --every-ms",
    )
    parser.add_argument("--every-ms", type=float, default=2.0)
    parser.add_argument(
        "--hold-snapshot",
        action="store_true",
        help="keep a repeatable-read snapshot open on another connection meanwhile (a long reader)",
    )
    parser.add_argument(
        "--pace-ms",
        type=float,
        default=0.0,
        help="idle this long before each call (25 = the hot path bench's 40 commands/s); "
        "default back to back",
    )
    parser.add_argument(
        "--migrations-upto",
        metavar="NNNN",
        help="apply migrations up to this number only (e.g. 0004 to measure the ledger before 0005)",
    )
    args = parser.parse_args(argv)

    (ROOT / "var").mkdir(exist_ok=True)
    var_dir = Path(tempfile.mkdtemp(prefix="bench-ledger-", dir=ROOT / "var"))
    settings = FloorSettings(var_dir=var_dir, pg_port=free_port())
    supervisor = Supervisor(settings.log_dir)
    try:
        with console.status("starting embedded Postgres"):
            supervisor.start(services.postgres_spec(settings))
            applied = asyncio.run(
                apply_migrations(settings.db_url, _migrations(var_dir, args.migrations_upto))
            )
        results = asyncio.run(_runs(settings.db_url, args))
        report(results, asyncio.run(server_settings(settings.db_url)), applied, args)
    finally:
        supervisor.stop_all()
        shutil.rmtree(var_dir, ignore_errors=True)


def _migrations(var_dir: Path, upto: str | None) -> Path:
    if upto is None:
        return MIGRATIONS_DIR
    chosen = var_dir / "migrations"
    chosen.mkdir()
    for path in migration_files():
        if path.name[:4] <= upto:
            shutil.copy(path, chosen / path.name)
    return chosen


async def _runs(dsn: str, args: argparse.Namespace) -> list[dict[str, Figures]]:
    results = []
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        for run in range(1, args.repeat + 1):
            results.append(
                await run_once(
                    dsn,
                    args.n,
                    args.block,
                    progress,
                    f"run {run}",
                    args.background,
                    args.every_ms,
                    hold_snapshot=args.hold_snapshot,
                    pace_ms=args.pace_ms,
                )
            )
    return results


if __name__ == "__main__":
    main()
