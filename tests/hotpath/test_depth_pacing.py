"""A book that changes faster than anyone can show it grows ``market.depth`` at a bounded rate:
at most one record a symbol every ``interval_s`` (``FLOOR_DEPTH_INTERVAL_MS``), the newest book
each time and the last one never lost. Real Kafka (the embedded Tansu, whose fetches slow down
with every record it holds: unpaced, the API's depth feed fell tens of seconds behind within a
minute; at 50 books a second per symbol, after about four)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from brokers.base import DepthLevel, DepthSnapshot
from bus.kafka import start_producer
from bus.topics import MARKET_DEPTH
from config.processes import child_env
from config.settings import EMBEDDED_DEPTH_INTERVAL_MS, EXTERNAL_DEPTH_INTERVAL_MS, FloorSettings
from hotpath.depth import MIN_INTERVAL_S, DepthPublisher

CHANGES_PER_S = 1000
SECONDS = 2.0


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    p = await start_producer(kafka_bootstrap, "test-depth-pacing")
    yield p
    await p.stop()


async def at_end(bootstrap: str) -> AIOKafkaConsumer:
    """A consumer of ``market.depth`` from its end now."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    await consumer.topics()
    partitions = [TopicPartition(MARKET_DEPTH, p) for p in consumer.partitions_for_topic(MARKET_DEPTH) or ()]
    consumer.assign(partitions)
    for tp, end in (await consumer.end_offsets(partitions)).items():
        consumer.seek(tp, end)
    return consumer


def book(symbol: str, n: int) -> DepthSnapshot:
    """State ``n`` of the book: its best bid's size is ``n``."""
    return DepthSnapshot(
        symbol=symbol,
        bids=(DepthLevel(Decimal("100.00"), n), DepthLevel(Decimal("99.99"), 300)),
        asks=(DepthLevel(Decimal("100.01"), 200),),
        time=datetime.now(UTC),
        recv_ns=time.monotonic_ns(),
    )


@pytest.mark.parametrize("interval_s", [MIN_INTERVAL_S, EMBEDDED_DEPTH_INTERVAL_MS / 1000])
async def test_a_book_changing_1000_times_a_second_is_published_paced_and_its_last_state_is_not_lost(
    kafka_bootstrap: str, producer: AIOKafkaProducer, interval_s: float
) -> None:
    symbol = f"PACE{uuid.uuid4().hex[:6].upper()}"
    consumer = await at_end(kafka_bootstrap)
    publisher = DepthPublisher(producer, MARKET_DEPTH, interval_s)
    sender = asyncio.create_task(publisher.run())
    try:
        n = 0
        began = time.monotonic()
        while (gone := time.monotonic() - began) < SECONDS:
            for _ in range(int(gone * CHANGES_PER_S) - n):
                n += 1
                publisher.on_depth(book(symbol, n))
            await asyncio.sleep(0.001)
        last = n
        sizes: list[int] = []
        deadline = time.monotonic() + 10
        while (not sizes or sizes[-1] != last) and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    if record.key == symbol.encode() and record.value is not None:
                        sizes.append(json.loads(record.value)["bids"][0]["size"])
    finally:
        sender.cancel()
        await consumer.stop()
    assert last >= SECONDS * CHANGES_PER_S * 0.9
    assert sizes and sizes[-1] == last, "the newest book must always reach the topic"
    assert sizes == sorted(sizes), "newer books only, in order"
    # One record a symbol every interval_s at most (a little slack for the first and last),
    # not one per change: the topic's growth is bounded whatever the venue's rate.
    most = SECONDS / interval_s + 5
    assert len(sizes) <= most, f"{len(sizes)} records for {last} changes in {SECONDS} s (at most {most:.0f})"
    assert len(sizes) >= most / 4, f"only {len(sizes)} records: the book must keep flowing"


async def test_a_gap_in_the_brokers_feed_is_never_conflated_away(
    kafka_bootstrap: str, producer: AIOKafkaProducer
) -> None:
    symbol = f"GAP{uuid.uuid4().hex[:6].upper()}"
    consumer = await at_end(kafka_bootstrap)
    publisher = DepthPublisher(producer, MARKET_DEPTH)
    sender = asyncio.create_task(publisher.run())
    try:
        records: list[dict[str, Any]] = []

        async def read_until(size: int) -> None:
            deadline = time.monotonic() + 10
            while (not records or records[-1]["bids"][0]["size"] != size) and time.monotonic() < deadline:
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    records.extend(json.loads(r.value) for r in batch if r.key == symbol.encode() and r.value)

        publisher.on_depth(book(symbol, 1))
        await read_until(1)
        # A failover: the first book after it is marked, and newer books replace it at once.
        publisher.on_depth(dataclasses.replace(book(symbol, 2), gap=True))
        for n in range(3, 50):
            publisher.on_depth(book(symbol, n))
        await read_until(49)
    finally:
        sender.cancel()
        await consumer.stop()
    assert "gap" not in records[0] and records[-1]["bids"][0]["size"] == 49
    gaps = [r for r in records if r.get("gap") is True]
    assert len(gaps) == 1 and gaps[0] is records[1], records


def test_the_embedded_broker_gets_a_fifth_of_a_real_kafkas_depth_rate(tmp_path: object) -> None:
    # Explicit values: a developer's own KAFKA_BOOTSTRAP or FLOOR_DEPTH_INTERVAL_MS stay out.
    embedded = FloorSettings(var_dir=tmp_path, kafka_bootstrap=None, depth_interval_ms=None)
    external = FloorSettings(var_dir=tmp_path, kafka_bootstrap="kafka.internal:9092", depth_interval_ms=None)
    chosen = FloorSettings(var_dir=tmp_path, kafka_bootstrap=None, depth_interval_ms=40)
    assert embedded.depth_publish_interval_ms == EMBEDDED_DEPTH_INTERVAL_MS == 100
    assert external.depth_publish_interval_ms == EXTERNAL_DEPTH_INTERVAL_MS == MIN_INTERVAL_S * 1000
    assert chosen.depth_publish_interval_ms == 40
    # The hot path child always gets KAFKA_BOOTSTRAP, so the parent's choice travels with it and
    # is what the child reads back.
    for settings in (embedded, external, chosen):
        env = child_env(settings)
        assert env["FLOOR_DEPTH_INTERVAL_MS"] == str(settings.depth_publish_interval_ms)
        child = FloorSettings(
            var_dir=tmp_path,
            kafka_bootstrap=env["KAFKA_BOOTSTRAP"],
            depth_interval_ms=int(env["FLOOR_DEPTH_INTERVAL_MS"] or 0),
        )
        assert child.depth_publish_interval_ms == settings.depth_publish_interval_ms
