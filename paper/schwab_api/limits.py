"""The order-request limit: place, replace and cancel requests per account per minute.

Schwab's one documented limit is the app's "order limit" (requests that make, cancel or
replace orders, per minute; schwab-py advises asking for 120). Whether Schwab counts in a
fixed or a sliding window, and what its 429 carries, is not published: the emulator counts over
a sliding 60 s window per account and answers 429 with ``Retry-After`` (the seconds until the
oldest counted request leaves the window).
"""

from __future__ import annotations

import math
from collections import deque

WINDOW_S = 60.0


class OrderRateLimiter:
    """Sliding-window counter per account; ``per_minute`` 0 means no limit."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._sent: dict[str, deque[float]] = {}
        self.refused = 0

    def try_acquire(self, account: str, now: float) -> float | None:
        """Count one request at ``now`` (monotonic s); ``None`` if allowed, else the seconds
        until one is allowed again (nothing counted)."""
        if self.per_minute <= 0:
            return None
        sent = self._sent.setdefault(account, deque())
        while sent and sent[0] <= now - WINDOW_S:
            sent.popleft()
        if len(sent) >= self.per_minute:
            self.refused += 1
            return max(sent[0] + WINDOW_S - now, 0.001)
        sent.append(now)
        return None

    def in_window(self, account: str, now: float) -> int:
        sent = self._sent.get(account, deque())
        return sum(1 for t in sent if t > now - WINDOW_S)

    def set_limit(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._sent.clear()


def retry_after_header(wait_s: float) -> str:
    return str(max(1, math.ceil(wait_s)))
