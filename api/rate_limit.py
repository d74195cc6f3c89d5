"""Per-source token buckets: how many requests the door takes from one client address.

Each source has a bucket of ``burst`` tokens that refills at ``rate_per_s``; a request takes
one token, and a request that finds less than one is refused with the time until one is back.
Pure: the caller passes the clock (seconds, monotonic).

The table of buckets is bounded (:data:`MAX_SOURCES`): when a new source comes and the table is
full, the bucket used least recently is dropped. Dropping it forgets at most that source's
debt; a bucket left alone for ``burst / rate_per_s`` seconds is full again anyway, and a full
bucket is the same as none.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

MAX_SOURCES = 10_000
"""Buckets kept, about 100 bytes each."""


@dataclass
class _Bucket:
    tokens: float
    at: float


class TokenBuckets:
    def __init__(self, rate_per_s: float, burst: int, *, max_sources: int = MAX_SOURCES) -> None:
        if rate_per_s <= 0 or burst < 1 or max_sources < 1:
            raise ValueError("the rate must be positive, the burst and the table at least 1")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._max = max_sources
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, source: str, now: float) -> float:
        """Take a token for one request from ``source``: 0.0 if it may pass, otherwise the
        seconds until its bucket holds a token again."""
        bucket = self._buckets.get(source)
        if bucket is None:
            if len(self._buckets) >= self._max:
                self._buckets.popitem(last=False)
            bucket = self._buckets[source] = _Bucket(float(self.burst), now)
        else:
            self._buckets.move_to_end(source)
            elapsed = max(0.0, now - bucket.at)
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate_per_s)
            bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate_per_s


def retry_after_header(wait_s: float) -> str:
    """HTTP ``Retry-After`` is whole seconds: the wait rounded up, and at least 1, so a client
    that waits as told always finds a token."""
    return str(max(1, math.ceil(wait_s)))
