"""Kafka hop benchmark: where the time between producing a record and consuming it goes.

    python -m bench.kafka_hop [--n 400] [--rate 40] [--idle 3] [--only NAME ...]

Starts its own embedded Kafka (Tansu, the supervisor spec ``floor up`` uses) on a free port
under a scratch ``var/bench-*`` directory that is removed afterwards. For each consumer
configuration it makes a fresh topic and runs a consumer in a child process (so it has its own
event loop and its own CPU account, as the hot path does), then:

* **idle** — produces nothing for ``--idle`` seconds and reads the CPU seconds the broker and
  the consumer burn meanwhile (``/proc/<pid>/stat``): the price of polling on 2 shared cores;
* **steady** — produces ``--n`` single records at ``--rate`` per second, one ``send_and_wait``
  at a time with the floor's producer (``acks=all``, ``linger_ms=0``), timing
  (i) send -> ack and (ii) produce stamp -> the consumer's ``async for`` yields the record.
  The produce stamp (``time.time_ns()`` just before ``send``) travels in the record value and
  the consumer stamps its receipt on the same clock.

The consumer also times every Fetch round trip it makes (by wrapping its client's ``send``), so
the table shows how long the broker holds an empty fetch and how many fetches a second idle
polling costs.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import os
import shutil
import struct
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench.figures import Figures
from config.settings import FloorSettings
from floor import services
from floor.supervisor import Supervisor

console = Console(width=None if Console().is_terminal else 200)

STAMP = struct.Struct(">q")
"""Record value: the producer's ``time.time_ns()`` just before ``send``."""
WARM_TIMEOUT_S = 10.0
"""How long a configuration may take to deliver its first record before it is called broken."""


@dataclass(frozen=True)
class ConsumerConfig:
    name: str
    options: dict[str, Any]
    """Keyword arguments for ``AIOKafkaConsumer``, and ``racers``: how many consumers of the
    topic race in the child, each on its own connection (a record counts when the first has
    it) — what fetches staggered over several connections could buy on a broker that polls."""


CONFIGS: tuple[ConsumerConfig, ...] = (
    ConsumerConfig("wait 5 ms", {"fetch_max_wait_ms": 5}),
    ConsumerConfig("wait 2 ms", {"fetch_max_wait_ms": 2}),
    ConsumerConfig("wait 1 ms", {"fetch_max_wait_ms": 1}),
    ConsumerConfig("wait 0 ms", {"fetch_max_wait_ms": 0}),
    ConsumerConfig("wait 5 ms, min_bytes 0", {"fetch_max_wait_ms": 5, "fetch_min_bytes": 0}),
    ConsumerConfig("wait 1 ms, 2 consumers racing", {"fetch_max_wait_ms": 1, "racers": 2}),
    ConsumerConfig("wait 2 ms, 2 consumers racing", {"fetch_max_wait_ms": 2, "racers": 2}),
    ConsumerConfig("wait 500 ms (aiokafka default)", {"fetch_max_wait_ms": 500}),
)


# --- figures --------------------------------------------------------------------------------


@dataclass
class Result:
    config: ConsumerConfig
    ack: Figures | None = None
    hop: Figures | None = None
    ack_to_receive: Figures | None = None
    idle_fetch: Figures | None = None
    idle_fetches_per_s: float | None = None
    idle_cpu_broker: float | None = None
    idle_cpu_consumer: float | None = None
    run_cpu_broker: float | None = None
    run_cpu_consumer: float | None = None
    missing: int = 0
    notes: list[str] = field(default_factory=list)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process so far (``/proc/<pid>/stat`` fields 14, 15)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- the consumer (child process) -----------------------------------------------------------


def consumer_main(bootstrap: str, topic: str, options: dict[str, Any], n: int, conn: Connection) -> None:
    asyncio.run(_consume(bootstrap, topic, options, n, conn))


async def _consume(bootstrap: str, topic: str, options: dict[str, Any], n: int, conn: Connection) -> None:
    from aiokafka import AIOKafkaConsumer

    racers = int(options.pop("racers", 1))
    fetches: list[tuple[int, int]] = []
    consumers = [
        AIOKafkaConsumer(
            topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest", **options
        )
        for _ in range(racers)
    ]
    for consumer in consumers:
        _time_fetches(consumer, fetches)
        await consumer.start()
    conn.send(("started", os.getpid()))
    # offset -> (produce stamp, first receipt): with several consumers racing, the first wins.
    first: dict[int, tuple[int, int]] = {}
    complete = asyncio.Event()

    async def drain(consumer: AIOKafkaConsumer) -> None:
        async for record in consumer:
            now = time.time_ns()
            assert record.value is not None
            (stamp,) = STAMP.unpack(record.value)
            if record.offset in first:
                continue
            first[record.offset] = (stamp, now)
            if record.offset == 0:
                conn.send(("warm", now - stamp))
            if len(first) > n:  # the warm-up record and the n of the run
                complete.set()

    tasks = [asyncio.create_task(drain(c)) for c in consumers]
    try:
        await complete.wait()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for consumer in consumers:
            await consumer.stop()
    conn.send(("done", [first[offset] for offset in sorted(first) if offset > 0], fetches))


def _time_fetches(consumer: Any, fetches: list[tuple[int, int]]) -> None:
    """Record (start, duration) of every Fetch round trip the consumer makes.

    Instrumentation only: the fetcher calls its client's ``send``, so wrapping that one method
    times each fetch (request written -> response parsed) without changing the fetch loop.
    """
    from aiokafka.protocol.fetch import FetchRequest

    client = consumer._client
    send = client.send

    async def timed_send(node_id: Any, request: Any, **kwargs: Any) -> Any:
        if not isinstance(request, FetchRequest):
            return await send(node_id, request, **kwargs)
        started = time.time_ns()
        try:
            return await send(node_id, request, **kwargs)
        finally:
            fetches.append((started, time.time_ns() - started))

    client.send = timed_send


# --- the producer side ----------------------------------------------------------------------


async def _wait_message(conn: Connection, within_s: float) -> Any:
    """The child's next message, or None if it sends none within ``within_s``."""
    ready = await asyncio.get_running_loop().run_in_executor(None, conn.poll, within_s)
    return conn.recv() if ready else None


async def run_config(
    bootstrap: str, broker_pid: int, config: ConsumerConfig, n: int, rate: float, idle_s: float,
    on_progress: Callable[[int], None],
) -> Result:  # fmt: skip
    from bus.kafka import ensure_topics, start_producer

    result = Result(config)
    topic = f"bench.hop.{uuid.uuid4().hex[:8]}"
    await ensure_topics(bootstrap, (topic,))
    producer = await start_producer(bootstrap, "bench-hop")
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(
        target=consumer_main, args=(bootstrap, topic, dict(config.options), n, child), daemon=True
    )
    process.start()
    try:
        started = await _wait_message(parent, 30.0)
        if started is None:
            result.notes.append("consumer did not start")
            return result
        await producer.send_and_wait(topic, STAMP.pack(time.time_ns()))
        warm = await _wait_message(parent, WARM_TIMEOUT_S)
        idle_start = time.time_ns()
        cpu0 = cpu_seconds(broker_pid), cpu_seconds(process.pid or 0)
        await asyncio.sleep(idle_s)  # the measured idle window: nothing is produced
        cpu1 = cpu_seconds(broker_pid), cpu_seconds(process.pid or 0)
        idle_end = time.time_ns()
        result.idle_cpu_broker = (cpu1[0] - cpu0[0]) / idle_s
        result.idle_cpu_consumer = (cpu1[1] - cpu0[1]) / idle_s
        if warm is None:
            # Still worth the idle CPU figures: a consumer that receives nothing may be spinning.
            result.notes.append(f"delivered nothing in {WARM_TIMEOUT_S:g} s")
            result.missing = n
            return result

        loop = asyncio.get_running_loop()
        acks: list[int] = []
        acked_at: dict[int, int] = {}
        start = loop.time()
        for i in range(n):
            delay = start + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            stamp = time.time_ns()
            await producer.send_and_wait(topic, STAMP.pack(stamp))
            done = time.time_ns()
            acks.append(done - stamp)
            acked_at[stamp] = done
            on_progress(i + 1)
        run_s = loop.time() - start
        done_msg = await _wait_message(parent, 30.0)
        cpu2 = cpu_seconds(broker_pid), cpu_seconds(process.pid or 0)
        result.run_cpu_broker = (cpu2[0] - cpu1[0]) / run_s
        result.run_cpu_consumer = (cpu2[1] - cpu1[1]) / run_s
        result.ack = Figures.of(acks)
        if done_msg is None:
            result.notes.append("consumer did not finish")
            result.missing = n
            return result
        _, received, fetches = done_msg
        result.hop = Figures.of([now - stamp for stamp, now in received])
        result.ack_to_receive = Figures.of(
            [now - acked_at[stamp] for stamp, now in received if stamp in acked_at]
        )
        result.missing = n - len(received)
        idle = [dur for began, dur in fetches if idle_start <= began and began + dur <= idle_end]
        result.idle_fetch = Figures.of(idle)
        result.idle_fetches_per_s = len(idle) / ((idle_end - idle_start) / 1e9)
        return result
    finally:
        await producer.stop()
        process.join(timeout=5.0)
        if process.is_alive():
            process.kill()
            process.join()


# --- driver ---------------------------------------------------------------------------------


def run_all(args: argparse.Namespace) -> list[Result]:
    root = Path(__file__).resolve().parent.parent / "var"
    root.mkdir(exist_ok=True)
    var_dir = Path(tempfile.mkdtemp(prefix="bench-", dir=root))
    settings = FloorSettings.on_free_ports(var_dir)
    configs = [c for c in CONFIGS if not args.only or c.name in args.only]
    results: list[Result] = []
    supervisor = Supervisor(settings.log_dir)
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=False,
    ) as progress:  # fmt: skip
        setup = progress.add_task("starting kafka (tansu)", total=None)
        try:
            broker = supervisor.start(services.kafka_spec(settings))
            progress.update(setup, description="kafka ready", total=1, completed=1)
            for config in configs:
                task = progress.add_task(f"{config.name} @ {args.rate:g}/s", total=args.n)
                results.append(
                    asyncio.run(
                        run_config(
                            settings.kafka, broker.pid, config, args.n, args.rate, args.idle,
                            lambda done, task=task: progress.update(task, completed=done),  # type: ignore[misc]
                        )
                    )
                )  # fmt: skip
        finally:
            supervisor.stop_all()
            shutil.rmtree(var_dir, ignore_errors=True)
    return results


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def report(results: Sequence[Result], args: argparse.Namespace) -> None:
    table = Table(
        title=f"produce -> consume on Tansu: {args.n} records at {args.rate:g}/s per configuration "
        "(ms: p50 / p99 / max)",
        title_justify="left",
    )
    for col in (
        "consumer", "send -> ack", "produce -> receive", "ack -> receive", "idle fetch round trip",
        "idle fetch/s", "idle CPU broker", "idle CPU consumer", "run CPU broker", "run CPU consumer",
    ):  # fmt: skip
        table.add_column(col, justify="left" if col == "consumer" else "right")
    for r in results:

        def trio(f: Figures | None) -> str:
            return "-" if f is None or not f.n else f.cells()

        table.add_row(
            r.config.name + ("".join(f"\n[yellow]{note}[/]" for note in r.notes)),
            trio(r.ack), trio(r.hop), trio(r.ack_to_receive), trio(r.idle_fetch),
            "-" if r.idle_fetches_per_s is None else f"{r.idle_fetches_per_s:,.0f}",
            _pct(r.idle_cpu_broker), _pct(r.idle_cpu_consumer),
            _pct(r.run_cpu_broker), _pct(r.run_cpu_consumer),
        )  # fmt: skip
    console.print(table)
    console.print("CPU: share of one core (CPU seconds / wall seconds) over the idle window and the run")
    for r in results:
        if r.missing:
            console.print(f"  [yellow]{r.config.name}: {r.missing} of {args.n} records not received[/]")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.kafka_hop", description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=400, help="records per configuration (default 400)")
    parser.add_argument("--rate", type=float, default=40.0, help="records/s (default 40)")
    parser.add_argument("--idle", type=float, default=3.0, help="idle window, s (default 3)")
    parser.add_argument(
        "--only", action="append", choices=[c.name for c in CONFIGS], help="run only these configurations"
    )
    args = parser.parse_args(argv)
    if args.n <= 0 or args.rate <= 0 or args.idle <= 0:
        parser.error("--n, --rate and --idle must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    # Tansu refuses idempotent producer ids; the fallback's warnings are expected here.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    logging.getLogger("bus.kafka").setLevel(logging.ERROR)
    started = time.monotonic()
    results = run_all(args)
    load1, load5, _ = os.getloadavg()
    console.print(
        f"on {os.cpu_count()} CPUs, load average {load1:.1f} (5 min {load5:.1f}); "
        "figures on a shared machine carry its noise"
    )
    report(results, args)
    console.print(f"done in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
