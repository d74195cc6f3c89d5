"""A group's offsets without the group's membership: every partition of a topic, assigned by
the consumer itself.

A consumer that joins a group waits for the group's rebalance before it reads anything, and a
member killed without leaving holds its partitions until its session times out (10-30 s on the
embedded Tansu), so a process restarted after ``kill -9`` would read nothing for that long.
When one process is the only reader of a topic under a group id, it needs no membership: it
assigns itself every partition the metadata lists, resumes each at the offset the group
committed (aiokafka fetches those for a manual assignment as for a joined one) and commits
under the same group id with no generation (-1), which Kafka and Tansu accept from a group
with no members. It reads within a metadata round trip of starting.

With no rebalance, nothing would notice partitions added to the topic, nor a broker restarted
without storage (positions past the new log's end, where the broker answers fetches with
nothing, or a refilled log read from an old log's offset): :meth:`AssignedConsumer._check`
looks for both whenever a poll finds nothing, and at least every ``BUSY_CHECK_S`` under a
steady stream, and reads those partitions from their new beginning.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from bus.log_reader import LogReader
from bus.log_restarts import LogFollower

log = logging.getLogger(__name__)

IDLE_POLL_MS = 1000
"""A poll that waited this long for nothing checks the log (a lost log is read nothing from)."""
CHECK_TIMEOUT_S = 3.0
"""A look at the log that takes longer (a broker restarting) is given up, and taken again later."""
BUSY_CHECK_S = 5.0
"""Under a steady stream, the log is checked no more often than this: the check is a metadata
and end-offsets round trip taken before the next record."""


Handed = tuple[int, bytes | None, int]
"""A record handed over: offset, value, timestamp."""


class AssignedConsumer(AIOKafkaConsumer):
    """Reads every partition of ``topics`` under ``group_id`` without joining the group.

    Only one process may read a topic this way under a group id: two would both read every
    record. Read it through ``getone`` or ``async for`` (both check the log as described)."""

    def __init__(self, *topics: str, **options: Any) -> None:
        if not options.get("group_id"):
            raise ValueError("an AssignedConsumer keeps its offsets under a group_id")
        super().__init__(**options)
        self._topics = tuple(topics)
        self._bootstrap = options["bootstrap_servers"]
        self._follower = LogFollower(self, self._topics)
        self._checked = time.monotonic()
        self._handed: dict[TopicPartition, Handed] = {}
        self._anchors: dict[TopicPartition, Handed] = {}
        self._first: dict[TopicPartition, Handed] = {}
        self._readers: dict[str, LogReader] = {}
        self.lost_logs = 0
        """Partitions found read from a lost log by their anchor record (since start)."""

    @property
    def restarts(self) -> int:
        """Lost logs found since start (a broker restart, as this consumer saw it)."""
        return self._follower.restarts + self.lost_logs

    async def start(self) -> None:
        await super().start()
        cluster = await self._client.fetch_all_metadata()
        partitions = [
            TopicPartition(topic, p)
            for topic in self._topics
            for p in sorted(cluster.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            # Not created yet: the first check assigns whatever partitions it finds then.
            log.warning("%s has no partitions yet; reading them once they exist", ", ".join(self._topics))
            return
        self.assign(partitions)

    async def stop(self) -> None:
        readers, self._readers = self._readers, {}
        for reader in readers.values():
            with contextlib.suppress(Exception):
                await reader.close()
        await super().stop()

    async def getone(self, *partitions: TopicPartition) -> Any:
        idle = False
        while True:
            now = time.monotonic()
            if idle or now - self._checked >= BUSY_CHECK_S:
                self._checked = now
                await self._check()
            if not self.assignment():
                # The topic did not exist yet: wait for the follower's next look.
                idle = True
                await asyncio.sleep(IDLE_POLL_MS / 1000)
                continue
            batch = await self.getmany(*partitions, timeout_ms=IDLE_POLL_MS, max_records=1)
            for records in batch.values():
                if records:
                    record = records[0]
                    tp = TopicPartition(record.topic, record.partition)
                    handed = (record.offset, record.value, record.timestamp)
                    self._handed[tp] = handed
                    self._first.setdefault(tp, handed)
                    return record
            idle = True

    async def _check(self) -> None:
        """Partitions added, logs lost: each read from its new beginning.

        The follower finds a lost log while this consumer's position is past the new log's end;
        but a log refilled quickly (the door publishing again what the broker lost, on top of
        the live stream) may have grown past it before anyone looked, and would be read from
        there, its first records skipped. So each check also looks for two records where they
        were: the last one handed over before the previous check and the first one since (the
        broker may have restarted before or after it). One not there (another record, or none):
        the log was lost, and the partition is read again from its beginning (the records read
        from the wrong place meanwhile come again; the ledger answers them as duplicates)."""
        try:
            realigned = await asyncio.wait_for(self._follower.check(), CHECK_TIMEOUT_S)
        except TimeoutError:
            log.warning(
                "no answer to a look at %s's log within %.0f s; looking again later",
                self._topics,
                CHECK_TIMEOUT_S,
            )
            return
        reset = set(realigned.lost) | set(realigned.added)
        lost: list[TopicPartition] = []
        looked = [*self._anchors.items(), *self._first.items()]
        for tp, (offset, value, timestamp) in looked:
            if tp in reset or tp in lost or tp not in self.assignment():
                continue
            reader = self._reader(tp.topic)
            try:
                same = await asyncio.wait_for(
                    reader.record_is(tp.partition, offset, value, timestamp), CHECK_TIMEOUT_S
                )
            except Exception as exc:
                # Not known now (the broker is down or coming back): the next check asks again,
                # with a reader of its own (this one's connection may be the dead broker's).
                self._readers.pop(tp.topic, None)
                with contextlib.suppress(Exception):
                    await reader.close()
                log.warning(
                    "could not look for %s[%d]@%d: %s: %s",
                    tp.topic,
                    tp.partition,
                    offset,
                    type(exc).__name__,
                    exc,
                )
                return
            if not same:
                lost.append(tp)
        if lost:
            self.lost_logs += len(lost)
            await self.seek_to_beginning(*lost)
            log.warning(
                "the broker lost the log of %s (a record read before is no longer where it was): "
                "reading the new log from its beginning",
                ", ".join(f"{tp.topic}[{tp.partition}]" for tp in lost),
            )
        for tp in (*reset, *lost):
            self._handed.pop(tp, None)
        self._anchors = dict(self._handed)
        self._first = {}

    def _reader(self, topic: str) -> LogReader:
        reader = self._readers.get(topic)
        if reader is None:
            reader = self._readers[topic] = LogReader(self._bootstrap, topic)
        return reader
