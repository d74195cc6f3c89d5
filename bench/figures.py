"""Latency figures every benchmark prints: nearest-rank p50 / p99 / max.

Nearest rank, no interpolation: the p-th percentile of n sorted samples is the sample at rank
ceil(p/100 * n) (1-based), so every figure printed is a latency that was actually measured.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


def percentile(sorted_values: Sequence[T], q: float) -> T | float:
    """Nearest-rank ``q``-th percentile (0 < q <= 100) of already sorted values (floats,
    Decimals, ...); NaN if there are none."""
    if not sorted_values:
        return math.nan
    rank = max(1, min(len(sorted_values), math.ceil(q / 100 * len(sorted_values))))
    return sorted_values[rank - 1]


@dataclass(frozen=True)
class Figures:
    """p50 / p99 / max of a sample, in microseconds."""

    n: int
    p50_us: float
    p99_us: float
    max_us: float

    @classmethod
    def of(cls, samples_ns: Sequence[int]) -> Figures:
        """From integer nanosecond samples (``time.perf_counter_ns`` differences)."""
        if not samples_ns:
            return cls(0, math.nan, math.nan, math.nan)
        ordered = sorted(samples_ns)
        return cls(
            len(ordered), percentile(ordered, 50) / 1000, percentile(ordered, 99) / 1000, ordered[-1] / 1000
        )

    def cells(self) -> str:
        """``p50 / p99 / max`` in milliseconds."""
        return " / ".join(f"{v / 1000:.2f}" for v in (self.p50_us, self.p99_us, self.max_us))
