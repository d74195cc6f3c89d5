"""Writes that must not be lost: tried again with capped exponential backoff until they go
through, with ops events while they keep failing.

Used where the hot path writes what already happened (a fill, a cancel, a rejection) and has
nobody to hand a failure back to: dropping it would lose it, so it waits and tries again. The
backoff is capped so the write goes through soon after the database or Kafka answers again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

RecordOps = Callable[[str, str, Mapping[str, Any]], None]
"""``record_ops(kind, severity, detail)``: records an ops event without blocking."""


@dataclass(frozen=True)
class Backoff:
    first_s: float = 0.05
    max_s: float = 2.0
    timeout_s: float = 5.0
    """One attempt's bound: a write to a database or broker that hangs counts as failed (the
    writes are idempotent, so one that went through after all is not doubled by the next)."""
    report_every_s: float = 10.0
    """While a write keeps failing, an ops event this often (the first failure has one at once)."""

    def next(self, delay: float) -> float:
        return min(delay * 2, self.max_s)


class FailingStreak:
    """One write's run of failures, told as ops events: ``<area>.retrying`` at the first failure
    and every ``report_every_s`` while it lasts, ``<area>.recovered`` when it ends.

    While the database is down the ``retrying`` events cannot be recorded either (they are
    logged); the ``recovered`` event, recorded once it answers, says how long and how often."""

    def __init__(self, area: str, record_ops: RecordOps, backoff: Backoff, advice: str) -> None:
        self._area = area
        self._record_ops = record_ops
        self._backoff = backoff
        self._advice = advice
        self.attempts = 0
        self._since = 0.0
        self._reported = 0.0

    @property
    def failing(self) -> bool:
        return self.attempts > 0

    def failed(self, exc: BaseException, detail: Mapping[str, Any]) -> None:
        now = time.monotonic()
        if self.attempts == 0:
            self._since = now
        self.attempts += 1
        if self.attempts == 1 or now - self._reported >= self._backoff.report_every_s:
            self._reported = now
            error = f"{type(exc).__name__}: {exc}"
            log.error("%s failing (attempt %d): %s; %s", self._area, self.attempts, error, self._advice)
            self._record_ops(
                f"{self._area}.retrying",
                "critical" if self.attempts > 1 else "warning",
                {
                    **detail,
                    "attempts": self.attempts,
                    "failing_for_s": round(now - self._since, 3),
                    "error": error,
                    "advice": self._advice,
                },
            )

    def succeeded(self, detail: Mapping[str, Any]) -> None:
        if self.attempts == 0:
            return
        failing_for = time.monotonic() - self._since
        log.warning("%s through after %d failed attempts (%.1f s)", self._area, self.attempts, failing_for)
        self._record_ops(
            f"{self._area}.recovered",
            "info",
            {**detail, "failed_attempts": self.attempts, "failing_for_s": round(failing_for, 3)},
        )
        self.attempts = 0


async def until_written(
    write: Callable[[], Awaitable[object]],
    streak: FailingStreak,
    backoff: Backoff,
    detail: Mapping[str, Any],
    retryable: Callable[[BaseException], bool] | None = None,
) -> None:
    """Await ``write()`` until it returns, each attempt bounded by ``backoff.timeout_s``.

    With ``retryable``, only an attempt that timed out or failed as ``retryable`` says is tried
    again; any other error is raised to the caller at once, because trying a write the other
    side refused outright (a violated constraint, a missing grant) again would hold every later
    write behind it for ever."""
    delay = backoff.first_s
    while True:
        try:
            async with asyncio.timeout(backoff.timeout_s):
                await write()
        except Exception as exc:
            if retryable is not None and not isinstance(exc, TimeoutError) and not retryable(exc):
                raise
            streak.failed(exc, detail)
            await asyncio.sleep(delay)
            delay = backoff.next(delay)
            continue
        streak.succeeded(detail)
        return
