"""The hot path's short fetch wait works on the embedded broker, and a wait Tansu cannot serve
is refused up front."""

from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError

from bus import kafka
from config.processes import child_env
from config.settings import (
    EMBEDDED_API_FETCH_WAIT_MS,
    EMBEDDED_FETCH_WAIT_MS,
    EXTERNAL_FETCH_WAIT_MS,
    FloorSettings,
)


def test_a_zero_fetch_wait_is_refused() -> None:
    # Tansu answers a 0 ms fetch at once without reading the log: such a consumer would spin
    # and never receive a record, so it must not be constructible.
    with pytest.raises(ValueError, match="fetch_max_wait_ms"):
        kafka.consumer("127.0.0.1:1", "t", group_id=None, fetch_max_wait_ms=0)


async def test_the_hot_paths_fetch_wait_delivers_records_produced_while_it_polls(
    kafka_bootstrap: str,
) -> None:
    topic = f"test.fetchwait.{uuid.uuid4().hex[:8]}"
    await kafka.ensure_topics(kafka_bootstrap, (topic,))
    consumer = kafka.consumer(kafka_bootstrap, topic, group_id=None, fetch_max_wait_ms=EMBEDDED_FETCH_WAIT_MS)
    producer = await kafka.start_producer(kafka_bootstrap, "test-fetchwait")
    await consumer.start()
    try:
        # Nothing to read yet: the consumer is polling with the short wait when these arrive.
        assert await consumer.getmany(timeout_ms=50) == {}
        payloads = [f"cmd-{i}".encode() for i in range(3)]
        got: list[bytes] = []
        for payload in payloads:
            await producer.send_and_wait(topic, payload)
            batch = await consumer.getmany(timeout_ms=5000)
            assert batch, f"{payload!r} not received within 5 s"
            got.extend(r.value for records in batch.values() for r in records if r.value is not None)
        assert got == payloads
    finally:
        await producer.stop()
        await consumer.stop()


def test_the_hot_path_waits_briefly_on_the_embedded_broker_only(tmp_path: object) -> None:
    # Explicit values: a developer's own KAFKA_BOOTSTRAP or FLOOR_KAFKA_FETCH_WAIT_MS stay out.
    embedded = FloorSettings(var_dir=tmp_path, kafka_bootstrap=None, kafka_fetch_wait_ms=None)
    external = FloorSettings(
        var_dir=tmp_path, kafka_bootstrap="kafka.internal:9092", kafka_fetch_wait_ms=None
    )
    assert embedded.command_fetch_wait_ms == EMBEDDED_FETCH_WAIT_MS
    assert external.command_fetch_wait_ms == EXTERNAL_FETCH_WAIT_MS
    chosen = FloorSettings(var_dir=tmp_path, kafka_bootstrap="kafka.internal:9092", kafka_fetch_wait_ms=20)
    assert chosen.command_fetch_wait_ms == 20
    # A child always gets KAFKA_BOOTSTRAP, so the parent's choice travels with it.
    for settings in (embedded, external, chosen):
        env = child_env(settings)
        assert env["KAFKA_BOOTSTRAP"] == settings.kafka
        assert env["FLOOR_KAFKA_FETCH_WAIT_MS"] == str(settings.command_fetch_wait_ms)


def test_the_apis_feeds_wait_longer_than_the_hot_path_on_the_embedded_broker(tmp_path: object) -> None:
    embedded = FloorSettings(
        var_dir=tmp_path, kafka_bootstrap=None, api_fetch_wait_ms=None, kafka_fetch_wait_ms=None
    )
    external = FloorSettings(var_dir=tmp_path, kafka_bootstrap="kafka.internal:9092", api_fetch_wait_ms=None)
    chosen = FloorSettings(var_dir=tmp_path, kafka_bootstrap=None, api_fetch_wait_ms=7)
    # The API is not the order path: polling every 5 ms it kept Tansu and itself busy for nothing.
    assert embedded.api_feed_fetch_wait_ms == EMBEDDED_API_FETCH_WAIT_MS > embedded.command_fetch_wait_ms
    assert external.api_feed_fetch_wait_ms == EXTERNAL_FETCH_WAIT_MS
    assert chosen.api_feed_fetch_wait_ms == 7
    for settings in (embedded, external, chosen):
        env = child_env(settings)
        child = FloorSettings(
            var_dir=tmp_path,
            kafka_bootstrap=env["KAFKA_BOOTSTRAP"],
            api_fetch_wait_ms=int(env["FLOOR_API_FETCH_WAIT_MS"] or 0),
        )
        assert child.api_feed_fetch_wait_ms == settings.api_feed_fetch_wait_ms


def test_a_fetch_wait_below_one_ms_is_refused_when_the_floor_reads_its_settings(tmp_path: object) -> None:
    # Refused in the process that reads the setting (floor up), not later in the hot path child.
    with pytest.raises(ValidationError, match="kafka_fetch_wait_ms"):
        FloorSettings(var_dir=tmp_path, kafka_fetch_wait_ms=0)
