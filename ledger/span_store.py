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

A process that says when it is busy (``quiet``, the hot path: no command for
:data:`QUIET_S`) has its spans written only once it is quiet, or once the oldest has waited
:data:`MAX_DELAY_S`, or past :data:`HIGH_WATER` of them. The inserts cost the database CPU that
a burst's ledger commits need on the same machine (``bench.hotpath``: tracing on doubled the
commits' p50 during a 200/s burst); deferred, they run after it, and a command's trace is in
the store a few seconds after the burst instead of within one.

Bounded: past :data:`MAX_PENDING` spans waiting (the database away), new ones are dropped and
counted (:attr:`SpanStore.dropped`), as is a batch whose insert fails: spans are for looking,
and holding them would grow the process without bound through an outage.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
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
QUIET_S = 0.25
"""How long a busy process must have been quiet before its spans are written."""
MAX_DELAY_S = 10.0
"""The longest a span waits for quiet: under a long burst the store still fills."""
HIGH_WATER = 8_000
"""Spans waiting past which they are written, quiet or not (well under :data:`MAX_PENDING`)."""


class SpanStore(SpanProcessor):
    def __init__(
        self,
        db: Db | Any,
        loop: asyncio.AbstractEventLoop,
        *,
        every_s: float = EVERY_S,
        quiet: Callable[[], bool] | None = None,
    ) -> None:
        self._db = db
        self.quiet = quiet
        """Whether the process is quiet now; ``None``: always (write every ``every_s``)."""
        self._oldest = 0.0
        """``loop.time()`` when the oldest span waiting was kept."""
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
        if not self._pending:
            self._oldest = self._loop.time()
        self._pending.append(span)

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        # Writing needs the loop this is called from: await flush() instead.
        return True

    # --- writing ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Write what gathered, every ``every_s`` when it is time (:meth:`due`), until cancelled."""
        while True:
            await asyncio.sleep(self._every_s)
            if self.due():
                await self.flush()

    def due(self) -> bool:
        """Whether the spans waiting should be written now."""
        if not self._pending:
            return False
        return (
            self.quiet is None
            or self.quiet()
            or len(self._pending) >= HIGH_WATER
            or self._loop.time() - self._oldest >= MAX_DELAY_S
        )

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
