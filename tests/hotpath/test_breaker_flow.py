"""Circuit breaker end to end: a flash crash at the paper venue cancels every open order and
halts intake until a trader re-arms it with ``floor breaker arm``."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

import asyncpg
from aiokafka import AIOKafkaProducer
from typer.testing import CliRunner

from floor.breaker_cmd import app as breaker_app
from tests.fixtures.hotpath import Agent, enter_command
from tests.fixtures.paper import PaperStack
from tests.helpers import eventually
from tests.hotpath.conftest import VENUE_ACCOUNT, HotPathProcess
from tests.hotpath.test_hotpath_flow import CENT, await_event, kinds_of, quote, send
from trading.order_events import EventKind


async def test_a_flash_crash_cancels_every_open_order_and_halts_until_rearmed(
    hotpath: HotPathProcess,
    paper: PaperStack,
    agent: Agent,
    command_producer: AIOKafkaProducer,
    kafka_bootstrap: str,
    ledger_pool: asyncpg.Pool,
) -> None:
    bid, _ = await quote(paper, "AAPL")
    resting = (bid * Decimal("0.80")).quantize(CENT, ROUND_DOWN)  # below the whole crash: never fills
    working = agent.sign(
        enter_command(agent.agent_id, account=VENUE_ACCOUNT, limit=resting, stop=resting - 5, quantity=2)
    )
    await send(command_producer, working)
    await await_event(kafka_bootstrap, working.command.command_id, EventKind.SUBMITTED)
    assert (await paper.acontrol("GET", "/status"))["open_orders"] >= 1

    await paper.acontrol("POST", "/symbols/AAPL/flash-crash", {"pct": 15, "ms": 300})
    try:
        cancelled = await await_event(kafka_bootstrap, working.command.command_id, EventKind.CANCELLED)
        assert cancelled.filled_qty == 0
        await eventually(lambda: _open_orders(paper, 0), timeout=10.0)
        health = await hotpath.health()
        assert health["trading_state"] == "HALTED"
        trip = health["last_trip"]
        assert isinstance(trip, dict) and trip["symbol"] == "AAPL" and Decimal(trip["drop_pct"]) >= 10
        assert trip["tick_to_cancel_us"] < 50_000  # goal: within 50 ms of the crashing tick

        halted = agent.sign(
            enter_command(agent.agent_id, account=VENUE_ACCOUNT, limit=resting, stop=resting - 5)
        )
        await send(command_producer, halted)
        refused = await await_event(kafka_bootstrap, halted.command.command_id, *EventKind)
        assert (refused.kind, refused.reason) == (EventKind.REJECTED, "breaker.halted")
        assert await kinds_of(ledger_pool, halted.command.command_id) == ["rejected"]
    finally:
        result = CliRunner().invoke(
            breaker_app,
            ["arm"],
            env={"FLOOR_HOTPATH_HEALTH_PORT": str(hotpath.settings.hotpath_health_port)},
        )
        # Restore the price for the rest of the session (up 1/0.85 - 1 = 17.65%).
        await paper.acontrol("POST", "/symbols/AAPL/move", {"pct": 17.65, "ms": 0})
    assert result.exit_code == 0 and "re-armed" in result.output, result.output
    assert (await hotpath.health())["trading_state"] == "ACTIVE"
    ops = await ledger_pool.fetch(
        "SELECT kind, severity FROM ops_events WHERE source = 'hotpath' AND kind LIKE 'breaker.%' ORDER BY id"
    )
    assert [(r["kind"], r["severity"]) for r in ops][-2:] == [
        ("breaker.tripped", "critical"),
        ("breaker.armed", "warning"),
    ]

    accepted = agent.sign(
        enter_command(agent.agent_id, account=VENUE_ACCOUNT, limit=resting, stop=resting - 5, quantity=1)
    )
    await send(command_producer, accepted)
    after = await await_event(
        kafka_bootstrap, accepted.command.command_id, EventKind.SUBMITTED, EventKind.REJECTED
    )
    assert after.kind is EventKind.SUBMITTED, after.reason


async def _open_orders(paper: PaperStack, expected: int) -> bool:
    return bool((await paper.acontrol("GET", "/status"))["open_orders"] == expected)
