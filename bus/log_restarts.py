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

from aiokafka import TopicPartition

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
            lost = [tp for tp in kept if positions[tp] > ends[tp]]
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
