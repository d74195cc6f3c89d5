"""The span store (migration 0024): finished spans in Postgres, for ``floor trace`` and the HUD.

Every process exports its spans here through :class:`PostgresSpanExporter`, behind the SDK's
``BatchSpanProcessor`` (``observability/tracing.py``): the processor's thread hands each batch
to the process's event loop, where one statement inserts it, so nothing is written where a
span ends. The inserts run with instrumentation suppressed (an instrumented insert would make
spans of its own, exported in turn, forever).

Rows are pruned by age (:func:`prune_spans`, ``FLOOR_SPAN_RETENTION_HOURS``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import StatusCode

from ledger.db import UNREACHABLE, Db
from observability.tracing import ATTR_COMMAND_ID

log = logging.getLogger(__name__)

EXPORT_TIMEOUT_S = 10.0
"""How long the exporter's thread waits for one batch's insert before it gives the batch up."""
_GIVE_UP: tuple[type[BaseException], ...] = (*UNREACHABLE, asyncio.CancelledError)
"""The insert could not reach the database (or the loop cancelled it on its way down)."""
_MAX_ATTRIBUTES_CHARS = 16000
"""The table caps a row's attributes (16 KiB); a larger set is cut to what fits."""


@dataclass(frozen=True)
class SpanRow:
    trace_id: str
    """32 lowercase hex digits."""
    span_id: str
    """16 lowercase hex digits."""
    parent_span_id: str | None
    name: str
    service: str
    command_id: str | None
    start_ns: int
    """Unix epoch nanoseconds."""
    end_ns: int
    status: str
    """``ok`` or ``error``."""
    attributes: dict[str, Any]

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, bool, int, float)) or value is None:
        return value
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return str(value)


def row_from_span(span: ReadableSpan) -> SpanRow | None:
    """The row for a finished SDK span (None for one without a valid context or end)."""
    ctx = span.context
    if ctx is None or not ctx.is_valid or span.start_time is None or span.end_time is None:
        return None
    attributes = {k: _jsonable(v) for k, v in (span.attributes or {}).items()}
    command_id = attributes.get(ATTR_COMMAND_ID)
    service = str(span.resource.attributes.get("service.name", "unknown")) if span.resource else "unknown"
    parent = span.parent.span_id if span.parent is not None and span.parent.is_valid else None
    return SpanRow(
        trace_id=format(ctx.trace_id, "032x"),
        span_id=format(ctx.span_id, "016x"),
        parent_span_id=format(parent, "016x") if parent is not None else None,
        name=span.name[:256],
        service=service[:128],
        command_id=str(command_id)[:256] if command_id is not None else None,
        start_ns=span.start_time,
        end_ns=max(span.end_time, span.start_time),
        status="error" if span.status.status_code is StatusCode.ERROR else "ok",
        attributes=attributes,
    )


def _attributes_json(attributes: dict[str, Any]) -> str:
    text = json.dumps(attributes, separators=(",", ":"), sort_keys=True)
    if len(text) <= _MAX_ATTRIBUTES_CHARS:
        return text
    kept: dict[str, Any] = {}
    for key in sorted(attributes):
        kept[key] = attributes[key]
        if len(json.dumps(kept, separators=(",", ":"))) > _MAX_ATTRIBUTES_CHARS - 64:
            del kept[key]
            break
    kept["floor.attributes_truncated"] = True
    return json.dumps(kept, separators=(",", ":"), sort_keys=True)


_INSERT = """
INSERT INTO spans (trace_id, span_id, parent_span_id, name, service, command_id,
                   start_ns, end_ns, status, attributes)
SELECT t, s, p, n, sv, c, st, en, stat, a::jsonb
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
            $7::bigint[], $8::bigint[], $9::text[], $10::text[])
     AS u(t, s, p, n, sv, c, st, en, stat, a)
ON CONFLICT DO NOTHING
"""


async def insert_spans(db: Db | asyncpg.Pool, rows: Sequence[SpanRow]) -> None:
    """Insert ``rows`` in one statement (a span exported twice is kept once). No conflict
    target: one would need SELECT on the table, which the writers do not have.

    Through a pool or a connection the insert commits without waiting for a WAL flush
    (``synchronous_commit`` off for that transaction; the table is unlogged, so its rows write
    no WAL, but the transaction's commit record would still be flushed and wait for the disk
    with the ledger's commits)."""
    if not rows:
        return
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn:
            await _insert_unflushed(conn, rows)
    elif isinstance(db, asyncpg.Connection):
        await _insert_unflushed(db, rows)
    else:
        await db.execute(_INSERT, *_columns(rows))


async def _insert_unflushed(conn: asyncpg.Connection, rows: Sequence[SpanRow]) -> None:
    async with conn.transaction():
        await conn.execute("SET LOCAL synchronous_commit TO off")
        await conn.execute(_INSERT, *_columns(rows))


def _columns(rows: Sequence[SpanRow]) -> tuple[list[Any], ...]:
    return (
        [r.trace_id for r in rows],
        [r.span_id for r in rows],
        [r.parent_span_id for r in rows],
        [r.name for r in rows],
        [r.service for r in rows],
        [r.command_id for r in rows],
        [r.start_ns for r in rows],
        [r.end_ns for r in rows],
        [r.status for r in rows],
        [_attributes_json(r.attributes) for r in rows],
    )


def _row(record: Any) -> SpanRow:
    attributes = record["attributes"]
    return SpanRow(
        trace_id=record["trace_id"],
        span_id=record["span_id"],
        parent_span_id=record["parent_span_id"],
        name=record["name"],
        service=record["service"],
        command_id=record["command_id"],
        start_ns=int(record["start_ns"]),
        end_ns=int(record["end_ns"]),
        status=record["status"],
        attributes=json.loads(attributes) if isinstance(attributes, str) else dict(attributes),
    )


async def spans_for_command(db: Db, command_id: str) -> list[SpanRow]:
    """Every span of every trace that has a span carrying ``command_id``, ordered by start."""
    records = await db.fetch(
        "SELECT trace_id, span_id, parent_span_id, name, service, command_id, start_ns, end_ns,"
        " status, attributes FROM spans"
        " WHERE trace_id IN (SELECT DISTINCT trace_id FROM spans WHERE command_id = $1)"
        " ORDER BY start_ns, end_ns DESC, span_id",
        command_id,
    )
    return [_row(r) for r in records]


async def prune_spans(db: Db, older_than: datetime) -> int:
    """Delete the spans that started before ``older_than``; return how many."""
    return int(await db.fetchval("SELECT spans_prune($1)", older_than))


PRUNE_EVERY_S = 600.0


async def prune_spans_every(db: Db, retention: timedelta, every_s: float = PRUNE_EVERY_S) -> None:
    """Prune spans older than ``retention`` now and every ``every_s`` seconds (the API runs it).
    A failed prune is logged and tried again at the next turn: the store only grows meanwhile."""
    while True:
        try:
            gone = await prune_spans(db, datetime.now(UTC) - retention)
            if gone:
                log.info("pruned %d spans older than %s", gone, retention)
        except Exception as exc:
            log.warning(
                "spans not pruned (%s: %s); tried again in %.0f s: check Postgres and the API role's"
                " floor_span_reader membership (`floor up` grants it)",
                type(exc).__name__,
                exc,
                every_s,
            )
        await asyncio.sleep(every_s)


class PostgresSpanExporter(SpanExporter):
    """Writes the SDK's span batches to the span store through ``write`` on ``loop``.

    ``export`` runs on the batch processor's thread: it schedules the insert on the event loop
    (which owns the database connections) and waits for it there, never on the loop. A batch
    whose insert fails (the database unreachable, a timeout) is dropped and logged: spans are
    for looking, and holding them would grow the process without bound during an outage."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        write: Callable[[Sequence[SpanRow]], Awaitable[None]],
        *,
        timeout_s: float = EXPORT_TIMEOUT_S,
    ) -> None:
        self._loop = loop
        self._write = write
        self._timeout_s = timeout_s
        self._closed = False
        self.dropped = 0
        """Spans given up (the insert failed or timed out), for tests and ``/health``."""

    @classmethod
    def to_db(cls, loop: asyncio.AbstractEventLoop, db: Db, **kwargs: Any) -> PostgresSpanExporter:
        return cls(loop, lambda rows: insert_spans(db, rows), **kwargs)

    async def _insert(self, rows: Sequence[SpanRow]) -> None:
        # The task runs in a context of its own: suppressing here reaches only this insert.
        otel_context.attach(otel_context.set_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY, True))
        await self._write(rows)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._closed or self._loop.is_closed():
            return SpanExportResult.FAILURE
        rows = [row for row in (row_from_span(s) for s in spans) if row is not None]
        if not rows:
            return SpanExportResult.SUCCESS
        try:
            future = asyncio.run_coroutine_threadsafe(self._insert(rows), self._loop)
        except RuntimeError:  # the loop closed meanwhile
            return SpanExportResult.FAILURE
        try:
            future.result(self._timeout_s)
        except FutureTimeout:
            future.cancel()
            self._drop(rows, "the span store did not answer in time")
            return SpanExportResult.FAILURE
        except _GIVE_UP as exc:
            self._drop(rows, f"the span store is unreachable ({type(exc).__name__})")
            return SpanExportResult.FAILURE
        except Exception as exc:  # a refused insert: log it, keep the process exporting
            self._drop(rows, f"the span store refused a batch ({type(exc).__name__}: {exc})")
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def _drop(self, rows: Sequence[SpanRow], why: str) -> None:
        self.dropped += len(rows)
        log.warning("%d spans dropped: %s; they are not in floor trace (check the database)", len(rows), why)

    def shutdown(self) -> None:
        self._closed = True

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
