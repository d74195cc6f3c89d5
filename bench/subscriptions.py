"""Order-book subscriptions under load: venue timestamp -> frame received, per subscriber.

    python -m bench.subscriptions [--rate 2000] [--seconds 10] [--subscribers 50]
                                  [--paths relay,graphql,hub]

Starts its own Postgres and Kafka (the supervisor specs ``floor up`` uses) on free ports under
a scratch ``var/bench-*`` directory, removed afterwards. A producer process stands in for the
venue: it writes one symbol's whole book (10 levels a side, one level changing per update, the
book shifting a tick now and then) to ``market.depth`` at ``--rate`` updates/s, stamping each
record's ``ts`` just before signing it with the hot path's record key (provisioned as ``floor
up`` does) and sending it, as the hot path does. Every path in ``--paths`` runs at once, over
the same records, each with ``--subscribers`` WebSocket clients in a process of
their own (:mod:`bench.subscription_paths`):

- ``relay``, the baseline: a bare WebSocket relay of the records, one frame per Kafka fetch;
- ``hub``: the API's subscription hub (:class:`api.hub.Hub`) behind a bare WebSocket server;
- ``graphql``: the real API process's ``orderBook`` subscription over graphql-transport-ws
  (with a read token the bench issues, or ``--token``).

Latency of an update = receive time of the first frame that carries it (the relay: the frame
holding its record; the book paths: the first frame whose venue time is at or after the
update's, since a delta may merge several updates) - the update's venue timestamp, same host
clock, for every update and every subscriber. Lost: updates no frame carried by the end (the
relay: records not received). Out of order: a frame older than one before it, or a delta whose
``previousSequence`` does not link. The book paths' final books are checked against the
venue's last book. Goal: p99 <= 10 ms, nothing lost or out of order.

Also printed: the Kafka hop alone (venue timestamp -> the relay's consumer has the record),
which every path pays; each server's and each path's clients' CPU over the run, and the
server's CPU per frame sent; the venue's and Kafka's CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import uvloop
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from bench.figures import Figures
from bench.kafka_hop import cpu_seconds
from bench.subscription_paths import Seen, clients_main, hub_main, micros, relay_main
from config.ports import free_port
from config.settings import FloorSettings
from floor import services
from floor.supervisor import Supervisor
from trading.depth_book import Level

console = Console(width=None if Console().is_terminal else 200)

SYMBOL = "AAPL"
LEVELS = 10
WARMUP_RECORDS = 20
PATHS = ("relay", "hub", "graphql")
GOAL_P99_MS = 10.0
NAMES = {"kafka hop": "Kafka hop (the relay's consumer)", "relay": "baseline: bare relay"}


# --- the venue (child process) ----------------------------------------------------------------


class VenueBook:
    """A book that moves one level per update: a size changes, or the book shifts a tick."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)
        self._mid_ticks = 23_000  # 230.00
        self._bids = {self._mid_ticks - 1 - i: 100 for i in range(LEVELS)}
        self._asks = {self._mid_ticks + 1 + i: 100 for i in range(LEVELS)}

    def step(self) -> None:
        r = self._random
        if r.random() < 0.05:
            shift = r.choice((-1, 1))
            self._mid_ticks += shift
            self._bids = {p + shift: s for p, s in self._bids.items()}
            self._asks = {p + shift: s for p, s in self._asks.items()}
            return
        side = self._bids if r.random() < 0.5 else self._asks
        price = r.choice(list(side))
        side[price] = r.choice([s for s in (50, 100, 200, 300, 400, 500, 700, 900) if s != side[price]])

    def levels(self) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        def side(book: dict[int, int], best_high: bool) -> tuple[Level, ...]:
            return tuple((Decimal(p) / 100, s) for p, s in sorted(book.items(), reverse=best_high))

        return side(self._bids, True), side(self._asks, False)


def venue_main(bootstrap: str, rate: float, seconds: float, key_pem: bytes | None, out: Any) -> None:
    uvloop.run(_venue(bootstrap, rate, seconds, key_pem, out))


async def _venue(bootstrap: str, rate: float, seconds: float, key_pem: bytes | None, out: Any) -> None:
    from brokers.base import DepthLevel, DepthSnapshot
    from bus.kafka import start_producer
    from bus.signed_records import SigningProducer
    from bus.topics import MARKET_DEPTH
    from hotpath.depth import encode
    from trading.signing import private_key_from_pem

    kafka_producer = await start_producer(bootstrap, "bench-venue")
    # Signed like the hot path's records (the hub refuses others); the relay alone needs no key.
    producer = (
        kafka_producer if key_pem is None else SigningProducer(kafka_producer, private_key_from_pem(key_pem))
    )
    book = VenueBook(seed=7)
    last = datetime.now(UTC)

    async def send() -> int:
        nonlocal last
        book.step()
        now = max(datetime.now(UTC), last + timedelta(microseconds=1))  # strictly increasing
        last = now
        bids, asks = book.levels()
        snapshot = DepthSnapshot(
            SYMBOL, tuple(DepthLevel(p, s) for p, s in bids), tuple(DepthLevel(p, s) for p, s in asks), now, 0
        )
        await producer.send(MARKET_DEPTH, encode(snapshot), key=SYMBOL.encode())
        return micros(now)

    try:
        for _ in range(WARMUP_RECORDS):  # every book subscriber has its snapshot before the run
            await send()
            await asyncio.sleep(0.02)
        await producer.flush()
        await asyncio.sleep(0.5)
        loop = asyncio.get_running_loop()
        n = int(rate * seconds)
        stamps: list[int] = []
        cpu_began = time.process_time()
        start = loop.time()
        for i in range(n):
            delay = start + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            stamps.append(await send())
        await producer.flush()
        cpu_s = time.process_time() - cpu_began
        out.put((stamps, loop.time() - start, book.levels(), cpu_s))
    finally:
        await kafka_producer.stop()


# --- figures ------------------------------------------------------------------------------------


def latencies_ns(updates_us: Sequence[int], frames: Sequence[tuple[int, int]]) -> tuple[list[int], int]:
    """Each update's latency: the receive time of the first frame carrying it (whose newest
    venue time is at or after the update's) minus the update's venue time; and how many updates
    no frame carried. ``updates_us`` ascending; ``frames`` in arrival order."""
    out: list[int] = []
    i = 0
    for received_ns, newest_us in frames:
        while i < len(updates_us) and updates_us[i] <= newest_us:
            out.append(received_ns - updates_us[i] * 1000)
            i += 1
    return out, len(updates_us) - i


@dataclass
class PathResult:
    path: str
    subscribers: int
    figures: Figures
    frames_per_s: float
    lost: int
    out_of_order: int
    books_wrong: int | None
    errors: list[str]
    server_cpu: float | None = None
    """Share of one core the path's server used during the run."""
    clients_cpu: float | None = None


def summarise(path: str, seen: list[Seen], updates_us: list[int], run_s: float, final: Any) -> PathResult:
    samples: list[int] = []
    lost = out_of_order = frames = 0
    books_wrong = 0 if path in ("hub", "graphql") else None
    errors = [s.error for s in seen if s.error]
    for s in seen:
        measured = [f for f in s.frames if f[1] >= updates_us[0]] if updates_us else []
        frames += len(measured)
        got, uncovered = latencies_ns(updates_us, measured)
        samples += got
        out_of_order += s.out_of_order
        if books_wrong is None:  # records, not books: every one must arrive
            lost += len(updates_us) - (s.records - WARMUP_RECORDS)
        else:
            lost += uncovered
            if books_wrong is not None and s.book != final:
                books_wrong += 1
    per_subscriber_s = frames / max(len(seen), 1) / run_s
    return PathResult(
        path, len(seen), Figures.of(samples), per_subscriber_s, lost, out_of_order, books_wrong, errors
    )


# --- the run ------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> tuple[list[PathResult], float, int, dict[str, float]]:
    root = Path(__file__).resolve().parent.parent / "var"
    root.mkdir(exist_ok=True)
    var_dir = Path(tempfile.mkdtemp(prefix="bench-", dir=root))
    settings = FloorSettings.on_free_ports(var_dir)
    supervisor = Supervisor(settings.log_dir)
    ctx = multiprocessing.get_context("spawn")
    children: list[Any] = []
    try:
        with Progress(transient=True, console=console) as progress:
            task = progress.add_task("starting postgres and kafka", total=None)
            kafka_pid, key_pem = _start_services(
                settings, supervisor, "hub" in args.paths or "graphql" in args.paths
            )
            stop, hop_out = ctx.Event(), ctx.Queue()
            urls: dict[str, str] = {}
            server_pids: dict[str, int] = {}
            ready_events: list[Any] = []
            for path in args.paths:
                progress.update(task, description=f"starting the {path} server")
                urls[path], server_pids[path], started = _start_server(
                    path, settings, supervisor, ctx, stop, hop_out
                )
                if started is not None:
                    children.append(started[0])
                    ready_events.append(started[1])
            for event in ready_events:
                if not event.wait(60):
                    raise RuntimeError("a server did not start within 60 s (see var/bench-*/log)")
            token = args.token or (_make_token(settings) if "graphql" in args.paths else None)
            clients: dict[str, tuple[Any, Any, Any]] = {}
            for path in args.paths:
                progress.update(task, description=f"connecting {args.subscribers} {path} subscribers")
                ready, out = ctx.Event(), ctx.Queue()
                process = ctx.Process(
                    target=clients_main,
                    args=(path, urls[path], args.subscribers, SYMBOL, LEVELS, token, ready, stop, out),
                    daemon=True,
                )
                process.start()
                children.append(process)
                clients[path] = (process, ready, out)
            for path, (_, ready, _) in clients.items():
                if not ready.wait(60):
                    raise RuntimeError(f"the {path} subscribers did not connect within 60 s")
            venue_out = ctx.Queue()
            venue = ctx.Process(
                target=venue_main,
                args=(settings.kafka, args.rate, args.seconds, key_pem, venue_out),
                daemon=True,
            )
            pids = {f"server {p}": pid for p, pid in server_pids.items()}
            pids |= {f"clients {p}": c[0].pid for p, c in clients.items()}
            pids["Kafka (Tansu)"] = kafka_pid
            cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
            venue.start()
            children.append(venue)
            progress.update(task, description=f"{args.rate:g} updates/s", total=args.seconds + 1)
            began = time.monotonic()
            while venue.is_alive() and venue_out.empty():
                time.sleep(0.2)
                progress.update(task, completed=min(time.monotonic() - began, args.seconds + 1))
            stamps, run_s, final, venue_cpu_s = venue_out.get(timeout=30)
            cpu = {name: (cpu_seconds(pid) - cpu_before[name]) / run_s for name, pid in pids.items()}
            progress.update(task, description="draining")
            time.sleep(args.drain)
            stop.set()
            seen = {path: out.get(timeout=60) for path, (_, _, out) in clients.items()}
            hop = hop_out.get(timeout=30) if "relay" in args.paths else None
        results = [summarise(path, seen[path], stamps, run_s, final) for path in args.paths]
        if hop is not None:
            results.insert(0, summarise("kafka hop", [Seen(frames=hop, records=WARMUP_RECORDS + len(stamps))],
                                        stamps, run_s, final))  # fmt: skip
        for r in results:
            r.server_cpu, r.clients_cpu = cpu.get(f"server {r.path}"), cpu.get(f"clients {r.path}")
        others = {"venue (producer)": venue_cpu_s / run_s, "Kafka (Tansu)": cpu["Kafka (Tansu)"]}
        return results, run_s, len(stamps), others
    finally:
        for child in children:
            child.kill()
            child.join(5)
        supervisor.stop_all()
        shutil.rmtree(var_dir, ignore_errors=True)


def _start_services(
    settings: FloorSettings, supervisor: Supervisor, postgres: bool
) -> tuple[int, bytes | None]:
    """Start Postgres (when a path needs it, with the floor's keys registered) and Kafka;
    Kafka's pid and the hot path's record key (PEM; None without Postgres)."""
    from bus.kafka import ensure_topics
    from floor.database import prepare_database
    from floor.keys import key_path
    from floor.provision import provision
    from trading.record_signing import HOTPATH_WRITER

    key_pem = None
    if postgres:
        supervisor.start(services.postgres_spec(settings))
        asyncio.run(prepare_database(settings))
        asyncio.run(provision(settings, paper_account=None))
        key_pem = key_path(settings, HOTPATH_WRITER).read_bytes()
    kafka = supervisor.start(services.kafka_spec(settings))
    asyncio.run(ensure_topics(settings.kafka))
    return kafka.pid, key_pem


def _start_server(
    path: str, settings: FloorSettings, supervisor: Supervisor, ctx: Any, stop: Any, hop_out: Any
) -> tuple[str, int, tuple[Any, Any] | None]:
    """The path's WebSocket URL, its server's pid, and its child process and ready event (None:
    supervised, ready once started)."""
    if path == "graphql":
        from api.service import api_spec

        api = supervisor.start(api_spec(settings))
        return f"ws://{settings.host}:{settings.api_port}/graphql", api.pid, None
    port = free_port()
    ready = ctx.Event()
    target: Callable[..., None] = hub_main
    args: tuple[Any, ...] = (settings.model_dump_json(), port, ready)
    if path == "relay":
        target = relay_main
        args = (settings.kafka, settings.host, port, settings.api_feed_fetch_wait_ms, ready, stop, hop_out)
    process = ctx.Process(target=target, args=args, daemon=True)
    process.start()
    return f"ws://{settings.host}:{port}", process.pid, (process, ready)


def _make_token(settings: FloorSettings) -> str:
    """A read token for the graphql path, issued as ``floor api-tokens new`` issues one (as the
    CLI's database role)."""
    import asyncpg

    from ledger.api_tokens import issue_token

    async def issue() -> str:
        conn = await asyncpg.connect(settings.role_url("cli"))
        try:
            _, token = await issue_token(conn, f"bench-{uuid.uuid4().hex[:8]}", "read")
            return token
        finally:
            await conn.close()

    return asyncio.run(issue())


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def _per_frame(r: PathResult) -> str:
    """Server CPU per frame sent (each subscriber's frames counted)."""
    frames_per_s = r.frames_per_s * r.subscribers
    if r.server_cpu is None or not frames_per_s:
        return "-"
    return f"{r.server_cpu / frames_per_s * 1e6:,.0f}"


def report(
    results: list[PathResult], run_s: float, updates: int, others: dict[str, float], args: argparse.Namespace
) -> None:
    table = Table(
        title=f"{SYMBOL} book, {updates:,} updates in {run_s:.1f} s ({updates / run_s:,.0f}/s), "
        f"{args.subscribers} subscribers a path: venue timestamp -> frame received (ms: p50 / p99 / max)",
        title_justify="left",
    )
    columns = ("path", "latency", "samples", "frames/s a subscriber", "lost", "out of order", "final book",
               "server CPU", "server µs a frame", "clients CPU")  # fmt: skip
    for col in columns:
        table.add_column(col, justify="left" if col == "path" else "right")
    for r in results:
        books = "-" if r.books_wrong is None else ("ok" if r.books_wrong == 0 else f"{r.books_wrong} wrong")
        name = NAMES.get(r.path, r.path) + "".join(f"\n[yellow]{e}[/]" for e in sorted(set(r.errors))[:3])
        table.add_row(
            name, r.figures.cells() if r.figures.n else "-", f"{r.figures.n:,}", f"{r.frames_per_s:,.0f}",
            f"{r.lost:,}", f"{r.out_of_order:,}", books,
            _pct(r.server_cpu), _per_frame(r), _pct(r.clients_cpu),
        )  # fmt: skip
    console.print(table)
    console.print(
        "CPU: share of one core over the run (the machine's cores are shared by every process); also "
        + ", ".join(f"{name} {_pct(share)}" for name, share in others.items())
    )
    by_path = {r.path: r for r in results}
    baseline = by_path.get("relay")
    for r in results:
        if baseline is not None and r.path not in NAMES and baseline.figures.n and r.figures.n:
            console.print(
                f"{r.path} / baseline: p50 x{r.figures.p50_us / baseline.figures.p50_us:.2f}, "
                f"p99 x{r.figures.p99_us / baseline.figures.p99_us:.2f}"
            )
    for r in results:
        if r.path in NAMES:
            continue
        met = r.figures.n and r.figures.p99_us / 1000 <= GOAL_P99_MS and not r.lost and not r.out_of_order
        console.print(
            f"{r.path}: goal p99 <= {GOAL_P99_MS:g} ms, nothing lost or out of order: "
            + ("[green]met[/]" if met else "[red]missed[/]")
        )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.subscriptions", description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=2000.0, help="book updates a second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--subscribers", type=int, default=50, help="subscribers on each path")
    parser.add_argument("--paths", default="relay,graphql", help=f"comma-separated, of {', '.join(PATHS)}")
    parser.add_argument("--token", default=None, help="graphql: an API token (default: the bench makes one)")
    parser.add_argument("--drain", type=float, default=1.0, help="seconds to wait for frames after the run")
    args = parser.parse_args(argv)
    args.paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    unknown = [p for p in args.paths if p not in PATHS]
    if unknown:
        parser.error(f"unknown path(s) {', '.join(unknown)}: choose from {', '.join(PATHS)}")
    return args


def main(argv: Sequence[str] | None = None) -> list[PathResult]:
    args = parse_args(argv)
    results, run_s, updates, others = run(args)
    report(results, run_s, updates, others, args)
    return results


if __name__ == "__main__":
    main()
