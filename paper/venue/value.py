"""The value of a symbol in the agent model, and the foresight informed traders have of it.

The value ``v`` (in ticks, a float) is a geometric Brownian motion whose volatility is itself
random (a stochastic-volatility model): ``sigma_t = sigma * exp(h_t - s^2)`` where the
log-volatility ``h`` is an Ornstein-Uhlenbeck process with stationary standard deviation ``s``
(``AgentParams.vol_of_vol``) and mean-reversion time ``AgentParams.vol_memory_s``. The
``- s^2`` keeps the mean variance at the symbol's ``volatility``, so the calibrated annual
volatility is unchanged; what changes is that calm and busy stretches alternate.

Returns over horizons shorter than the volatility's memory are then a variance mixture of
normals: heavy tails (excess kurtosis up to ``3 (exp(4 s^2) - 1)``) and volatility clustering
(absolute returns autocorrelated over about ``vol_memory_s``), two of the stylised facts of
Cont (2001), "Empirical properties of asset returns: stylized facts and statistical issues".

The market learns the value late: :meth:`ValuePath.advance` returns the value as it was
``foresight_events`` model events ago, which the agent model makes its reference price, while
:attr:`ValuePath.value` (now) is what informed traders see.
"""

from __future__ import annotations

import math
import random
from collections import deque

from paper.venue.symbols import AgentParams

VOL_STEP_S = 1.0
"""The log-volatility moves once per second of market time (its memory is many minutes): one
Gaussian draw per model event instead of two keeps the model cheap at high event rates."""


class ValuePath:
    __slots__ = (
        "value", "log_vol", "past", "_sigma_per_sqrt_s", "_s", "_memory_s", "_scale", "_pending_s",
    )  # fmt: skip

    def __init__(self, price_ticks: float, sigma_per_sqrt_s: float, params: AgentParams) -> None:
        self.value = price_ticks
        self.log_vol = 0.0
        self.past: deque[float] = deque([price_ticks] * max(1, params.foresight_events))
        """The values of the last ``foresight_events`` events, oldest first."""
        self._sigma_per_sqrt_s = sigma_per_sqrt_s
        self._s = params.vol_of_vol
        self._memory_s = params.vol_memory_s
        self._scale = sigma_per_sqrt_s * math.exp(-self._s * self._s)
        """``sigma_per_sqrt_s * exp(log_vol - s^2)``: the volatility now, per root second."""
        self._pending_s = 0.0

    def advance(self, dt_s: float, rng: random.Random) -> float:
        """Move the value (and its volatility) on by ``dt_s`` seconds of market time; returns
        the value ``foresight_events`` events ago (what the market knows now)."""
        s = self._s
        if s > 0:
            self._pending_s += dt_s
            if self._pending_s >= VOL_STEP_S:
                # Exact OU step: h <- a h + s sqrt(1 - a^2) N(0, 1).
                a = math.exp(-self._pending_s / self._memory_s)
                self.log_vol = a * self.log_vol + s * math.sqrt(1.0 - a * a) * rng.gauss(0.0, 1.0)
                self._scale = self._sigma_per_sqrt_s * math.exp(self.log_vol - s * s)
                self._pending_s = 0.0
        if dt_s > 0:
            sigma = self._scale * math.sqrt(dt_s)
            self.value *= math.exp(sigma * rng.gauss(0.0, 1.0) - 0.5 * sigma * sigma)
        past = self.past
        past.append(self.value)
        return past.popleft()

    def jump_to(self, price_ticks: float) -> None:
        """A scripted move: the value is ``price_ticks`` now and was all along (nobody foresaw it)."""
        self.value = price_ticks
        n = len(self.past)
        self.past.clear()
        self.past.extend([price_ticks] * n)

    def volatility_factor(self) -> float:
        """The current volatility as a multiple of the symbol's average (1.0 on average)."""
        return math.exp(self.log_vol - self._s * self._s)
