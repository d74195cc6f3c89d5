"""bench.exits' figures: modifies split by how they reached the socket, and the same-run baseline
replays the run's own ticks through the bare decision."""

from __future__ import annotations

from decimal import Decimal

from bench.exits import Run, baseline, parse_args
from hotpath.exit_manager import StopMoved


def _move(recv: int, write: int, *, delayed: bool = False) -> StopMoved:
    return StopMoved("s1", "AAPL", Decimal("99"), Decimal("99.5"), Decimal("100"), recv, write, delayed)


def test_modifies_are_split_into_written_at_once_delayed_and_queued_by_the_client() -> None:
    run = Run("paced", moves=[_move(0, 1_000_000), _move(0, 50_000_000, delayed=True), _move(0, 0)])
    assert (run.written_at_once.n, run.written_at_once.p99_us) == (1, 1000.0)
    assert (run.delayed.n, run.delayed.p99_us) == (1, 50_000.0)
    assert run.queued == 1


def test_the_baseline_decides_each_recorded_tick_that_moves_a_stop() -> None:
    run = Run("paced")
    run.stops["s1"] = ("AAPL", Decimal("99.00"), Decimal("1"))  # trails 1% below
    run.ticks = [
        ("AAPL", Decimal("100")),
        ("AAPL", Decimal("101")),
        ("AAPL", Decimal("100.5")),
        ("MSFT", Decimal("1")),
    ]
    figures = baseline(run)
    assert figures.n == 1  # only the rise to 101 moves the stop (to 99.99)


def test_quick_runs_are_short() -> None:
    assert parse_args(["--quick"]).seconds == 8.0 and parse_args([]).positions == 50
