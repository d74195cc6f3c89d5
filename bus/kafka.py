"""Every producer the floor owns is made here, so none can forget durability or add latency.

aiokafka defaults to ``acks=1`` without idempotence and may batch; the floor wants each record
on every in-sync replica, exactly once per producer session, and sent at once (``linger_ms=0``)
unless its process asks for a short linger (the hot path's publishing of order events, depth
and trades: ``FLOOR_HOTPATH_PUBLISH_LINGER_MS``).

The embedded Tansu 0.6 broker answers aiokafka's InitProducerId (v0, the only version aiokafka
speaks) with UNKNOWN_SERVER_ERROR, so against it :func:`start_producer` falls back to
``acks='all'`` without idempotence and says so in the log. Nothing is lost by that: a resent
command is refused by the ledger's unique command id / signature hash, and consumers dedupe
events by their ids.
"""

from __future__ import annotations

import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, UnknownError

from bus.log_restarts import GroupConsumer
from bus.topics import ALL_TOPICS

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_MS = 1000


def producer(
    bootstrap: str, client_id: str = "floor", *, idempotent: bool = True, linger_ms: int = 0
) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        acks="all",
        enable_idempotence=idempotent,
        linger_ms=linger_ms,
    )


async def start_producer(bootstrap: str, client_id: str = "floor", *, linger_ms: int = 0) -> AIOKafkaProducer:
    """A started producer: idempotent where the broker supports it, ``acks='all'`` always.
    ``linger_ms``: how long a record may wait for others to share its request (0: none)."""
    first = producer(bootstrap, client_id, linger_ms=linger_ms)
    try:
        await first.start()
        return first
    except UnknownError:
        await first.stop()
    log.warning(
        "broker %s refused an idempotent producer id; producing with acks=all, no idempotence "
        "(consumers and the ledger dedupe)",
        bootstrap,
    )
    fallback = producer(bootstrap, client_id, idempotent=False, linger_ms=linger_ms)
    await fallback.start()
    return fallback


def consumer(
    bootstrap: str,
    *topics: str,
    group_id: str | None,
    from_start: bool = True,
    auto_commit: bool = True,
    fetch_max_wait_ms: int = 500,
) -> AIOKafkaConsumer:
    """A consumer of the floor's topics.

    ``fetch_max_wait_ms`` bounds how long the broker may hold a fetch open waiting for data.
    Tansu does not wake a waiting fetch when a record is produced: it reads the log when the
    fetch arrives and again as the wait runs out, so a record produced meanwhile waits up to
    the whole wait. A latency-critical consumer (the hot path) passes a few milliseconds and
    accepts the idle fetches that costs (aiokafka sends the next fetch as soon as an empty one
    returns, with no backoff). It must be at least 1: Tansu answers a 0 ms fetch at once
    without reading the log, so such a consumer spins and receives nothing.

    With a ``group_id`` it is a :class:`~bus.log_restarts.GroupConsumer`: after a broker
    restart that lost the log it reads the new log from its beginning.
    """
    if fetch_max_wait_ms < 1:
        raise ValueError(f"fetch_max_wait_ms must be at least 1 ms, not {fetch_max_wait_ms}")
    options: dict[str, Any] = dict(
        bootstrap_servers=bootstrap,
        group_id=group_id,
        auto_offset_reset="earliest" if from_start else "latest",
        enable_auto_commit=auto_commit and group_id is not None,
        fetch_max_wait_ms=fetch_max_wait_ms,
    )
    if group_id is None:
        return AIOKafkaConsumer(*topics, **options)
    # A heartbeat a second (aiokafka's default is 3 s): a member learns within a second that
    # a restarted broker no longer knows it, and rejoins.
    options["heartbeat_interval_ms"] = HEARTBEAT_INTERVAL_MS
    # In a group: it must not resume a restarted broker's new log at an old log's offset.
    return GroupConsumer(*topics, **options)


async def ensure_topics(bootstrap: str, topics: tuple[str, ...] = ALL_TOPICS, partitions: int = 1) -> None:
    """Create the floor's topics if they are missing (idempotent)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(t, num_partitions=partitions, replication_factor=1) for t in topics if t not in existing
        ]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()
