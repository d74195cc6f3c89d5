from __future__ import annotations

import uuid

from aiokafka.admin import AIOKafkaAdminClient

from bus import kafka
from bus.topics import ALL_TOPICS


async def test_floor_topics_exist(kafka_bootstrap: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        assert set(ALL_TOPICS) <= set(await admin.list_topics())
    finally:
        await admin.close()


async def test_produced_record_reaches_a_consumer_group(kafka_bootstrap: str) -> None:
    topic = f"test.roundtrip.{uuid.uuid4().hex[:8]}"
    await kafka.ensure_topics(kafka_bootstrap, (topic,))
    producer = await kafka.start_producer(kafka_bootstrap)
    try:
        payloads = [f"cmd-{i}".encode() for i in range(5)]
        for p in payloads:
            meta = await producer.send_and_wait(topic, p, key=b"ACC1/AAPL")
            assert meta.topic == topic
    finally:
        await producer.stop()

    consumer = kafka.consumer(kafka_bootstrap, topic, group_id=f"g-{uuid.uuid4().hex[:6]}")
    await consumer.start()
    try:
        got: list[bytes] = []
        while len(got) < len(payloads):
            batch = await consumer.getmany(timeout_ms=5000)
            assert batch, "no records within 5 s"
            for records in batch.values():
                got.extend(r.value for r in records if r.value is not None)
        assert got == payloads
        await consumer.commit()
        committed = await consumer.committed(next(iter(consumer.assignment())))
        assert committed == len(payloads)
    finally:
        await consumer.stop()


async def test_floor_producer_asks_for_idempotence_durability_and_no_batching() -> None:
    # Checked on the real client object: these defaults are the ones aiokafka gets wrong for us.
    producer = kafka.producer("127.0.0.1:1")
    try:
        assert producer._sender._acks == -1  # acks='all'
        assert producer._txn_manager is not None, "idempotence must be on"
        assert producer._message_accumulator._linger_time == 0
    finally:
        await producer.stop()


async def test_started_producer_is_durable_and_unbatched_on_the_embedded_broker(
    kafka_bootstrap: str,
) -> None:
    producer = await kafka.start_producer(kafka_bootstrap)
    try:
        assert producer._sender._acks == -1
        assert producer._message_accumulator._linger_time == 0
        await producer.send_and_wait("agent.commands", b"ping", key=b"ACC/SYM")
    finally:
        await producer.stop()
