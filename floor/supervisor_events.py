"""The supervisor's ops events (``supervisor.restarted``, ``supervisor.gave_up``), recorded in
``ops_events`` from a thread of their own, and appended to ``var/log/supervisor.log`` and emitted
as OpenTelemetry log records (:mod:`observability.events`) at once.

The database may be the very process being restarted, so an event waits in memory and is
retried (bounded back-off) until Postgres takes it; the log file has it meanwhile, and says so
of any event still unwritten when the floor stops. The supervisor is ``floor up``, a ``floor``
command: it writes as the commands' own role, ``floor_cli``, whose ``floor_writer`` group is
granted INSERT on ``ops_events`` (migration 0008), as the hot path's role writes its events.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from observability.events import emit_ops_event

SOURCE = "supervisor"
RESTARTED = "supervisor.restarted"
GAVE_UP = "supervisor.gave_up"
UNRECORDED = "supervisor.events_unrecorded"
"""Written to the log file only: events the database never took before the floor stopped."""
LOG_FILE = "supervisor.log"
RETRY_INITIAL_S = 0.2
RETRY_MAX_S = 5.0
CONNECT_TIMEOUT_S = 5.0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OpsEvent:
    kind: str
    severity: str
    detail: Mapping[str, Any]
    at: float


class OpsEventLog:
    """Records events without blocking the caller; :meth:`close` waits (bounded) for the rest."""

    def __init__(self, dsn: Callable[[], str] | None, log_dir: Path) -> None:
        """``dsn`` gives the URL to write with (read at each attempt: the role's password file
        may appear only once ``floor up`` has made the roles); None records to the file only."""
        self._dsn = dsn
        self._log_path = log_dir / LOG_FILE
        self._queue: queue.Queue[OpsEvent | None] = queue.Queue()
        self._pending = 0
        self._cond = threading.Condition()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="supervisor-ops-events", daemon=True)
        self._thread.start()

    def record(self, kind: str, severity: str, detail: Mapping[str, Any]) -> None:
        event = OpsEvent(kind, severity, dict(detail), time.time())
        self._append_to_file({"kind": kind, "severity": severity, "detail": event.detail})
        # Emitted now, not once the row is in: the database may be the process being restarted.
        emit_ops_event(SOURCE, kind, severity, event.detail, at=event.at)
        with self._cond:
            self._pending += 1
        self._queue.put(event)

    def flush(self, timeout: float) -> bool:  # noqa: ASYNC109 - a thread's deadline
        """Wait until every event recorded so far is in the database; False after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 - a thread's deadline
        """Give unwritten events ``timeout`` to reach the database, then stop; the log file
        names any that did not."""
        written = self.flush(timeout)
        self._closing.set()
        self._queue.put(None)
        self._thread.join(timeout=CONNECT_TIMEOUT_S + 1)
        if not written:
            why = "the database did not answer before the floor stopped; they are in this file only"
            detail = {"count": self._pending, "why": why}
            self._append_to_file({"kind": UNRECORDED, "severity": "warning", "detail": detail})
            emit_ops_event(SOURCE, UNRECORDED, "warning", detail)

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            if event is None:
                return
            delay = RETRY_INITIAL_S
            while not self._write(event):
                # Wait, unless the floor is stopping: close() has given up on the database.
                if self._closing.wait(delay):
                    return
                delay = min(RETRY_MAX_S, delay * 2)
            with self._cond:
                self._pending -= 1
                self._cond.notify_all()

    def _write(self, event: OpsEvent) -> bool:
        if self._dsn is None:
            return True
        try:
            asyncio.run(_insert(self._dsn(), event))
        except Exception as exc:  # noqa: BLE001 - any failure is retried; the file has the event
            log.info("ops event %s not recorded yet (%s: %s); retrying", event.kind, type(exc).__name__, exc)
            return False
        return True

    def _append_to_file(self, entry: Mapping[str, Any]) -> None:
        line = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **entry}
        try:
            self._log_path.parent.mkdir(parents=True, exist_ok=True)
            with self._log_path.open("a") as f:
                f.write(json.dumps(line, default=str) + "\n")
        except OSError as exc:
            log.warning("cannot append to %s: %s", self._log_path, exc)


async def _insert(dsn: str, event: OpsEvent) -> None:
    conn = await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT_S)
    try:
        await conn.execute(
            "INSERT INTO ops_events (ts, source, kind, severity, detail)"
            " VALUES (to_timestamp($1), $2, $3, $4, $5::jsonb)",
            event.at,
            SOURCE,
            event.kind,
            event.severity,
            json.dumps(dict(event.detail), default=str),
        )
    finally:
        await conn.close()
