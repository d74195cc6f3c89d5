"""The benchmarks' percentiles: nearest rank, so every printed figure is a measured sample."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from bench.figures import Figures, percentile


def test_nearest_rank_on_one_to_a_hundred() -> None:
    values = list(range(1, 101))
    assert [percentile(values, q) for q in (1, 50, 99, 100)] == [1, 50, 99, 100]
    # Three samples: p50 is the 2nd, p99 the 3rd (rank ceil(0.99 * 3) = 3), never a blend.
    assert (percentile([10, 20, 30], 50), percentile([10, 20, 30], 99)) == (20, 30)
    assert math.isnan(percentile([], 50))


@given(st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=300))
def test_figures_are_samples_in_order(samples: list[int]) -> None:
    f = Figures.of(samples)
    microseconds = {s / 1000 for s in samples}
    assert f.n == len(samples)
    assert {f.p50_us, f.p99_us, f.max_us} <= microseconds
    assert f.p50_us <= f.p99_us <= f.max_us == max(samples) / 1000
    # At least half the samples are at or below p50, and at least 99% at or below p99.
    assert sum(s / 1000 <= f.p50_us for s in samples) * 2 >= len(samples)
    assert sum(s / 1000 <= f.p99_us for s in samples) * 100 >= 99 * len(samples)


def test_no_samples_is_nan_not_an_error() -> None:
    f = Figures.of([])
    assert f.n == 0 and math.isnan(f.p50_us) and math.isnan(f.max_us)
