"""The hot path's command consumer in group mode: one member of a Kafka consumer group, which
shares ``agent.commands``' partitions (and so the accounts on them) among the hot paths.

The group hands a member's partitions to another when it leaves, when it goes unheard for the
session timeout (``kill -9``), or when a member joins. A partition must not move while its
records are being decided (the command loop decides several at once), nor before their offsets
are committed, or the next owner would decide them again (the ledger would refuse them as
duplicates, but it is the commit that says so): :class:`GroupConsumer` notes the last record
handed out of each partition, which a rebalance listener waits to see decided
(:meth:`hotpath.decided_offsets.DecidedOffsets.until_decided`) before it commits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

HEARTBEAT_SHARE = 5
"""Heartbeats per session timeout: a member misses several before the group gives it up."""


class GroupConsumer(AIOKafkaConsumer):
    """Subscribes ``topic`` under ``group_id`` with ``listener``; read it through ``getone`` or
    ``async for``, which note what was handed out of each partition (:attr:`handed`)."""

    def __init__(
        self, topic: str, listener: ConsumerRebalanceListener, *, session_timeout_ms: int, **options: Any
    ) -> None:
        if not options.get("group_id"):
            raise ValueError("a GroupConsumer joins a group: give it a group_id")
        super().__init__(
            session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=max(session_timeout_ms // HEARTBEAT_SHARE, 100),
            **options,
        )
        self.subscribe([topic], listener=listener)
        self.handed: dict[TopicPartition, int] = {}
        """Per partition, the offset after the last record handed out: what must be decided
        before the partition may go."""
        self.stopping = False
        """Set once nothing more will be decided (the process is stopping): a partition let go
        then does not wait for records that will not be decided."""
        self._taken: set[TopicPartition] = set()
        self._changed = asyncio.Event()
        self._let_go = 0

    def take_up(self, partitions: Iterable[TopicPartition]) -> None:
        """The listener is ready for ``partitions``' records (aiokafka may fetch a partition
        before the listener has heard of it: its records wait for this)."""
        self._taken.update(partitions)
        self._changed.set()

    def let_go(self, partitions: Iterable[TopicPartition]) -> None:
        """``partitions`` are being taken away: none of their records is handed out any more,
        and one waiting for its partition to be taken up is dropped (the next owner reads it)."""
        self._taken.difference_update(partitions)
        self._let_go += 1
        self._changed.set()

    async def getone(self, *partitions: TopicPartition) -> Any:
        while True:
            record = await super().getone(*partitions)
            tp = TopicPartition(record.topic, record.partition)
            let_go = self._let_go
            while tp not in self._taken and self._let_go == let_go:
                self._changed.clear()
                await self._changed.wait()
            if tp not in self._taken:
                continue  # its partition went before this member took it up
            self.handed[tp] = record.offset + 1
            return record

    def intake_stopped(self) -> None:
        self.stopping = True

    def handed_of(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """:attr:`handed` of ``partitions`` (those nothing was handed out of left out)."""
        return {tp: self.handed[tp] for tp in partitions if tp in self.handed}
