"""Following a topic's log across a broker restart that lost it.

The embedded Tansu keeps its logs in memory: restarted, it comes back with no topic, no record
and no consumer group. Producers reconnect by themselves (aiokafka refreshes its metadata and
resends), and the first client that asks for a missing topic has it created again, with
Tansu's default partition count (4), not the floor's. A consumer in a group rejoins (the
broker no longer knows its member id) and, finding no committed offset, starts at the
beginning of the new log. A consumer that assigned its partitions itself (the API's hub) does
neither: it keeps fetching at its old position, beyond the new log's end, and Tansu answers
those fetches with nothing, not OFFSET_OUT_OF_RANGE, so it would wait for ever; and it never
reads the partitions that were not there when it started.

:class:`LogFollower` is what such a consumer runs after each poll. At most once per
``check_every_s`` it re-reads the topics' partitions and their end offsets: a partition whose
log now ends before the consumer's position was lost, and it is read again from its new
beginning, as is every partition that was not assigned before. A real Kafka never moves an end
offset back, so there this only follows partitions added to a topic.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from bus.log_reader import LogReader

log = logging.getLogger(__name__)

CHECK_EVERY_S = 1.0


@dataclass(frozen=True)
class Realigned:
    """What a check moved to the beginning of its log."""

    lost: list[TopicPartition] = field(default_factory=list)
    """Partitions whose log the broker lost (it ends before where the consumer was)."""
    added: list[TopicPartition] = field(default_factory=list)
    """Partitions the topics have now that the consumer did not read before."""

    def __bool__(self) -> bool:
        return bool(self.lost or self.added)


class LogFollower:
    def __init__(self, consumer: Any, topics: Sequence[str], *, check_every_s: float = CHECK_EVERY_S) -> None:
        self._consumer = consumer
        self._topics = tuple(topics)
        self._every = check_every_s
        self._checked = time.monotonic()
        self._ends: dict[TopicPartition, int] = {}
        self.restarts = 0
        """Times a lost log was found (a broker restart, as this consumer saw it)."""

    async def check(self) -> Realigned:
        """The partitions now read from their beginning (lost logs and new partitions); empty
        when nothing changed or the last check was less than ``check_every_s`` ago."""
        now = time.monotonic()
        if now - self._checked < self._every:
            return Realigned()
        self._checked = now
        consumer = self._consumer
        try:
            await consumer.topics()  # fresh metadata: the partitions each topic has now
            current = {
                TopicPartition(topic, p)
                for topic in self._topics
                for p in consumer.partitions_for_topic(topic) or ()
            }
            assigned = set(consumer.assignment())
            kept = sorted(assigned & current)
            ends = await consumer.end_offsets(kept) if kept else {}
            positions = {tp: await consumer.position(tp) for tp in kept}
            # Past the end, and the end moved back since the last look: Tansu may serve records
            # past the end it reports in a log made again after a restart, and reading those is
            # not a second loss.
            lost = [
                tp for tp in kept if positions[tp] > ends[tp] and ends[tp] < self._ends.get(tp, positions[tp])
            ]
            self._ends.update(ends)
        except Exception as exc:
            # The broker is down or coming back: the next poll's check asks again.
            log.warning("could not check %s for a lost log: %s: %s", self._topics, type(exc).__name__, exc)
            return Realigned()
        added = sorted(current - assigned)
        if not lost and not added:
            return Realigned()
        if added:
            # assign() forgets every position: the partitions kept go back to theirs.
            consumer.assign(sorted(current | assigned))
            for tp, offset in positions.items():
                consumer.seek(tp, offset)
        await consumer.seek_to_beginning(*lost, *added)
        if lost:
            self.restarts += 1
            log.warning(
                "the broker lost the log of %s (its end is before this consumer's position: restarted "
                "without storage); reading from the new beginning",
                ", ".join(f"{tp.topic}[{tp.partition}]" for tp in lost),
            )
        if added:
            log.info("reading new partitions %s", ", ".join(f"{tp.topic}[{tp.partition}]" for tp in added))
        return Realigned(lost, added)


class GroupConsumer(AIOKafkaConsumer):
    """A consumer in a group that does not trust an offset the group committed into a lost log.

    When the broker restarts empty, the group's member rejoins; before it does, aiokafka
    commits the positions it had (auto-commit does so on every rebalance), and a manual commit
    in flight lands too: offsets of the old log, written into the new one's fresh group. Taken
    as they are they would skip the first records of the new log, which are commands. So this
    consumer remembers the last record it handed over on each partition, and at every new
    assignment looks for that record where it was: if the log no longer holds it there (a
    different record, or none: compared by value and timestamp, since the door may have
    published the very same bytes again), the log was lost and the partition is read from its
    new beginning. A partition it never read from keeps its committed offset.
    """

    def __init__(self, *topics: str, **options: Any) -> None:
        super().__init__(**options)
        self._bootstrap = options["bootstrap_servers"]
        self._last: dict[TopicPartition, tuple[int, bytes | None, int]] = {}
        self.restarts = 0
        """Partitions found read from a lost log at an assignment (since start)."""
        if topics:
            self.subscribe(topics=list(topics), listener=_Revalidate(self))

    def _handed(self, record: Any) -> None:
        self._last[TopicPartition(record.topic, record.partition)] = (
            record.offset,
            record.value,
            record.timestamp,
        )

    async def getone(self, *partitions: TopicPartition) -> Any:
        record = await super().getone(*partitions)
        self._handed(record)
        return record

    async def getmany(self, *partitions: TopicPartition, **options: Any) -> dict[TopicPartition, list[Any]]:
        batches: dict[TopicPartition, list[Any]] = await super().getmany(*partitions, **options)
        for records in batches.values():
            if records:
                self._handed(records[-1])
        return batches

    async def revalidate(self, assigned: set[TopicPartition]) -> None:
        lost = []
        for tp in assigned:
            last = self._last.get(tp)
            if last is None:
                continue
            offset, value, timestamp = last
            reader = LogReader(self._bootstrap, tp.topic)
            try:
                same = await reader.record_is(tp.partition, offset, value, timestamp)
            except Exception as exc:
                # Not known: the committed offset stands (as it would without this check).
                log.warning(
                    "could not look for %s[%d]@%d: %s: %s",
                    tp.topic,
                    tp.partition,
                    offset,
                    type(exc).__name__,
                    exc,
                )
                continue
            finally:
                await reader.close()
            if not same:
                lost.append(tp)
        for tp in assigned:
            self._last.pop(tp, None)
        if lost:
            self.restarts += len(lost)
            await self.seek_to_beginning(*lost)
            log.warning(
                "the broker lost the log of %s (the last record read is no longer there): reading the "
                "new log from its beginning, not from the offset committed into the old one",
                ", ".join(f"{tp.topic}[{tp.partition}]" for tp in lost),
            )


class _Revalidate(ConsumerRebalanceListener):
    def __init__(self, consumer: GroupConsumer) -> None:
        self._consumer = consumer

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        return None

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._consumer.revalidate(set(assigned))
