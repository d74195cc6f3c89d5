"""bench.subscriptions: the latency rule, and a short run of every path (the relay baseline, the
real API's GraphQL ``orderBook``, the hub alone)."""

from __future__ import annotations

import pytest

from bench.subscriptions import latencies_ns, main


def test_an_update_is_timed_to_the_first_frame_that_carries_it_and_uncarried_ones_are_counted() -> None:
    updates = [100, 200, 300, 400]  # venue µs
    frames = [(150_000, 50), (250_000, 200), (260_000, 150), (500_000, 300)]  # (receive ns, newest µs)
    got, uncarried = latencies_ns(updates, frames)
    # 100 and 200 arrive merged in the second frame; the third frame is older and carries nothing.
    assert got == [250_000 - 100_000, 250_000 - 200_000, 500_000 - 300_000]
    assert uncarried == 1  # 400 never arrived


# A benchmark run (10 s): make test-long. The subscriptions' order and losslessness are tested
# in tests/api; this checks the benchmark program still runs end to end.
@pytest.mark.long
def test_a_short_run_loses_nothing_keeps_order_and_builds_the_venues_book() -> None:
    results = main(
        [
            "--seconds",
            "2",
            "--rate",
            "200",
            "--subscribers",
            "5",
            "--paths",
            "relay,graphql,hub",
            "--drain",
            "2",
        ]
    )
    by_path = {r.path: r for r in results}
    assert set(by_path) == {"kafka hop", "relay", "graphql", "hub"}
    for r in results:
        assert not r.errors, r.errors
        assert (r.lost, r.out_of_order) == (0, 0), r.path
        # 400 updates, each timed for every subscriber.
        assert r.figures.n == 400 * (1 if r.path == "kafka hop" else 5)
        assert r.figures.p99_us < 2_000_000, r.path  # generous: a loaded 2-core machine
    assert by_path["hub"].books_wrong == by_path["graphql"].books_wrong == 0
