"""Producing ``orders.events`` records without making the next command wait for Kafka.

:class:`OrderEventPublisher` is the hot path's way: records are handed over without an await
and delivered in the background, in the order they were handed over, each acknowledged by the
broker (``acks=all``) before it counts as published; a failed delivery is sent again (with the
records behind it, one at a time) until the broker takes it. Consumers dedupe on ``event_id``, so a record the
broker took though its acknowledgement was lost is harmless when sent again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from bus.topics import ORDERS_EVENTS
from hotpath.ports import EventProducer
from hotpath.retries import Backoff, FailingStreak, RecordOps
from trading.order_events import OrderEvent, encode

log = logging.getLogger(__name__)

MAX_BATCH = 500
"""Records sent before their acknowledgements are awaited (the producer pipelines them)."""
PUBLISH_BACKOFF = Backoff(first_s=0.05, max_s=2.0, timeout_s=10.0)
PUBLISH_AREA = "order_events.publish"
PUBLISH_ADVICE = (
    "Kafka is not acknowledging orders.events records; they are kept in memory and sent again "
    "in order until it does: check the broker (KAFKA_BOOTSTRAP) and its topic"
)


async def publish_order_event(producer: EventProducer, event: OrderEvent) -> None:
    """Enqueue without waiting for the broker's ack: the event is already in the ledger, and the
    next command must not wait for Kafka. Delivery failures are logged by the callback.
    (The hot path's own records go through :class:`OrderEventPublisher`, which retries.)"""
    future = await producer.send(ORDERS_EVENTS, encode(event), key=event.key)
    if hasattr(future, "add_done_callback"):
        future.add_done_callback(_log_failed_delivery)


def _log_failed_delivery(future: object) -> None:
    exc = future.exception() if hasattr(future, "exception") and not future.cancelled() else None  # type: ignore[attr-defined]
    if exc is not None:
        log.error("orders.events record not delivered: %s", exc)


class OrderEventPublisher:
    """Delivers ``orders.events`` records in the background, acknowledged, retried, in order."""

    def __init__(
        self,
        producer: EventProducer,
        record_ops: RecordOps,
        backoff: Backoff = PUBLISH_BACKOFF,
        headers_for: Callable[[OrderEvent], list[tuple[str, bytes]]] | None = None,
    ) -> None:
        self._producer = producer
        self._headers_for = headers_for
        """The Kafka headers of a record: its command's trace context (None: no headers)."""
        self._backoff = backoff
        self._queue: asyncio.Queue[OrderEvent] = asyncio.Queue()
        self._streak = FailingStreak(PUBLISH_AREA, record_ops, backoff, PUBLISH_ADVICE)
        self.delivered = 0
        """Records the broker acknowledged (for tests and stats)."""

    def put(self, record: OrderEvent) -> None:
        """Queue ``record`` behind the ones already handed over (no await, never refused)."""
        self._queue.put_nowait(record)

    @property
    def waiting(self) -> int:
        return self._queue.qsize()

    async def drained(self) -> None:
        """Every record handed over so far acknowledged by the broker."""
        await self._queue.join()

    async def run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._deliver(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _deliver(self, batch: list[OrderEvent]) -> None:
        """Send ``batch`` until every record is acknowledged, pipelined while all goes well.

        A failure sends the failed record and every one behind it again, one at a time, each
        acknowledged before the next, so from the resend on each order's records keep their
        order. Records already in flight behind the failed one may have reached the topic
        before its resend; consumers dedupe on ``event_id`` and the state rows, written in
        order, are the authority."""
        pending = batch
        delay = self._backoff.first_s
        careful = False
        while pending:
            chunk = pending[:1] if careful else pending
            acked = 0
            try:
                async with asyncio.timeout(self._backoff.timeout_s):
                    futures = [await self._send(record) for record in chunk]
                    for future in futures:
                        # Shielded: a timeout gives up the wait, not the producer's delivery.
                        await asyncio.shield(future)
                        acked += 1
            except Exception as exc:
                self.delivered += acked
                pending = pending[acked:]
                careful = True
                head = pending[0]
                self._streak.failed(
                    exc, {"command_id": head.command_id, "kind": head.kind.value, "waiting": len(pending)}
                )
                await asyncio.sleep(delay)
                delay = self._backoff.next(delay)
                continue
            self.delivered += acked
            pending = pending[acked:]
        self._streak.succeeded({"command_id": batch[-1].command_id, "records": len(batch)})

    async def _send(self, record: OrderEvent) -> asyncio.Future[Any]:
        """Hand ``record`` to the producer; the future resolves with the broker's acknowledgement."""
        headers = self._headers_for(record) if self._headers_for is not None else None
        if headers:
            sent = await self._producer.send(ORDERS_EVENTS, encode(record), key=record.key, headers=headers)
        else:
            sent = await self._producer.send(ORDERS_EVENTS, encode(record), key=record.key)
        if isinstance(sent, asyncio.Future):
            # Failures are retrieved here even when an earlier record's failure ends the wait.
            sent.add_done_callback(_retrieved)
            return sent
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        done.set_result(sent)  # a producer that acknowledges on send
        return done


def _retrieved(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
