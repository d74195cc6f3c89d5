"""The span store's span processor: finished spans written to Postgres in batches, on the event
loop, in small slices between whatever else the loop runs.

Why not the SDK's ``BatchSpanProcessor`` with :class:`~ledger.spans.PostgresSpanExporter`: its
thread converts and hands over hundreds of spans at a time holding the GIL, and the hot path's
event loop waits for the GIL for the next command meanwhile (up to the interpreter's switch
interval, 5 ms, a turn). Here ending a span appends it to a list (on the loop's thread; a span
ended on another thread is handed over with ``call_soon_threadsafe``) and :meth:`SpanStore.run`
writes what gathered every :data:`EVERY_S`, converting :data:`SLICE` spans at a time and
yielding to the loop between slices. The inserts run with instrumentation suppressed (an
instrumented insert would make spans of its own, written in turn, forever) and do not wait for
their WAL flush (:func:`~ledger.spans.insert_spans`).

Bounded: past :data:`MAX_PENDING` spans waiting (the database away), new ones are dropped and
counted (:attr:`SpanStore.dropped`), as is a batch whose insert fails: spans are for looking,
and holding them would grow the process without bound through an outage.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from ledger.db import Db
from ledger.spans import SpanRow, insert_spans, row_from_span

log = logging.getLogger(__name__)

EVERY_S = 0.5
"""How often gathered spans are written: a finished command is in the store within a second."""
SLICE = 32
"""Spans converted between two yields to the loop (~0.3 ms of work)."""
BATCH = 512
"""Rows per insert."""
MAX_PENDING = 20_000


class SpanStore(SpanProcessor):
    def __init__(self, db: Db | Any, loop: asyncio.AbstractEventLoop, *, every_s: float = EVERY_S) -> None:
        self._db = db
        self._loop = loop
        self._thread = threading.get_ident()
        self._every_s = every_s
        self._pending: list[ReadableSpan] = []
        self._writing = asyncio.Lock()
        self.written = 0
        self.dropped = 0
        """Spans given up: more than :data:`MAX_PENDING` waiting, or their insert failed."""

    # --- SpanProcessor (called where spans start and end) -------------------------------------

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        if span.context is None or not span.context.trace_flags.sampled:
            return
        if threading.get_ident() == self._thread:
            self._keep(span)
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._keep, span)

    def _keep(self, span: ReadableSpan) -> None:
        if len(self._pending) >= MAX_PENDING:
            self.dropped += 1
            return
        self._pending.append(span)

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        # Writing needs the loop this is called from: await flush() instead.
        return True

    # --- writing ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Write what gathered, every ``every_s``, until cancelled."""
        while True:
            await asyncio.sleep(self._every_s)
            await self.flush()

    async def flush(self) -> None:
        """Write every span ended so far (a process on its way out awaits it before its pool
        closes)."""
        async with self._writing:
            while self._pending:
                taken, self._pending = self._pending[:BATCH], self._pending[BATCH:]
                rows: list[SpanRow] = []
                for start in range(0, len(taken), SLICE):
                    rows.extend(r for r in map(row_from_span, taken[start : start + SLICE]) if r is not None)
                    await asyncio.sleep(0)  # the next command goes first
                await self._write(rows)

    async def _write(self, rows: list[SpanRow]) -> None:
        token = otel_context.attach(otel_context.set_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY, True))
        try:
            await insert_spans(self._db, rows)
            self.written += len(rows)
        except Exception as exc:
            self.dropped += len(rows)
            log.warning(
                "%d spans dropped: the span store refused or could not take them (%s: %s); they are"
                " not in floor trace (check Postgres and the role's INSERT on spans)",
                len(rows),
                type(exc).__name__,
                exc,
            )
        finally:
            otel_context.detach(token)
