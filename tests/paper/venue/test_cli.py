"""Command lines: the venue's arguments and the supervisor spec ``floor up`` uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.settings import FloorSettings
from floor.paper_cmd import venue_spec
from paper.venue.__main__ import parse_args


def test_depth_rate_applies_to_all_symbols_or_one() -> None:
    args = parse_args(
        ["--port", "1", "--control-port", "2", "--token-file", "t"]
        + ["--depth-rate", "5000", "--depth-rate", "aapl=10"]
    )
    assert args.rates == {"*": 5000.0, "AAPL": 10.0}
    assert args.time_scale == 1.0 and args.seed == 7


def test_the_venue_does_not_start_without_a_control_token_file(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--port", "1", "--control-port", "2"])
    assert exit_info.value.code == 2
    assert "--token-file" in capsys.readouterr().err


@pytest.mark.parametrize(
    "bad", [["--depth-rate", "AAPL=fast"], ["--depth-rate", "-5"], ["--time-scale", "0"]]
)
def test_bad_arguments_exit_with_a_message(bad: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--port", "1", "--control-port", "2", "--token-file", "t", *bad])
    assert exit_info.value.code == 2
    assert "error" in capsys.readouterr().err


def test_venue_spec_passes_ports_seed_rates_counters_and_token_file(tmp_path: Path) -> None:
    settings = FloorSettings(var_dir=tmp_path, venue_port=4555, venue_control_port=4556, paper_seed=9)
    spec = venue_spec(settings, time_scale=10.0, depth_rates={"*": 100.0, "MSFT": 5000.0})
    argv = list(spec.argv)
    assert argv[1:3] == ["-m", "paper.venue"]
    args = parse_args(argv[3:])
    assert (args.port, args.control_port, args.seed, args.time_scale) == (4555, 4556, 9, 10.0)
    assert args.rates == {"*": 100.0, "MSFT": 5000.0}
    assert args.counters_file == tmp_path / "paper" / "venue-counters.json"
    assert args.token_file == tmp_path / "paper" / "control.token"
    assert spec.ports == (("127.0.0.1", 4555), ("127.0.0.1", 4556))
