"""bench.hotpath with tracing off and on in the same run: both printed side by side, with the
ratio of each figure."""

from __future__ import annotations

from rich.console import Console

from bench.figures import Figures
from bench.hotpath import parse_args
from bench.hotpath_report import RunResult, tracing_report


def test_the_two_runs_of_a_plan_are_printed_with_their_ratio() -> None:
    off = RunResult("load, tracing off", 200.0, in_process=Figures(600, 1000.0, 2000.0, 3000.0))
    on = RunResult("load, tracing on", 200.0, in_process=Figures(600, 1100.0, 3000.0, 4000.0))
    off.cpu_per_command_us, on.cpu_per_command_us = 400.0, 500.0
    console = Console(width=200, record=True, color_system=None)
    tracing_report(console, [off, on])
    text = console.export_text()
    assert "load run: tracing off vs on" in text
    assert "1,000.0 / 2,000.0" in text and "1,100.0 / 3,000.0" in text
    assert "x1.10" in text and "x1.50" in text
    assert "400 µs off, 500 µs on (x1.25" in text


def test_both_modes_run_unless_told() -> None:
    assert parse_args(["--quick"]).tracing == "both"
    assert parse_args(["--quick", "--tracing", "on"]).tracing == "on"
