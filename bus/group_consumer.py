"""The hot path's command consumer in group mode: one member of a Kafka consumer group, which
shares ``agent.commands``' partitions (and so the accounts on them) among the hot paths.

The group hands a member's partitions to another when it leaves, when it goes unheard for the
session timeout (``kill -9``), or when a member joins. A partition must not move while its
record is being decided, nor before that record's offset is committed, or the next owner would
decide it again (the ledger would refuse it as a duplicate, but it is the commit that says so):
:class:`GroupConsumer` knows which record is out (handed over and not yet followed by the next
``getone``, which the command loop asks for only once it has marked the previous one decided),
and :meth:`GroupConsumer.settled` lets a rebalance listener wait for it before it commits.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener

log = logging.getLogger(__name__)

HEARTBEAT_SHARE = 5
"""Heartbeats per session timeout: a member misses several before the group gives it up."""


class GroupConsumer(AIOKafkaConsumer):
    """Subscribes ``topic`` under ``group_id`` with ``listener``; read it through ``getone`` or
    ``async for`` (each call says the record handed before it is done)."""

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
        self._idle = asyncio.Event()
        self._idle.set()

    async def getone(self, *partitions: Any) -> Any:
        # The caller asks for the next record only once the previous one is decided.
        self._idle.set()
        record = await super().getone(*partitions)
        self._idle.clear()
        return record

    async def settled(self, timeout_s: float) -> bool:
        """Wait until the record handed out last is decided (at most ``timeout_s``); False if it
        is still out (a ledger outage holds it): its partition moves undecided, and whoever reads
        it next finds it in the ledger or decides it."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            return False
        return True
