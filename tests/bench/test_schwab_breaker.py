"""bench.schwab_breaker: the breaker's cancel-all of a Schwab book (the benchmark's own venue and
paper Schwab API): every order cancelled, nearest the market first, never past the order limit."""

from __future__ import annotations

import pytest

from bench.schwab_breaker import main


def test_a_book_within_one_minutes_limit_is_cancelled_at_once_nearest_first() -> None:
    outcome = main(["--orders", "12", "--limit", "120"])
    assert outcome.cancelled == 12 and outcome.refused_429 == 0 and outcome.nearest_first
    assert outcome.seconds < 5.0


@pytest.mark.long
def test_a_book_beyond_the_limit_waits_for_the_window_and_is_never_refused() -> None:
    outcome = main(["--orders", "20", "--limit", "12"])
    assert outcome.cancelled == 20 and outcome.refused_429 == 0 and outcome.nearest_first
    assert outcome.busiest_minute <= 12
    assert 59.0 < outcome.seconds < 90.0  # the 13th cancel waits for the first to leave the minute
