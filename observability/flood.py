"""Security events under a flood: recorded per source and window, not per request.

A source that sends the same refused request a thousand times would otherwise write a thousand
rows to ``security_events`` (append-only, on the ledger's disk), a thousand ``security.events``
records and a thousand log lines. Instead, per (source address, reason) and window:

- the first :data:`FULL_EVENTS_PER_WINDOW` events are recorded as they come, in full;
- further ones are only counted;
- when the window closes (or the process stops) one summary event carries the count, the
  window's bounds and the highest severity seen. A window with nothing counted needs no summary.

So the table grows by at most ``FULL_EVENTS_PER_WINDOW + 1`` rows per source, reason and window,
whatever the request rate. :class:`FloodWindows` is the bookkeeping (pure, clock passed in);
:class:`FloodSummary` puts it in front of a :class:`~observability.security.SecurityLog`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from observability.security import SecurityRecorder
from trading.security_events import RANK, SecurityEvent, Severity

log = logging.getLogger("floor.security")

FULL_EVENTS_PER_WINDOW = 5
"""Events of one reason from one source recorded in full per window; more than one, so that a
single honest mistake does not hide the attack that follows it from the same address."""
MAX_WINDOWS = 10_000
"""Open windows kept in memory. A new source beyond this closes the oldest window early (its
summary is written at once), so the table of windows stays bounded however many addresses
a flood comes from."""
REPEATS = "repeats"
"""The summary's ``detail`` entry: how many events the window counted but did not record."""


@dataclass
class _Window:
    first: SecurityEvent
    start: datetime
    recorded: int = 1
    repeats: int = 0
    severity: Severity = Severity.WARNING

    def summary(self, end: datetime) -> SecurityEvent | None:
        if not self.repeats:
            return None
        start, stop = self.start.isoformat(), end.isoformat()
        return SecurityEvent(
            event_id=uuid.uuid4().hex,
            ts=end,
            title=self.first.title,
            reason=self.first.reason,
            severity=self.severity,
            source=self.first.source,
            source_address=self.first.source_address,
            detail={
                REPEATS: str(self.repeats),
                "window_start": start,
                "window_end": stop,
                "detail": f"{self.repeats} more {self.first.reason} from {self.first.source_address} "
                f"between {start} and {stop}, counted but not recorded one by one",
            },
        )


class FloodWindows:
    """Which events to record in full, and the summaries of windows that have closed."""

    def __init__(
        self,
        window: timedelta,
        *,
        full_per_window: int = FULL_EVENTS_PER_WINDOW,
        max_windows: int = MAX_WINDOWS,
    ) -> None:
        if window <= timedelta(0) or full_per_window < 1 or max_windows < 1:
            raise ValueError("the window must be positive and keep at least one event and one window")
        self.window = window
        self._full = full_per_window
        self._max = max_windows
        # Insertion order is window-start order: the oldest window is always first.
        self._open: OrderedDict[tuple[str | None, str], _Window] = OrderedDict()

    def __len__(self) -> int:
        return len(self._open)

    def admit(self, event: SecurityEvent, now: datetime) -> tuple[bool, list[SecurityEvent]]:
        """Whether to record ``event`` in full, and summaries to write now (windows that closed
        before it came, or the oldest one pushed out by a new source)."""
        summaries = self.due(now)
        key = (event.source_address, event.reason)
        window = self._open.get(key)
        if window is None:
            if len(self._open) >= self._max:
                _, oldest = self._open.popitem(last=False)
                summaries += _some(oldest.summary(now))
            self._open[key] = _Window(event, now, severity=event.severity)
            return True, summaries
        if RANK[event.severity] > RANK[window.severity]:
            window.severity = event.severity
        if window.recorded < self._full:
            window.recorded += 1
            return True, summaries
        window.repeats += 1
        return False, summaries

    def due(self, now: datetime) -> list[SecurityEvent]:
        """Close every window that has run its length; the summaries of those that counted."""
        summaries: list[SecurityEvent] = []
        while self._open:
            key, window = next(iter(self._open.items()))
            if now < window.start + self.window:
                break
            del self._open[key]
            summaries += _some(window.summary(window.start + self.window))
        return summaries

    def drain(self, now: datetime) -> list[SecurityEvent]:
        """Close every window now (at shutdown)."""
        summaries = [s for w in self._open.values() if (s := w.summary(now)) is not None]
        self._open.clear()
        return summaries


def _some(summary: SecurityEvent | None) -> list[SecurityEvent]:
    return [] if summary is None else [summary]


class FloodSummary:
    """A :class:`SecurityRecorder` that records through ``inner`` what :class:`FloodWindows`
    admits, and writes the summaries of closed windows: from :meth:`run` as windows close,
    and all of them from :meth:`close`."""

    def __init__(
        self, inner: SecurityRecorder, window: timedelta, *, full_per_window: int = FULL_EVENTS_PER_WINDOW
    ) -> None:
        self._inner = inner
        self._windows = FloodWindows(window, full_per_window=full_per_window)

    async def record(self, event: SecurityEvent) -> None:
        full, summaries = self._windows.admit(event, datetime.now(UTC))
        await self._write(summaries)
        if full:
            await self._inner.record(event)

    async def run(self) -> None:
        """Write summaries as windows close, until cancelled. Checks at least twice a window
        (and at least every second), so a summary is at most that late."""
        interval = min(1.0, self._windows.window.total_seconds() / 2)
        while True:
            await asyncio.sleep(interval)
            await self._write(self._windows.due(datetime.now(UTC)))

    async def close(self) -> None:
        await self._write(self._windows.drain(datetime.now(UTC)))

    async def _write(self, summaries: list[SecurityEvent]) -> None:
        for summary in summaries:
            try:
                await self._inner.record(summary)
            except Exception:
                # The count is not lost to whoever reads the log; the table missed it (the
                # database is down, and the door answers 503 meanwhile).
                log.exception("flood summary not stored: %s", summary.encode().decode())
