"""A desk's exit and the floor's protective stop never both sell the same shares.

When a desk exits a position the floor protects, the floor withdraws its stop; until the broker
confirms that cancel the stop still works, and a stop the market reaches in that moment would
fill with the exit, past flat. Intake runs here in the test's own process over the real ledger
(Postgres), with the protector wired as the hot path wires it, so the moment between the stop's
cancel and its confirmation can be held open: the exit must not reach the broker in it.
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from hotpath.intake import Intake
from hotpath.ledger_store import LedgerStore
from hotpath.protective_stops import STOP_NOT_WITHDRAWN
from tests.factories import Agent
from tests.hotpath.conftest import VENUE_ACCOUNT
from tests.hotpath.in_process import HELD, SYMBOL, ProtectedLong, RecordingBroker, in_process_intake
from trading.order_events import EventKind, OrderEvent
from trading.risk import Refusal


@pytest.fixture
async def setup(
    ledger_pool: asyncpg.Pool, risk_profiles: None
) -> tuple[Intake, RecordingBroker, list[OrderEvent]]:
    broker, emitted = RecordingBroker(), []
    intake = in_process_intake(LedgerStore(ledger_pool), broker, emitted)
    await intake.warm()
    return intake, broker, emitted


async def test_the_exit_is_written_once_the_floors_stop_is_confirmed_cancelled(
    setup: tuple[Intake, RecordingBroker, list[OrderEvent]], agent: Agent
) -> None:
    intake, broker, _ = setup
    long = ProtectedLong(intake)
    cid, task = await long.exit_in_flight(agent)
    assert broker.placed == []

    long.stop_cancelled()
    outcome = await asyncio.wait_for(task, 5.0)
    assert outcome.reason is None
    assert [(o.order_ref, o.quantity) for o in broker.placed] == [(cid, HELD)]


async def test_the_exit_is_refused_when_the_stop_filled_before_its_cancel_landed(
    setup: tuple[Intake, RecordingBroker, list[OrderEvent]], agent: Agent, ledger_pool: asyncpg.Pool
) -> None:
    """Sent at once (as before), the exit would have sold ten shares the stop had already sold:
    a short of ten nobody asked for."""
    intake, broker, emitted = setup
    long = ProtectedLong(intake)
    cid, task = await long.exit_in_flight(agent)

    long.stop_filled()
    outcome = await asyncio.wait_for(task, 5.0)
    assert outcome.reason == Refusal.EXIT_EXCEEDS_POSITION.value
    assert broker.placed == []
    assert [(e.kind, e.reason) for e in emitted if e.command_id == cid] == [
        (EventKind.REJECTED, Refusal.EXIT_EXCEEDS_POSITION.value)
    ]
    assert intake.book.position(VENUE_ACCOUNT, SYMBOL) == 0
    assert intake.book.counted_remaining(cid) is None  # no longer counted working
    rows = await ledger_pool.fetch("SELECT decision FROM ledger_entries WHERE command_id = $1", cid)
    assert [r["decision"] for r in rows] == ["accepted"]  # what was decided stands, ended unsent


async def test_a_stop_never_confirmed_ended_keeps_the_exit_from_the_broker_and_says_so(
    setup: tuple[Intake, RecordingBroker, list[OrderEvent]], agent: Agent
) -> None:
    intake, broker, emitted = setup
    long = ProtectedLong(intake, withdraw_wait_s=0.3)
    cid, task = await long.exit_in_flight(agent)

    outcome = await asyncio.wait_for(task, 5.0)
    assert outcome.reason == STOP_NOT_WITHDRAWN
    assert broker.placed == []
    assert [(e.kind, e.reason) for e in emitted if e.command_id == cid] == [
        (EventKind.REJECTED, STOP_NOT_WITHDRAWN)
    ]
    [(severity, detail)] = [(sev, d) for kind, sev, d in long.ops if kind == STOP_NOT_WITHDRAWN]
    assert severity == "critical" and detail["stops"] == [long.stop.command_id]
