"""``floor paper-loop`` with the demo brain, end to end on a floor of its own: its agents' signed
commands through Kafka, the sentry, the sizer, the risk gate, the ledger, ib_async, the paper
gateway and the exit manager; the round trips counted from the stored executions; every trade
audited from the ledger and the venue's executions; zero violations.

The second run lowers the caps below what the signals ask: most entries are then sized by a cap,
not by Kelly, and still none exceeds it."""

from __future__ import annotations

import dataclasses
import json
import uuid
from decimal import Decimal

import pytest

from brain.agents import BrainAgent
from brain.runner import DemoBrain
from config.settings import FloorSettings
from floor.paper_loop_cmd import DemoLoopBrain, PaperLoopRun
from floor.paper_loop_run import LoopEnd
from ledger.keys import register_key
from ledger.risk_profiles import set_profile
from tests.chaos.floor import ACCOUNT, PROFILE, SYMBOLS, ChaosFloor
from tests.paper_loop.running import run_command
from trading.commands import OrderType
from trading.demo_rules import MEAN_REVERSION, MOMENTUM
from trading.paper_loop_audit import AuditResult
from trading.signing import generate_private_key, public_key_bytes


async def demo_agents(floor: ChaosFloor) -> list[BrainAgent]:
    """One agent per symbol, each with a key of its own registered for the venue's account."""
    agents = []
    for rule in (MOMENTUM, MEAN_REVERSION):
        key = generate_private_key()
        agent_id = f"demo-{rule}-{uuid.uuid4().hex[:6]}"
        await register_key(floor.pool, agent_id, public_key_bytes(key), "agent", [ACCOUNT])
        agents.append(BrainAgent(agent_id, rule, key))
    return agents


async def loop(floor: ChaosFloor, trades: int, *, caps_binding_share: str) -> tuple[PaperLoopRun, str]:
    agents = await demo_agents(floor)

    def make_brain(settings: FloorSettings) -> DemoLoopBrain:
        brain = DemoBrain(
            settings,
            agents,
            seed=11,
            caps_binding_share=Decimal(caps_binding_share),
            account=ACCOUNT,
            symbols=SYMBOLS,
            window=3,
            threshold=Decimal("0.0001"),
            max_hold_s=1.0,
            entry_timeout_s=3.0,
            exit_timeout_s=6.0,
        )
        return DemoLoopBrain(brain)

    return await run_command(
        floor.settings, trades, make_brain, time_scale=20.0, stall_s=30.0, timeout=trades * 10.0 + 120.0
    )


def checked(run: PaperLoopRun, output: str, trades: int) -> AuditResult:
    assert run.loop is not None and run.loop.end is LoopEnd.DONE, output
    assert run.loop.round_trips >= trades
    assert not run.loop.open_positions, output  # the brain closed what it held before the loop ended
    assert run.audit is not None and run.audit.result is not None, output
    result = run.audit.result
    assert not result.violations, output
    assert run.code == 0, output
    closed = [t for t in result.trades if t.outcome == "closed"]
    assert len(closed) >= trades, output
    assert run.audit.report_path is not None and run.audit.report_path.exists(), output
    return result


# Fifty trades (30 s): make test-long; the capped run below is the loop's representative in
# make test, and `floor paper-loop --trades 1000` the full one.
@pytest.mark.long
async def test_fifty_demo_trades_through_the_floor_audit_clean(loop_floor: ChaosFloor) -> None:
    run, output = await loop(loop_floor, 50, caps_binding_share="0.2")
    result = checked(run, output, 50)
    # Every order type the floor supports, both sides, and TRAIL exits, as the ledger accepted them.
    assert run.loop is not None
    rows = await loop_floor.pool.fetch(
        "SELECT payload FROM ledger_entries"
        " WHERE seq > $1 AND decision = 'accepted' AND kind IN ('enter', 'exit')",
        run.loop.marks.ledger_seq,
    )
    commands = [json.loads(r["payload"]) for r in rows]
    entry_types = {c["order_type"] for c in commands if c["kind"] == "enter"}
    exit_types = {c["order_type"] for c in commands if c["kind"] == "exit"}
    assert entry_types == {t.value for t in OrderType}, entry_types
    assert "TRAIL" in exit_types, exit_types
    assert {c["side"] for c in commands if c["kind"] == "enter"} == {"BUY", "SELL"}
    assert any(t.binding not in (None, "kelly") for t in result.trades), output


async def test_caps_below_the_signals_bind_most_trades_and_are_never_exceeded(loop_floor: ChaosFloor) -> None:
    low = dataclasses.replace(PROFILE, max_dollar_risk=Decimal("40"), max_trade_size=Decimal("3000"))
    await set_profile(
        loop_floor.pool,
        ACCOUNT,
        low,
        operator_id=loop_floor.operator.agent_id,
        operator_key=loop_floor.operator.private_key,
    )
    run, output = await loop(loop_floor, 6, caps_binding_share="0.2")
    result = checked(run, output, 6)
    sized = [t for t in result.trades if t.sized and t.filled]
    bound = [t for t in sized if t.binding is not None]
    assert len(bound) > len(sized) / 2, output
