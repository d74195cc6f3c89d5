"""``floor paper-loop`` end to end on a floor of its own: the running floor reused, trades
driven through Kafka, the sentry, the sizer, the risk gate, the ledger, ib_async and the paper
gateway, then audited from the ledger and the venue's executions, the ledger verified, the
report written, the exit code."""

from __future__ import annotations

from floor.paper_loop_cmd import PaperLoopRun
from floor.paper_loop_run import LoopEnd
from tests.chaos.floor import ACCOUNT, ChaosFloor
from tests.paper_loop.running import run_command
from tests.paper_loop.scripted_brain import ScriptedBrain


async def run_loop(floor: ChaosFloor, trades: int, brain: ScriptedBrain) -> tuple[PaperLoopRun, str]:
    return await run_command(
        floor.settings, trades, lambda _: brain, time_scale=5.0, stall_s=60.0, timeout=240.0
    )


async def test_a_short_loop_is_audited_clean_and_exits_zero(loop_floor: ChaosFloor) -> None:
    brain = ScriptedBrain(loop_floor.settings, loop_floor.agent, ACCOUNT, loop_floor.paper)
    run, output = await run_loop(loop_floor, 3, brain)
    assert run.code == 0, output
    assert run.loop is not None and run.loop.end is LoopEnd.DONE
    assert run.audit is not None and run.audit.result is not None
    audited = run.audit.result
    closed = [t for t in audited.trades if t.outcome == "closed"]
    assert len(closed) == run.loop.round_trips, output
    assert not audited.violations
    assert "using the running floor" in output
    assert "ledger intact" in output and "zero violations" in output, output
    # Sped up for the loop, said so, and set back afterwards.
    assert "clock runs at x5" in output
    assert (await loop_floor.paper.acontrol("GET", "/status"))["time_scale"] == 1
