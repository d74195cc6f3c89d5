"""The baseline: a bare ib_async script placing the benchmark's orders with no checks at all.

No signature, no sizing, no risk, no ledger, no Kafka: ``IB.placeOrder`` at the same steady
rate, on the same gateway, for the same orders. What it measures is the floor of the figure the
hot path reports: from the moment the script decides to place an order to the moment its bytes
are written to the socket (``time.perf_counter_ns()`` right after ``transport.write``).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from ib_async import IB, Order, Stock

from brokers.ib_internals import is_throttling

_PLACE_ORDER = b"3\x00"


@dataclass(frozen=True)
class BenchOrder:
    """One order of the benchmark, shared by the baseline and the hot-path run."""

    symbol: str
    side: str
    quantity: int
    limit_price: Decimal


async def run_baseline(
    host: str,
    port: int,
    client_id: int,
    account: str,
    orders: Sequence[BenchOrder],
    rate: float,
    *,
    throttle: bool = True,
    on_progress: Callable[[int], None] = lambda _: None,
) -> list[int]:
    """Place ``orders`` at ``rate`` per second; return decide-to-socket-write latencies (ns).

    With ``throttle`` ib_async's own 45 msg/s limit stays on (its default); the latency then
    includes any time an order waits in ib_async's queue, exactly as a script would see it.
    """
    ib = IB()
    if not throttle:
        ib.client.MaxRequests = 0
    await ib.connectAsync(host, port, client_id, timeout=10)
    # ib_async's startup requests count against its 45 msg/s throttle; start with a clear window
    # so the first orders are not queued behind them.
    await asyncio.sleep(ib.client.RequestsInterval)
    conn = ib.client.conn
    pending: deque[int] = deque()
    latencies: list[int] = []
    write = conn.sendMsg

    def stamped(msg: bytes) -> None:
        write(msg)
        if msg[4:6] == _PLACE_ORDER and pending:
            latencies.append(time.perf_counter_ns() - pending.popleft())

    conn.sendMsg = stamped  # type: ignore[method-assign]
    contracts = {o.symbol: Stock(o.symbol, "SMART", "USD") for o in orders}
    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        for i, spec in enumerate(orders):
            # Steady pacing: each order has its own due time, so a slow one does not shift the rest.
            delay = start + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            order = Order(
                action=spec.side,
                totalQuantity=spec.quantity,  # an int prints as "1"
                orderType="LMT",
                lmtPrice=spec.limit_price,
                account=account,
                orderRef=f"baseline-{i}",
            )
            pending.append(time.perf_counter_ns())
            ib.placeOrder(contracts[spec.symbol], order)
            on_progress(i + 1)
        if pending and is_throttling(ib.client):
            # Orders still queued inside ib_async's throttle leave on its own timer.
            await asyncio.wait_for(ib.client.throttleEnd, timeout=len(pending) + 10)
        ib.reqGlobalCancel()
        await ib.reqCurrentTimeAsync()  # a round trip: the cancel was read before we hang up
    finally:
        ib.disconnect()
    return latencies


_FLOOR_TABLE = (
    "CREATE TABLE IF NOT EXISTS bench_commit_floor ("
    " id bigserial PRIMARY KEY, command_id text NOT NULL, payload bytea NOT NULL,"
    " signature bytea NOT NULL, recorded_at timestamptz NOT NULL DEFAULT now())"
)


async def run_commit_floor(
    dsn: str,
    n: int,
    rate: float,
    *,
    on_progress: Callable[[int], None] = lambda _: None,
) -> list[int]:
    """The durable write on its own: ``n`` single-row INSERTs, each its own committed
    transaction, at ``rate`` per second on one connection to the same Postgres; return each
    call's latency (ns).

    The hot path's figure includes one such commit per order (the write-ahead ledger append),
    and on a machine whose disk and CPUs sleep between orders a paced commit costs far more
    than a back-to-back one, so this is measured at the run's own rate, in the same run. A
    row of a ledger entry's size (a 400-byte payload, a 64-byte signature) in a table with
    no triggers, no chain and one index: the least any durable append can cost here.
    """
    import asyncpg

    conn = await asyncpg.connect(dsn)
    latencies: list[int] = []
    try:
        await conn.execute(_FLOOR_TABLE)
        insert = await conn.prepare(
            "INSERT INTO bench_commit_floor (command_id, payload, signature) VALUES ($1, $2, $3)"
        )
        payload, signature = bytes(400), bytes(64)
        for i in range(5):  # warm the prepared statement and the session
            await insert.fetch(f"warm-{i}", payload, signature)
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i in range(n):
            delay = start + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            t0 = time.perf_counter_ns()
            await insert.fetch(f"floor-{i}", payload, signature)
            latencies.append(time.perf_counter_ns() - t0)
            on_progress(i + 1)
        await conn.execute("DROP TABLE bench_commit_floor")
    finally:
        await conn.close()
    return latencies


FLUSH_BYTES = 8192
"""One Postgres WAL page: what a single-row commit writes and flushes at least."""


def run_disk_flush(
    directory: Path,
    n: int,
    rate: float,
    *,
    on_progress: Callable[[int], None] = lambda _: None,
) -> list[int]:
    """The disk on its own: ``n`` writes of one WAL page, each followed by ``fdatasync``, at
    ``rate`` per second, to a scratch file in ``directory`` (beside the ledger's data directory:
    the same filesystem and device); return each write+flush latency (ns).

    A durable commit cannot be faster than this: it is the part of the ledger append that no
    code of the floor's or Postgres's can remove. The file is removed afterwards.
    """
    path = directory / f"bench-flush-{os.getpid()}.bin"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    latencies: list[int] = []
    try:
        pages = 128
        os.ftruncate(fd, pages * FLUSH_BYTES)
        os.fsync(fd)
        page = bytes(FLUSH_BYTES)
        start = time.monotonic()
        for i in range(n):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            t0 = time.perf_counter_ns()
            os.pwrite(fd, page, (i % pages) * FLUSH_BYTES)
            os.fdatasync(fd)
            latencies.append(time.perf_counter_ns() - t0)
            on_progress(i + 1)
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)
    return latencies
