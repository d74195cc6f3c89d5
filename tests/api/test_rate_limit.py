"""Token buckets per source: the burst, the rate, the bound on the table, Retry-After."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from api.rate_limit import TokenBuckets, retry_after_header


def test_a_source_may_send_its_burst_at_once_then_waits_for_the_rate() -> None:
    buckets = TokenBuckets(rate_per_s=10, burst=3)
    assert [buckets.take("a", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a", 0.0) == 0.1  # one token comes back in 1/rate seconds
    assert buckets.take("a", 0.05) == 0.05
    assert buckets.take("a", 0.1) == 0.0


def test_a_bucket_refills_at_the_rate_and_never_above_the_burst() -> None:
    buckets = TokenBuckets(rate_per_s=2, burst=4)
    for _ in range(4):
        buckets.take("a", 0.0)
    assert buckets.take("a", 1.0) == 0.0  # two back after a second
    assert buckets.take("a", 1.0) == 0.0
    assert buckets.take("a", 1.0) > 0
    assert [buckets.take("a", 3600.0) for _ in range(5)][:4] == [0.0] * 4  # a quiet hour: the burst, no more
    assert buckets.take("a", 3600.0) > 0


def test_sources_have_buckets_of_their_own() -> None:
    buckets = TokenBuckets(rate_per_s=1, burst=1)
    assert buckets.take("flood", 0.0) == 0.0
    assert buckets.take("flood", 0.0) > 0
    assert buckets.take("agent", 0.0) == 0.0


def test_the_table_is_bounded_and_drops_the_source_used_least_recently() -> None:
    buckets = TokenBuckets(rate_per_s=1, burst=1, max_sources=3)
    for source in ("a", "b", "c"):
        buckets.take(source, 0.0)
    buckets.take("a", 0.0)  # a is used again: b is now the oldest
    buckets.take("d", 0.0)
    assert len(buckets) == 3
    assert buckets.take("a", 0.0) > 0  # still remembered (empty)
    assert buckets.take("b", 0.0) == 0.0  # forgotten: a fresh bucket


@given(st.lists(st.text(min_size=1, max_size=4), max_size=300))
def test_however_many_sources_come_the_table_stays_within_its_bound(sources: list[str]) -> None:
    buckets = TokenBuckets(rate_per_s=5, burst=2, max_sources=50)
    for i, source in enumerate(sources):
        buckets.take(source, i / 100)
        assert len(buckets) <= 50


def test_retry_after_is_whole_seconds_rounded_up_and_at_least_one() -> None:
    assert [retry_after_header(s) for s in (0.001, 0.5, 1.0, 1.01, 2.5)] == ["1", "1", "1", "2", "3"]
