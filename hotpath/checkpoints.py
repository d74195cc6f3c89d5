"""The hot path signs checkpoints of the ledger head (see :mod:`ledger.checkpoints`).

Why the hot path: it is the ledger's main appender and runs whenever orders can flow, it already
holds a Kafka producer, and it stops cleanly (a final checkpoint). The API and the CLI append
too; the checkpointer reads the head row (one indexed row, off the order path) every
``poll_s`` rather than hooking each writer, so every append counts wherever it came from.

Each checkpoint goes to the append-only file first (flushed to disk before anything else), then
to the ``ledger.checkpoints`` topic; a Kafka failure is logged and the next checkpoint tries
again, since the file alone is enough for ``floor ledger verify``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bus.topics import LEDGER_CHECKPOINTS
from hotpath.ports import EventProducer
from ledger.append import ledger_head
from ledger.checkpoints import Checkpoint, append_checkpoint, read_checkpoints, sign_checkpoint
from ledger.db import Db

log = logging.getLogger(__name__)

POLL_S = 1.0


class LedgerCheckpointer:
    def __init__(
        self,
        db: Db,
        key: Ed25519PrivateKey,
        path: Path,
        producer: EventProducer | None,
        *,
        every: int,
        poll_s: float = POLL_S,
    ) -> None:
        self._db = db
        self._key = key
        self._path = path
        self._producer = producer
        self._every = every
        self._poll_s = poll_s
        self._lock = asyncio.Lock()
        lines = [line.checkpoint for line in read_checkpoints(path) if line.checkpoint is not None]
        self.last_seq = max((c.seq for c in lines), default=0)
        """The newest checkpointed seq (from the file at start-up)."""

    async def run(self) -> None:
        """Checkpoint whenever the ledger has grown by ``every`` entries since the last one."""
        with contextlib.suppress(Exception):
            seq, _ = await ledger_head(self._db)
            if seq < self.last_seq:
                log.critical(
                    "the ledger ends at seq %d but a signed checkpoint shows seq %d: entries were"
                    " removed; run `floor ledger verify`",
                    seq,
                    self.last_seq,
                )
        while True:
            try:
                seq, _ = await ledger_head(self._db)
                if seq >= self.last_seq + self._every:
                    await self.checkpoint()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("ledger checkpoint failed; trying again in %.1f s", self._poll_s)
            await asyncio.sleep(self._poll_s)

    async def checkpoint(self) -> Checkpoint | None:
        """Sign and publish the current head, unless it is already checkpointed (or empty)."""
        async with self._lock:
            seq, entry_hash = await ledger_head(self._db)
            if seq == 0 or seq == self.last_seq:
                return None
            checkpoint = sign_checkpoint(self._key, seq, entry_hash)
            await asyncio.to_thread(append_checkpoint, self._path, checkpoint)
            self.last_seq = seq
            if self._producer is not None:
                try:
                    await self._producer.send_and_wait(
                        LEDGER_CHECKPOINTS, checkpoint.to_json(), key=b"ledger"
                    )
                except Exception:
                    log.exception(
                        "checkpoint of seq %d is in %s but not on %s", seq, self._path, LEDGER_CHECKPOINTS
                    )
            log.info("ledger checkpoint at seq %d", seq)
            return checkpoint

    async def close(self) -> None:
        """The last checkpoint, as the process stops."""
        with contextlib.suppress(Exception):
            await self.checkpoint()
