"""The circuit breaker's detector (pure): has this symbol crashed?

The other half, which acts on a crash (cancels every open order and halts intake), is
:mod:`hotpath.circuit_breaker`; its docstring lists every module of the breaker.

The reference is the highest price seen within the last ``window_ms`` (a rolling high); the
detector trips when a tick is at or below ``high x (1 - drop_pct / 100)``. Comparisons are exact
Decimal arithmetic, so a drop of exactly ``drop_pct`` trips.

Per tick the work is amortised O(1): a monotonically decreasing deque of (time, price) holds
only the candidates that can still be the window's high, so each tick is pushed and popped at
most once.

Time: ticks carry their own millisecond timestamps. A tick older than the newest one seen
(feeds reorder slightly) is treated as arriving at the newest time, so the window only moves
forward. Once tripped, the detector stays tripped (and ignores ticks) until :meth:`rearm` —
a trader re-arms the breaker, not the market.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class CrashSignal:
    reference_high: Decimal
    price: Decimal
    ts_ms: int
    drop_pct: Decimal
    """Actual drop from the reference high, in percent (exact)."""


class CrashDetector:
    def __init__(self, drop_pct: Decimal, window_ms: int) -> None:
        if not Decimal(0) < drop_pct < Decimal(100):
            raise ValueError(f"drop_pct must be in (0, 100), got {drop_pct}")
        if window_ms <= 0:
            raise ValueError(f"window_ms must be positive, got {window_ms}")
        self.drop_pct = drop_pct
        self.window_ms = window_ms
        self._factor = 1 - drop_pct / 100
        self._highs: deque[tuple[int, Decimal]] = deque()
        self._last_ts: int | None = None
        self.tripped: CrashSignal | None = None

    @property
    def reference_high(self) -> Decimal | None:
        return self._highs[0][1] if self._highs else None

    def on_tick(self, ts_ms: int, price: Decimal) -> CrashSignal | None:
        """Feed one trade/mid price; return the signal on the tick that trips, else None."""
        if self.tripped is not None:
            return None
        if price <= 0:
            raise ValueError(f"price must be positive, got {price}")
        if self._last_ts is not None and ts_ms < self._last_ts:
            ts_ms = self._last_ts
        self._last_ts = ts_ms
        highs = self._highs
        horizon = ts_ms - self.window_ms
        while highs and highs[0][0] < horizon:
            highs.popleft()
        if highs and price <= highs[0][1] * self._factor:
            high = highs[0][1]
            self.tripped = CrashSignal(high, price, ts_ms, (high - price) * 100 / high)
            return self.tripped
        while highs and highs[-1][1] <= price:
            highs.pop()
        highs.append((ts_ms, price))
        return None

    def rearm(self) -> None:
        """Clear the trip and the history: the reference rebuilds from the next ticks."""
        self.tripped = None
        self._highs.clear()
        self._last_ts = None
