"""The Temporal UI reads like an order ticket: what a workflow started by the bridge shows,
read back through the client as the UI reads it (describe, the metadata query, the history)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.worker import Worker

from observability.security import SecurityLog
from temporal.bridge import Bridge
from temporal.client import start_iceberg
from tests.factories import new_agent, order_event
from tests.helpers import eventually
from tests.temporal.conftest import current_details, ledgered_iceberg, summaries
from tests.workflows.sim import LedgerOrders, SimVenue, record_writers, signed_event
from trading.order_events import EventKind, OrderEvent
from trading.orders import Fill
from trading.session_calendar import SessionCalendar
from workflows.iceberg import Iceberg
from workflows.order_lifecycle import LifecycleView, OrderLifecycle


async def test_a_lifecycle_started_by_the_bridge_shows_its_ticket(
    temporal_client: Client, ledger_pool: asyncpg.Pool, bridge_security: SecurityLog
) -> None:
    queue = f"ticket-{uuid.uuid4().hex[:8]}"
    cid = f"ord-{uuid.uuid4().hex}"
    close = SessionCalendar().close_after(datetime.now(UTC) + timedelta(days=1))
    ledger = LedgerOrders()
    ledger.add(cid, close, side="SELL")
    bridge = Bridge(
        temporal_client, ledger=ledger_pool, security=bridge_security, task_queue=queue, linger_seconds=1
    )

    def event(n: int, kind: EventKind, filled: int, fill: Fill | None = None) -> OrderEvent:
        return order_event(cid, n, kind, filled, fill, side="SELL", quantity=300)

    async def deliver(e: OrderEvent) -> None:
        await bridge.deliver(e, signed_event(e).record.encode())

    async with Worker(
        temporal_client,
        task_queue=queue,
        workflows=[OrderLifecycle],
        activities=[record_writers, ledger.lifecycle_order],
    ):
        await deliver(event(1, EventKind.ACCEPTED, 0))
        await deliver(event(2, EventKind.PARTIALLY_FILLED, 100, Fill(f"{cid}-x1", 100, Decimal("50.10"))))
        handle = temporal_client.get_workflow_handle_for(OrderLifecycle.run, cid)

        async def partially_filled() -> str | None:
            details = await current_details(handle)
            return details if details.startswith("**PartiallyFilled**") else None

        details = await eventually(partially_filled, timeout=20)
        lines = details.splitlines()
        assert lines[0] == "**PartiallyFilled** · 100 of 300 filled · avg 50.10"
        assert lines[1] == "SELL 300 MSFT · DU1 · alpha · DAY until the 16:00 ET close"
        assert lines[2].startswith("last: partially_filled 100 @ 50.10 at ")

        described = await handle.describe()
        assert await described.static_summary() == "SELL 300 MSFT · DU1 · alpha"
        assert f"order `{cid}` · DAY" in (await described.static_details() or "")
        timers = await summaries(handle, EventType.EVENT_TYPE_TIMER_STARTED)
        assert timers == ["DAY expiry at the 16:00 ET close"]
        activities = await summaries(handle, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
        assert activities == ["read the record writers' keys", f"read order {cid} from the ledger"]

        await deliver(event(3, EventKind.FILLED, 300, Fill(f"{cid}-x2", 200, Decimal("50.04"))))
        view: LifecycleView = await handle.result()
        assert view.filled_qty == 300
        final = (await current_details(handle)).splitlines()
        assert final[0] == "**Filled** · 300 of 300 filled · avg 50.06"
        assert final[2].startswith("last: filled 200 @ 50.04 at ")
        timers = await summaries(handle, EventType.EVENT_TYPE_TIMER_STARTED)
        assert timers[-1] == "linger 1 s for late fills"


async def test_an_iceberg_shows_its_ticket(temporal_client: Client, ledger_pool: asyncpg.Pool) -> None:
    queue = f"ticket-{uuid.uuid4().hex[:8]}"
    parent = await ledgered_iceberg(ledger_pool, new_agent(), quantity=300, limit_price=Decimal("100.05"))
    venue = SimVenue()
    async with Worker(temporal_client, task_queue=queue, workflows=[Iceberg], activities=venue.activities()):
        handle = await start_iceberg(temporal_client, parent, task_queue=queue)

        async def first_slice_filled() -> str | None:
            details = await current_details(handle)
            return details if details.startswith("**Working** · 100 of 300 filled") else None

        lines = (await eventually(first_slice_filled, timeout=20)).splitlines()
        assert lines[0] == "**Working** · 100 of 300 filled · avg 100.01"
        assert lines[1] == "BUY 300 SYM display 100 limit 100.05 · DU1"
        assert lines[2].startswith("last: slice 1 of 3 filled 100 @ 100.01 at ")

        described = await handle.describe()
        assert await described.static_summary() == "Iceberg BUY 300 SYM display 100 limit 100.05 · DU1"
        assert f"parent `{parent.command_id}`" in (await described.static_details() or "")

        async def paced() -> list[str] | None:
            timers = await summaries(handle, EventType.EVENT_TYPE_TIMER_STARTED)
            return timers or None

        [pace] = await eventually(paced, timeout=20)
        assert pace.startswith("pace: slice 2 not before ")
        activities = await summaries(handle, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
        assert activities == [
            "check the parent in the ledger",
            "quote SYM for slice 1",
            "slice 1 of 3: BUY 100 SYM @ 100.01",
        ]
        await handle.terminate("seen")
