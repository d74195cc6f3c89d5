"""The venue's market clock: wall-clock time, optionally scaled, pausable for scripted runs.

``market = origin + (monotonic elapsed) * scale``. With ``scale = 10`` a minute of market time
passes in six seconds (benchmarks run Temporal timers on the same factor). A paused clock stands
still until :meth:`MarketClock.advance` moves it, which makes a run independent of how fast the
machine is: the same seed and the same inputs at the same market times give the same fills.
"""

from __future__ import annotations

import time


class MarketClock:
    def __init__(self, scale: float = 1.0, *, origin_ns: int | None = None, paused: bool = False) -> None:
        if scale <= 0:
            raise ValueError("time scale must be positive")
        self.scale = scale
        self._origin = time.time_ns() if origin_ns is None else origin_ns
        self._mono = time.monotonic_ns()
        self.paused = paused

    def now_ns(self) -> int:
        if self.paused:
            return self._origin
        return self._origin + int((time.monotonic_ns() - self._mono) * self.scale)

    def wall_delay(self, market_ns: int) -> float:
        """Seconds of real time until the market clock reaches ``market_ns`` (inf if paused)."""
        if self.paused:
            return float("inf")
        return max(0.0, (market_ns - self.now_ns()) / self.scale / 1e9)

    def _rebase(self, origin_ns: int) -> None:
        self._origin = origin_ns
        self._mono = time.monotonic_ns()

    def pause(self) -> None:
        if not self.paused:
            self._rebase(self.now_ns())
            self.paused = True

    def resume(self) -> None:
        if self.paused:
            self._rebase(self._origin)
            self.paused = False

    def advance(self, delta_ns: int) -> None:
        """Move a paused clock forward by ``delta_ns`` (a running clock ignores this)."""
        if delta_ns < 0:
            raise ValueError("the market clock does not go backwards")
        if self.paused:
            self._origin += delta_ns

    def set(self, origin_ns: int) -> None:
        """Restart the clock at ``origin_ns`` (used by a reset to replay a run exactly)."""
        self._rebase(origin_ns)

    def set_scale(self, scale: float) -> None:
        if scale <= 0:
            raise ValueError("time scale must be positive")
        self._rebase(self.now_ns())
        self.scale = scale
