"""Asking the broker whether a record it acknowledged is still where it said.

A broker that keeps its log in memory (the embedded Tansu) loses it when it restarts, and the
new log's offsets start again at 0: an offset alone no longer names the same record. So the
question is asked of the record itself: is the value at ``partition``/``offset`` the one that
was written there?
"""

from __future__ import annotations

import time

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import OffsetOutOfRangeError

READ_TIMEOUT_MS = 2000


class LogUnanswered(TimeoutError):
    """The broker served no record of the partition at all within the read timeout: whether the
    record is there is not known (a busy broker or machine), so nobody may act as if it were lost."""


WHOLE_LOG_MAX_RECORDS = 100_000
""":meth:`LogReader.values` reads no more than this (then it answers None: not known)."""


class LogReader:
    """One topic's log, read by offset (its own consumer, no group, started on first use)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._consumer: AIOKafkaConsumer | None = None

    async def close(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await consumer.stop()

    async def _started(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self._bootstrap,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="none",
                fetch_max_wait_ms=50,
            )
            await consumer.start()
            self._consumer = consumer
        return self._consumer

    async def partitions(self) -> list[TopicPartition]:
        consumer = await self._started()
        await consumer.topics()  # fresh metadata: the partitions the topic has now
        return [
            TopicPartition(self._topic, p) for p in sorted(consumer.partitions_for_topic(self._topic) or ())
        ]

    async def holds(self, partition: int, offset: int, value: bytes) -> bool:
        """Whether the record at ``partition``/``offset`` is ``value``: False when the partition
        is gone, its log ends at or before ``offset``, another record sits there, or none is
        served there while the broker serves the partition's newest record. Raises when the broker
        cannot be asked, or serves nothing of the partition (:class:`LogUnanswered`)."""
        return await self.record_is(partition, offset, value, None)

    async def record_is(
        self, partition: int, offset: int, value: bytes | None, timestamp: int | None
    ) -> bool:
        """:meth:`holds`, and when ``timestamp`` is given, the record's timestamp is that too."""
        tp = TopicPartition(self._topic, partition)
        if tp not in await self.partitions():
            return False
        consumer = await self._started()
        ends = await consumer.end_offsets([tp])
        if ends[tp] <= offset:
            return False
        consumer.assign([tp])
        consumer.seek(tp, offset)
        try:
            batches = await consumer.getmany(tp, timeout_ms=READ_TIMEOUT_MS, max_records=1)
        except OffsetOutOfRangeError:
            return False
        records = batches.get(tp, [])
        if not records:
            # Below the end the broker reports, yet not served: Tansu counts a record written
            # into a topic that did not exist yet (right after a restart) and never serves it;
            # no consumer will read it either. But a broker (or a machine) too busy to answer
            # within the timeout serves nothing either, and taking that for a lost log rereads
            # the whole partition. So: lost only if the partition's newest record is served.
            consumer.seek(tp, ends[tp] - 1)
            try:
                newest = await consumer.getmany(tp, timeout_ms=READ_TIMEOUT_MS, max_records=1)
            except OffsetOutOfRangeError:
                return False
            if not newest.get(tp):
                raise LogUnanswered(
                    f"{tp.topic}[{partition}] served no record within {READ_TIMEOUT_MS} ms: "
                    f"not known whether @{offset} is still there"
                )
            return False
        record = records[0]
        same_time = timestamp is None or record.timestamp == timestamp
        return record.offset == offset and record.value == value and same_time

    async def values(self, timeout_s: float = 10.0) -> set[bytes] | None:
        """Every value the topic's log holds now (all partitions, start to end); None when it
        holds more than :data:`WHOLE_LOG_MAX_RECORDS` or could not be read within ``timeout_s``."""
        partitions = await self.partitions()
        if not partitions:
            return set()
        consumer = await self._started()
        starts = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
        if sum(ends[tp] - starts[tp] for tp in partitions) > WHOLE_LOG_MAX_RECORDS:
            return None
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, starts[tp])
        found: set[bytes] = set()
        left = {tp for tp in partitions if ends[tp] > starts[tp]}
        deadline = time.monotonic() + timeout_s
        while left:
            if time.monotonic() > deadline:
                return None
            batches = await consumer.getmany(*left, timeout_ms=READ_TIMEOUT_MS)
            for tp, records in batches.items():
                found.update(r.value for r in records if r.value is not None)
                if records and records[-1].offset + 1 >= ends[tp]:
                    left.discard(tp)
        return found
