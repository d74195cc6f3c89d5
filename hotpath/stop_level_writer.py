"""Persists the Exit Manager's stop levels in the background (table ``stop_levels``).

The Exit Manager hands each level over from the tick handler (:meth:`StopLevelWriter.put`: a
dict assignment, no await); one task writes what has gathered in one statement. Only the newest
level of an order is kept while a write is in flight, so a burst of moves costs one row write
per order, and a Postgres outage costs nothing but a backlog that shrinks to one level per
order: the writer retries (bounded backoff) until the database answers, recording
``exits.level_write_failed`` once per outage and ``exits.level_write_resumed`` when it is over.
A level still unwritten when the process dies is recovered from the broker, whose working
stop is already there (:mod:`hotpath.trailing_restore`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from hotpath.exit_manager import TrailLevel
from ledger.db import Db
from ledger.stop_levels import StopLevel, write_stop_levels

log = logging.getLogger(__name__)

RETRY_FIRST_S = 0.1
RETRY_MAX_S = 5.0
WRITE_FAILED = "exits.level_write_failed"
"""Ops event (warning): stop levels cannot be persisted; they are kept and retried."""
WRITE_RESUMED = "exits.level_write_resumed"
"""Ops event (info): the stop levels held through an outage are persisted again."""

RecordOps = Callable[[str, str, Mapping[str, Any]], None]


class StopLevelWriter:
    def __init__(
        self,
        db: Db,
        account_of: Callable[[str], str | None],
        record_ops: RecordOps | None = None,
    ) -> None:
        """``account_of``: the account of a working order by command id (the floor's order map)."""
        self._db = db
        self._account_of = account_of
        self._record_ops = record_ops
        self._pending: dict[str, StopLevel] = {}
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self.written = 0
        """Rows written so far (for tests and stats)."""

    def put(self, level: TrailLevel) -> None:
        """Record ``level`` to be written (the newest per order wins); never blocks."""
        account = self._account_of(level.command_id)
        if account is None:
            log.error("stop level of %s not persisted: no working order of that id", level.command_id)
            return
        trailing = level.trailing
        self._pending[level.command_id] = StopLevel(
            command_id=level.command_id,
            account=account,
            symbol=level.symbol,
            side=level.order_side,
            stop=trailing.stop,
            best_price=level.best_price,
            trail_amount=trailing.trail_amount,
            trail_percent=trailing.trail_percent,
            tick=trailing.tick,
            bound=trailing.bound,
            updated_at=datetime.now(UTC),
            moves=level.moves,
        )
        self._idle.clear()
        self._wake.set()

    async def drained(self) -> None:
        """Returns once every level handed over so far is written."""
        await self._idle.wait()

    async def run(self) -> None:
        delay = RETRY_FIRST_S
        failing = False
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, {}
            if not batch:
                self._idle.set()
                continue
            try:
                await write_stop_levels(self._db, list(batch.values()))
            except Exception as exc:  # noqa: BLE001 - kept and retried, whatever went wrong
                # Levels that arrived meanwhile are newer: they win over the batch's.
                self._pending = {**batch, **self._pending}
                if not failing:
                    failing = True
                    log.exception("stop levels not persisted; retrying until the database takes them")
                    self._ops(WRITE_FAILED, "warning", {"error": f"{type(exc).__name__}: {exc}",
                                                        "pending": len(self._pending)})  # fmt: skip
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                self._wake.set()
                continue
            self.written += len(batch)
            delay = RETRY_FIRST_S
            if failing:
                failing = False
                self._ops(WRITE_RESUMED, "info", {"written": len(batch)})
            if not self._pending:
                self._idle.set()
            else:
                self._wake.set()

    def _ops(self, kind: str, severity: str, detail: Mapping[str, Any]) -> None:
        if self._record_ops is not None:
            self._record_ops(kind, severity, detail)
