"""The door's outbox: every command it published, kept until the ledger holds a decision on it,
and published again when the broker lost it.

The embedded Kafka broker (Tansu, memory storage) loses its whole log when it restarts: a
command the broker acknowledged but the hot path had not read yet is gone. The door keeps
each command it publishes (table ``command_outbox``, before producing it, so a door that dies
or whose database fails after the broker's acknowledgement loses nothing; its partition and
offset are noted after the acknowledgement) and a task of the API process
(:meth:`CommandOutbox.run`) checks every ``check_every_s``:

1. commands the ledger now holds (an entry under the command's signature hash: accepted,
   refused, or refused by the sentry) are forgotten;
2. the oldest command still kept (for longer than a check) is looked for where the broker
   acknowledged it, by its bytes (a restarted log reuses the offsets); one whose place was
   never noted is looked for in the whole log. The broker still holds
   it: so it holds every later one too, and the hot path is merely behind (or down) and will
   read them. It does not: the broker lost its log, and every kept command the log holds no
   longer (read whole: a log that started again is short) is published again, in the order
   first published, its new place noted (``outbox.republished``, an ops event).

A copy of a command the hot path decided after all is refused by the hot path as a duplicate
delivery (``intake.duplicate_delivery``, a warning-level security event): nothing is decided
twice. A real Kafka never loses an acknowledged record, so there nothing is published again and
the outbox costs one insert per command, one sweep a second and, while the hot path is behind,
one single-record fetch a second.

Each door keeps and checks what it published to its own broker (the ``bootstrap`` column).

Agents that publish to ``agent.commands`` themselves do not go through the door: each must
keep what it sent until the command's outcome (``orders.events``, or the ledger) and send the
undecided ones again after a broker restart.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from aiokafka.errors import KafkaError

from bus.kafka import ensure_topics
from bus.log_reader import LogReader
from ledger.db import Db
from ledger.ops_events import record_ops_event
from trading.signing import SignedCommand

log = logging.getLogger(__name__)

CHECK_EVERY_S = 1.0
RETAIN = timedelta(days=1)
"""A command still undecided after this is dropped (``outbox.expired``): the hot path would
refuse it as stale anyway, and the ops event names it."""
REPUBLISHED = "outbox.republished"
EXPIRED = "outbox.expired"
REPUBLISH_FAILED = "outbox.republish_failed"

_DECIDED = """
    DELETE FROM command_outbox o
    WHERE EXISTS (SELECT 1 FROM ledger_entries l
                  WHERE l.signature_hash = o.signature_hash AND l.authenticated)
       OR EXISTS (SELECT 1 FROM ledger_entries l
                  WHERE l.signature_hash = o.signature_hash AND NOT l.authenticated)
"""


class Publisher(Protocol):
    async def send_and_wait(self, topic: str, value: bytes, key: bytes | None = None) -> Any: ...


@dataclass(frozen=True)
class Kept:
    signature_hash: str
    command_id: str
    envelope: bytes
    partition_key: bytes
    partition: int | None
    offset: int | None
    """None: kept, but its broker acknowledgement never noted."""
    age_s: float
    """Since it was kept (or published again)."""


class CommandOutbox:
    def __init__(
        self,
        db: Db,
        publisher: Publisher,
        topic: str,
        bootstrap: str,
        *,
        check_every_s: float = CHECK_EVERY_S,
    ) -> None:
        self._db = db
        self._publisher = publisher
        self._topic = topic
        self._bootstrap = bootstrap
        self._every = check_every_s
        self._log = LogReader(bootstrap, topic)
        self.republished = 0
        """Commands published again (since start)."""

    async def keep(self, envelope: SignedCommand, partition_key: bytes) -> None:
        """Keep a command about to be published (its partition and offset not known yet)."""
        command = envelope.command
        await self._db.execute(
            "INSERT INTO command_outbox (signature_hash, command_id, agent_id, envelope, partition_key,"
            " bootstrap) VALUES ($1, $2, $3, $4, $5, $6)"
            " ON CONFLICT (signature_hash) DO UPDATE SET bootstrap = EXCLUDED.bootstrap,"
            " kafka_partition = NULL, kafka_offset = NULL, published_at = now()",
            envelope.signature_hash,
            command.command_id,
            command.agent_id,
            envelope.to_wire(),
            partition_key,
            self._bootstrap,
        )

    async def published(self, envelope: SignedCommand, partition: int, offset: int) -> None:
        """Note where the broker acknowledged a kept command."""
        await self._db.execute(
            "UPDATE command_outbox SET kafka_partition = $2, kafka_offset = $3 WHERE signature_hash = $1",
            envelope.signature_hash,
            partition,
            offset,
        )

    async def forget(self, envelope: SignedCommand) -> None:
        """Drop a kept command the broker did not take."""
        await self._db.execute(
            "DELETE FROM command_outbox WHERE signature_hash = $1", envelope.signature_hash
        )

    async def run(self) -> None:
        """Check for good, every ``check_every_s``; a failed check is logged and tried again."""
        try:
            while True:
                try:
                    await self.check()
                except Exception:
                    log.exception("outbox check failed; trying again in %.1f s", self._every)
                await asyncio.sleep(self._every)
        finally:
            await self.close()

    async def close(self) -> None:
        await self._log.close()

    async def check(self) -> int:
        """One pass (see the module docstring); returns how many commands were published again."""
        await self._db.execute(_DECIDED)
        await self._expire()
        kept = await self._kept()
        # The oldest first: while the broker holds it, it holds every later one too (a restart
        # loses a whole log). One still in flight (kept less than a check ago) is left alone.
        if not kept or kept[0].age_s < self._every:
            return 0
        oldest = kept[0]
        try:
            if oldest.offset is not None and await self._log.holds(
                oldest.partition or 0, oldest.offset, oldest.envelope
            ):
                return 0
            present = await self._log.values()
        except (KafkaError, OSError, TimeoutError) as exc:
            # The broker is down or coming back: nothing can be published now; ask again.
            log.warning("outbox: cannot read %s: %s: %s", self._topic, type(exc).__name__, exc)
            return 0
        if oldest.offset is None and present is None:
            # Kept with no place (the door died before the ack, or could not note it) and a log
            # too long to search: only the placeless are published again; a copy the hot path
            # had decided after all is refused as a duplicate delivery.
            lost = [k for k in kept if k.offset is None]
        else:
            # Those the new log holds (published after the restart) the hot path reads anyway.
            lost = [k for k in kept if present is None or k.envelope not in present]
        # One kept a moment ago may still be on its way to the broker: left to the next check.
        lost = [k for k in lost if k.offset is not None or k.age_s >= self._every]
        return await self._republish(lost) if lost else 0

    async def _expire(self) -> None:
        rows = await self._db.fetch(
            "DELETE FROM command_outbox WHERE published_at < now() - $1::interval RETURNING command_id",
            RETAIN,
        )
        if rows:
            ids = [r["command_id"] for r in rows]
            log.warning("dropped %d commands undecided for %s: %s", len(ids), RETAIN, ids[:20])
            await self._ops_event(EXPIRED, "warning", {"commands": len(ids), "command_ids": ids[:100]})

    async def _kept(self) -> list[Kept]:
        rows = await self._db.fetch(
            "SELECT signature_hash, command_id, envelope, partition_key, kafka_partition, kafka_offset,"
            " extract(epoch FROM now() - published_at)::float8 AS age_s"
            " FROM command_outbox WHERE bootstrap = $1 ORDER BY published_at, kafka_partition, kafka_offset",
            self._bootstrap,
        )
        return [
            Kept(
                r["signature_hash"],
                r["command_id"],
                bytes(r["envelope"]),
                bytes(r["partition_key"]),
                r["kafka_partition"],
                r["kafka_offset"],
                r["age_s"],
            )
            for r in rows
        ]

    async def _republish(self, kept: list[Kept]) -> int:
        log.warning(
            "the broker lost commands the hot path had not decided (restarted without storage): "
            "publishing %d again",
            len(kept),
        )
        sent = 0
        try:
            # The topic made first: Tansu takes a record for a topic it lost and then never
            # serves it (the producer still knows the topic, so it writes without asking).
            await ensure_topics(self._bootstrap, (self._topic,))
            for k in kept:
                record = await self._publisher.send_and_wait(self._topic, k.envelope, key=k.partition_key)
                partition, offset = int(record.partition), int(record.offset)
                await self._db.execute(
                    "UPDATE command_outbox SET kafka_partition = $2, kafka_offset = $3,"
                    " published_at = now(), republished = republished + 1 WHERE signature_hash = $1",
                    k.signature_hash,
                    partition,
                    offset,
                )
                sent += 1
        except Exception as exc:
            # Those not yet sent still name places in a lost log: the next check finds that.
            error = type(exc).__name__
            log.warning("outbox: published %d of %d again, then %s: %s", sent, len(kept), error, exc)
            detail = {"published": sent, "undecided": len(kept), "error": error}
            await self._ops_event(REPUBLISH_FAILED, "warning", detail)
        finally:
            self.republished += sent
        if sent:
            await self._ops_event(
                REPUBLISHED,
                "warning",
                {"published": sent, "command_ids": [k.command_id for k in kept[:sent]][:100]},
            )
        return sent

    async def _ops_event(self, kind: str, severity: str, detail: dict[str, Any]) -> None:
        try:
            await record_ops_event(self._db, "api", kind, severity, detail)
        except Exception:
            log.exception("could not record ops event %s %s", kind, detail)
