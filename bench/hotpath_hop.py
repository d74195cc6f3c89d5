"""The Kafka hop's baseline in the same run: a bare aiokafka consumer reading the very
``agent.commands`` records the hot path reads, with the hot path's fetch wait.

It runs in a child process (its own event loop and CPU account, as the hot path has), reads
every partition from the end, and stamps each record's receipt with ``time.time_ns()`` (the
clock the producer's stamp is on). produce -> this receipt is what Kafka alone costs at that
moment on that machine; produce -> the hot path's intake minus it is how long records waited
inside the hot path (its consumer's buffer, behind commands still being decided).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from multiprocessing.connection import Connection
from typing import Any

READY_TIMEOUT_S = 30.0
RESULT_TIMEOUT_S = 30.0


def consumer_main(bootstrap: str, topic: str, fetch_wait_ms: int, n: int, conn: Connection) -> None:
    asyncio.run(_consume(bootstrap, topic, fetch_wait_ms, n, conn))


async def _consume(bootstrap: str, topic: str, fetch_wait_ms: int, n: int, conn: Connection) -> None:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=fetch_wait_ms,
    )
    await consumer.start()
    await consumer.topics()  # loads the topic's partitions
    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
    consumer.assign(partitions)
    await consumer.seek_to_end(*partitions)
    # Resolved now, so a record produced after "ready" is read, and none before it.
    for tp in partitions:
        await consumer.position(tp)
    conn.send("ready")
    received: dict[tuple[int, int], int] = {}
    loop = asyncio.get_running_loop()

    async def read() -> None:
        async for record in consumer:
            received[(record.partition, record.offset)] = time.time_ns()
            if len(received) >= n:
                return

    async def told_to_stop() -> None:
        while not await loop.run_in_executor(None, conn.poll, 0.5):
            pass

    reader, stopper = asyncio.create_task(read()), asyncio.create_task(told_to_stop())
    try:
        await asyncio.wait({reader, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await consumer.stop()
    conn.send(received)
    if not stopper.done():
        await stopper  # the parent's "stop" (sent once it has what it produced)


class BareConsumer:
    """The child process, started before the first record is produced."""

    def __init__(self, bootstrap: str, topic: str, fetch_wait_ms: int, n: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(
            target=consumer_main, args=(bootstrap, topic, fetch_wait_ms, n, child), daemon=True
        )

    async def start(self) -> None:
        self._process.start()
        if await _message(self._conn, READY_TIMEOUT_S) != "ready":
            raise RuntimeError("the bare consumer did not start; see its output above")

    async def receipts(self) -> dict[tuple[int, int], int]:
        """(partition, offset) -> receipt stamp of every record it read (it stops now)."""
        try:
            self._conn.send("stop")
            result = await _message(self._conn, RESULT_TIMEOUT_S)
            return result if isinstance(result, dict) else {}
        finally:
            self.close()

    def close(self) -> None:
        self._process.join(timeout=5.0)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()


async def _message(conn: Connection, within_s: float) -> Any:
    ready = await asyncio.get_running_loop().run_in_executor(None, conn.poll, within_s)
    return conn.recv() if ready else None
