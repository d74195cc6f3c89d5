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
nothing): :class:`~bus.log_restarts.LogFollower` looks for both whenever a poll finds nothing,
and at least every ``BUSY_CHECK_S`` under a steady stream, and reads those partitions from
their new beginning.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from bus.log_restarts import LogFollower

log = logging.getLogger(__name__)

IDLE_POLL_MS = 1000
"""A poll that waited this long for nothing checks the log (a lost log is read nothing from)."""
BUSY_CHECK_S = 5.0
"""Under a steady stream, the log is checked no more often than this: the check is a metadata
and end-offsets round trip taken before the next record."""


class AssignedConsumer(AIOKafkaConsumer):
    """Reads every partition of ``topics`` under ``group_id`` without joining the group.

    Only one process may read a topic this way under a group id: two would both read every
    record. Read it through ``getone`` or ``async for`` (both check the log as described)."""

    def __init__(self, *topics: str, **options: Any) -> None:
        if not options.get("group_id"):
            raise ValueError("an AssignedConsumer keeps its offsets under a group_id")
        super().__init__(**options)
        self._topics = tuple(topics)
        self._follower = LogFollower(self, self._topics)
        self._checked = time.monotonic()

    @property
    def restarts(self) -> int:
        """Times a lost log was found since start (a broker restart, as this consumer saw it)."""
        return self._follower.restarts

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

    async def getone(self, *partitions: TopicPartition) -> Any:
        idle = False
        while True:
            now = time.monotonic()
            if idle or now - self._checked >= BUSY_CHECK_S:
                self._checked = now
                await self._follower.check()
            if not self.assignment():
                # The topic did not exist yet: wait for the follower's next look.
                idle = True
                await asyncio.sleep(IDLE_POLL_MS / 1000)
                continue
            batch = await self.getmany(*partitions, timeout_ms=IDLE_POLL_MS, max_records=1)
            for records in batch.values():
                if records:
                    return records[0]
            idle = True
