"""Client helpers: an iceberg command becomes the Sniper's input; session changes reach the
account's BrokerSession through signal-with-start."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from temporal.client import NotAnIceberg, iceberg_input, report_session_change
from tests.helpers import eventually
from trading.commands import Command, CommandKind, Edge, Side, TimeInForce
from workflows.broker_session import BrokerSession, Change, SessionChange, SessionViewQuery

EDGE = Edge(Decimal("0.6"), Decimal("1.5"), Decimal("180"))


def _iceberg(**kw: object) -> Command:
    fields: dict[str, object] = dict(
        kind=CommandKind.ICEBERG,
        command_id="ice-77",
        agent_id="alpha",
        account="DU1",
        nonce="n-77",
        issued_at=datetime(2026, 11, 24, 14, 0, tzinfo=UTC),
        symbol="AAPL",
        side=Side.SELL,
        edge=EDGE,
        tif=TimeInForce.DAY,
        quantity=10_000,
        display_size=100,
        limit_price=Decimal("190.5"),
    )
    fields.update(kw)
    return Command(**fields)  # type: ignore[arg-type]


def test_iceberg_command_becomes_the_sniper_input() -> None:
    inp = iceberg_input(_iceberg())
    assert (inp.symbol, inp.side, inp.total_qty, inp.display_qty) == ("AAPL", Side.SELL, 10_000, 100)
    assert inp.limit_price == Decimal("190.5") and inp.edge == EDGE and inp.agent_id == "sniper"


def test_other_commands_are_not_icebergs() -> None:
    cancel = Command(
        kind=CommandKind.CANCEL,
        command_id="c-1",
        agent_id="alpha",
        account="DU1",
        nonce="n-1",
        issued_at=datetime(2026, 11, 24, 14, 0, tzinfo=UTC),
        target_command_id="x",
    )
    with pytest.raises(NotAnIceberg, match="cancel"):
        iceberg_input(cancel)


async def test_session_changes_start_and_then_signal_one_broker_session(temporal_client: Client) -> None:
    account = f"DU{uuid.uuid4().hex[:6]}"
    queue = f"session-{uuid.uuid4().hex[:6]}"
    t0 = datetime.now(UTC)
    async with Worker(temporal_client, task_queue=queue, workflows=[BrokerSession]):
        for n in range(2):
            change = SessionChange(
                f"e{n}", Change.DISCONNECTED, f"127.0.0.1:400{n}", "heartbeat missed", 0, t0
            )
            await report_session_change(temporal_client, account, change, task_queue=queue)
        handle = temporal_client.get_workflow_handle_for(BrokerSession.run, f"broker-session/{account}")

        async def two() -> bool:
            view = await handle.query(BrokerSession.view, SessionViewQuery())
            return len(view.epochs) == 2

        await eventually(two, timeout=20)
        runs = [w async for w in temporal_client.list_workflows(f'WorkflowId = "broker-session/{account}"')]
        await handle.terminate()
    assert len(runs) == 1


def test_iceberg_and_lifecycle_ids_of_one_command_differ() -> None:
    from config.workflow_ids import iceberg_workflow_id, lifecycle_workflow_id

    assert iceberg_workflow_id("ice-77") != lifecycle_workflow_id("ice-77")


async def test_search_attributes_registration_is_idempotent(temporal_client: Client) -> None:
    from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest

    from temporal.search_attributes import ensure_search_attributes

    assert await ensure_search_attributes(temporal_client) == []
    listed = await temporal_client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=temporal_client.namespace)
    )
    assert {"Symbol", "Account", "Agent", "State"} <= set(listed.custom_attributes)
