"""Producing ``orders.events`` records without making the next command wait for Kafka."""

from __future__ import annotations

import logging

from bus.topics import ORDERS_EVENTS
from hotpath.ports import EventProducer
from trading.order_events import OrderEvent, encode

log = logging.getLogger(__name__)


async def publish_order_event(producer: EventProducer, event: OrderEvent) -> None:
    """Enqueue without waiting for the broker's ack: the event is already in the ledger, and the
    next command must not wait for Kafka. Delivery failures are logged by the callback."""
    future = await producer.send(ORDERS_EVENTS, encode(event), key=event.key)
    if hasattr(future, "add_done_callback"):
        future.add_done_callback(_log_failed_delivery)


def _log_failed_delivery(future: object) -> None:
    exc = future.exception() if hasattr(future, "exception") and not future.cancelled() else None  # type: ignore[attr-defined]
    if exc is not None:
        log.error("orders.events record not delivered: %s", exc)
