"""``floor paper-loop`` with no floor running: it starts the whole floor as ``floor up`` does
(Postgres, Kafka, Temporal, the paper venue and gateways, the hot path, worker, bridge, API),
provisions the demo agents' keys as ``floor brain`` does, trades, audits, and stops the floor it
started."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from config.settings import FloorSettings
from floor.paper_loop_cmd import default_brain
from floor.paper_loop_run import LoopEnd
from floor.stack import FloorState
from tests.paper_loop.running import run_command

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.long
async def test_paper_loop_starts_the_floor_trades_audits_and_stops_it() -> None:
    (ROOT / "var").mkdir(exist_ok=True)
    var_dir = Path(tempfile.mkdtemp(prefix="paper-loop-up-", dir=ROOT / "var"))
    settings = FloorSettings.on_free_ports(var_dir)
    try:
        run, output = await run_command(
            settings,
            5,
            lambda s: default_brain(s, seed=3, caps_binding_share=0.2),
            time_scale=20.0,
            stall_s=60.0,
            timeout=400.0,
        )
        assert run.loop is not None and run.loop.end is LoopEnd.DONE, output
        assert run.code == 0, output
        assert "using the running floor" not in output
        assert run.audit is not None and run.audit.report_path is not None
        assert run.audit.report_path.is_relative_to(var_dir / "reports")
        # The floor it started is stopped again.
        assert FloorState.load(var_dir) is None, output
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)
