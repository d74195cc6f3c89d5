"""A cancel that finds nothing ends in a named outcome, never a silent skip.

* The floor's map holds an order as working that the broker has no order for (the adapter
  raises ``UnknownOrderRef``, as :mod:`brokers.ib_order_path` does for an ``orderRef`` it
  neither placed nor found open at the broker): the cancel is ledgered, and the order ends
  ``cancelled`` with ``cancel.unknown_at_broker``, a record every reader of ``orders.events``
  and the state rows sees, folded by the one order machine as a cancelled order.
* An id no order of the floor ever had: refused ``intake.unknown_order`` in the ledger and a
  warning-level security event (recorded and published on ``security.events``).
* An order that has ended: refused ``cancel.order_ended``.

Intake runs in this process over the real ledger (:mod:`tests.hotpath.in_process`).
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import asyncpg

from brokers.base import UnknownOrderRef
from hotpath.cancel_commands import ORDER_ENDED, UNKNOWN_AT_BROKER, UNKNOWN_ORDER
from hotpath.floor_orders import FloorOrder
from hotpath.intake import Intake
from hotpath.ledger_store import LedgerStore
from ledger.order_events import record_order_event
from tests.factories import Agent, cancel_all_command, cancel_command, enter_command
from tests.hotpath.conftest import VENUE_ACCOUNT
from tests.hotpath.in_process import in_process_intake
from trading.order_events import EventKind, OrderEvent
from trading.order_state import order_state
from trading.orders import OrderState


class _KnowsNothing:
    """A broker session that has no order at all (a restarted adapter, say)."""

    def __init__(self) -> None:
        self.cancels: list[str] = []

    async def net_liquidation(self, account: str) -> Decimal:
        return Decimal("1000000")

    def cancel(self, order_ref: str) -> int:
        self.cancels.append(order_ref)
        raise UnknownOrderRef(order_ref)


async def _floor_with_working_order(
    ledger_pool: asyncpg.Pool, agent: Agent
) -> tuple[Intake, _KnowsNothing, FloorOrder, list[OrderEvent]]:
    broker, emitted = _KnowsNothing(), []
    intake = in_process_intake(LedgerStore(ledger_pool), broker, emitted)
    await intake.warm()
    order = FloorOrder.from_command(enter_command(agent.agent_id, account=VENUE_ACCOUNT, quantity=5), 5)
    intake.orders[order.command_id] = order
    intake.book.order_working(order)
    return intake, broker, order, emitted


async def _decision(pool: asyncpg.Pool, command_id: str) -> str | None:
    return await pool.fetchval(
        "SELECT decision FROM ledger_entries WHERE command_id = $1 AND authenticated", command_id
    )


def _ended_at_broker(order: FloorOrder, emitted: list[OrderEvent], intake: Intake) -> None:
    [record] = emitted
    assert (record.command_id, record.kind, record.reason) == (
        order.command_id,
        EventKind.CANCELLED,
        UNKNOWN_AT_BROKER,
    )
    assert order.done and order.machine.state is OrderState.CANCELLED
    assert order.command_id not in intake.book.working.get(VENUE_ACCOUNT, set())
    view = order_state([order.event(EventKind.ACCEPTED), record])
    assert view is not None and view.state is OrderState.CANCELLED and view.terminal


async def test_a_cancel_the_broker_knows_nothing_of_ends_the_order_with_a_named_record(
    ledger_pool: asyncpg.Pool, agent: Agent
) -> None:
    intake, broker, order, emitted = await _floor_with_working_order(ledger_pool, agent)
    cancel = agent.sign(cancel_command(agent.agent_id, order.command_id, account=VENUE_ACCOUNT))

    outcome = await intake.handle(cancel.to_wire(), source="test")

    assert outcome.reason == UNKNOWN_AT_BROKER
    assert broker.cancels == [order.command_id]
    assert await _decision(ledger_pool, cancel.command.command_id) == "accepted"
    _ended_at_broker(order, emitted, intake)


async def test_a_cancel_all_ends_each_order_the_broker_knows_nothing_of(
    ledger_pool: asyncpg.Pool, agent: Agent
) -> None:
    intake, broker, order, emitted = await _floor_with_working_order(ledger_pool, agent)
    cancel_all = agent.sign(cancel_all_command(agent.agent_id, account=VENUE_ACCOUNT))

    outcome = await intake.handle(cancel_all.to_wire(), source="test")

    assert outcome.reason is None
    assert broker.cancels == [order.command_id]
    _ended_at_broker(order, emitted, intake)


async def _security(pool: asyncpg.Pool, command_id: str) -> list[tuple[str, str]]:
    rows = await pool.fetch("SELECT reason, severity FROM security_events WHERE command_id = $1", command_id)
    return [(r["reason"], r["severity"]) for r in rows]


async def test_a_cancel_of_an_id_no_order_ever_had_is_refused_and_a_security_event(
    ledger_pool: asyncpg.Pool, agent: Agent
) -> None:
    intake, broker, order, emitted = await _floor_with_working_order(ledger_pool, agent)
    target = f"cmd-{uuid.uuid4().hex}"
    cancel = agent.sign(cancel_command(agent.agent_id, target, account=VENUE_ACCOUNT))

    outcome = await intake.handle(cancel.to_wire(), source="test")

    assert outcome.reason == UNKNOWN_ORDER
    assert broker.cancels == []
    assert await _decision(ledger_pool, cancel.command.command_id) == "rejected"
    assert await _security(ledger_pool, cancel.command.command_id) == [(UNKNOWN_ORDER, "warning")]
    assert not order.done and emitted == []


async def test_a_cancel_of_an_order_that_ended_before_a_restart_is_refused_quietly(
    ledger_pool: asyncpg.Pool, agent: Agent
) -> None:
    """The floor's own order, filled and recorded, no longer in the map: not a security matter."""
    intake, broker, _, _ = await _floor_with_working_order(ledger_pool, agent)
    ended = FloorOrder.from_command(enter_command(agent.agent_id, account=VENUE_ACCOUNT, quantity=5), 5)
    await record_order_event(ledger_pool, ended.event(EventKind.ACCEPTED))
    cancel = agent.sign(cancel_command(agent.agent_id, ended.command_id, account=VENUE_ACCOUNT))

    outcome = await intake.handle(cancel.to_wire(), source="test")

    assert outcome.reason == UNKNOWN_ORDER
    assert await _decision(ledger_pool, cancel.command.command_id) == "rejected"
    assert await _security(ledger_pool, cancel.command.command_id) == []


async def test_a_cancel_of_an_order_that_has_ended_is_refused_by_name(
    ledger_pool: asyncpg.Pool, agent: Agent
) -> None:
    intake, broker, order, emitted = await _floor_with_working_order(ledger_pool, agent)
    order.apply_fill(f"{order.command_id}.x", 5, Decimal("189.50"))
    cancel = agent.sign(cancel_command(agent.agent_id, order.command_id, account=VENUE_ACCOUNT))

    outcome = await intake.handle(cancel.to_wire(), source="test")

    assert outcome.reason == ORDER_ENDED
    assert broker.cancels == []
    assert await _decision(ledger_pool, cancel.command.command_id) == "rejected"
    assert emitted == []
