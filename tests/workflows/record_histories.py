"""Record the workflow histories the replay tests check (run after a deliberate workflow change,
then review the diff): ``python -m tests.workflows.record_histories [NAME ...]`` (default:
every history; name some to keep the others as older code wrote them).

Runs each workflow on a real Temporal dev server with the scripted venue of ``sim.py`` and
writes ``histories/<name>.json``, plus ``histories/iceberg_nondeterministic.json``: the Iceberg
history with its first activity renamed, i.e. what a worker running different code would have
written, which replay must refuse.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.commands import CancelCommandRequest, PublishResult
from floor.services import venv_bin
from temporal.config import DATA_CONVERTER
from temporal.search_attributes import ensure_search_attributes
from tests.factories import order_event
from tests.helpers import eventually
from tests.workflows.sim import LedgerOrders, SimVenue, signed_event
from trading.commands import Edge, Side
from trading.order_events import EventKind
from trading.orders import Fill
from trading.reconciliation import ReconcileReport
from workflows.broker_session import (
    RECONCILE_ACTIVITY,
    BrokerSession,
    BrokerSessionInput,
    Change,
    ReconcileRequest,
    SessionChange,
    SessionViewQuery,
)
from workflows.iceberg import Iceberg, IcebergInput, ProgressQuery
from workflows.order_lifecycle import HistoryQuery, LifecycleInput, OrderLifecycle

HISTORIES = Path(__file__).parent / "histories"
WORKFLOW_IDS = {
    "iceberg": "ice-replay",
    "iceberg_ledger_checked": "ice-replay-ledger-checked",
    "iceberg_pacing_checked": "ice-replay-pacing-checked",
    "iceberg_fresh_writers": "ice-replay-fresh-writers",
    "iceberg_ticket": "ice-replay-ticket",
    "order_lifecycle": "ord-replay-1",
    "order_lifecycle_expiry": "ord-replay-2",
    "order_lifecycle_signed": "ord-replay-3",
    "order_lifecycle_expiry_signed": "ord-replay-4",
    "order_lifecycle_ledgered": "ord-replay-5",
    "order_lifecycle_expiry_ledgered": "ord-replay-6",
    "order_lifecycle_fresh_writers": "ord-replay-7",
    "order_lifecycle_expiry_ticket": "ord-replay-8",
    "broker_session": "broker-session/DUREPLAY",
    "broker_session_newest_only": "broker-session/DUREPLAY2",
    "broker_session_report_from_hot_path": "broker-session/DUREPLAY3",
}
"""Replay must use the recorded workflow id: the Iceberg derives its slice ids from it."""
QUEUE = "record"
LEDGER = LedgerOrders()
"""The recorded lifecycles' orders as the ledger holds them: DAY, closing two seconds after the
recording starts (the expiry history's cancel comes from there, not from its input)."""


@activity.defn(name=RECONCILE_ACTIVITY)
async def reconcile_account(req: ReconcileRequest) -> ReconcileReport:
    """What histories recorded before the reports came from the hot path called (today's
    workflow calls nothing; recording those histories again needs the old workflow code)."""
    return ReconcileReport(req.account, req.epoch, datetime.now(UTC), missed_fills=[f"x{req.epoch}"])


async def record_iceberg(client: Client, name: str = "iceberg") -> WorkflowHandle:
    handle = await client.start_workflow(
        Iceberg.run,
        IcebergInput(
            account="DU1",
            symbol="AAPL",
            side=Side.BUY,
            total_qty=300,
            display_qty=100,
            edge=Edge(Decimal("0.55"), Decimal("2"), Decimal("95")),
            jitter=Decimal("0.05"),
        ),
        id=WORKFLOW_IDS[name],
        task_queue=QUEUE,
    )
    await handle.result()
    await handle.query(Iceberg.progress, ProgressQuery())
    return handle


async def record_lifecycle(client: Client, name: str = "order_lifecycle") -> WorkflowHandle:
    cid = WORKFLOW_IDS[name]
    handle = await client.start_workflow(
        OrderLifecycle.run,
        LifecycleInput(cid, "DU1", "MSFT", "alpha", "BUY", 200, linger_seconds=1),
        id=cid,
        task_queue=QUEUE,
        start_signal="record",
        start_signal_args=[signed_event(order_event(cid, 1, EventKind.ACCEPTED, 0))],
    )
    for event in (
        order_event(cid, 2, EventKind.SUBMITTED, 0),
        order_event(cid, 3, EventKind.PARTIALLY_FILLED, 50, Fill("x1", 50, Decimal("10.5"))),
        order_event(cid, 3, EventKind.PARTIALLY_FILLED, 50, Fill("x1", 50, Decimal("10.5"))),
        order_event(cid, 4, EventKind.FILLED, 200, Fill("x2", 150, Decimal("10.4"))),
    ):
        await handle.signal(OrderLifecycle.on_record, signed_event(event))
    await handle.result()
    return handle


async def record_expiry(client: Client, name: str = "order_lifecycle_expiry") -> WorkflowHandle:
    """A DAY order open at the close: the workflow cancels it through the cancel activity. Its
    record is from a session long closed, so the expiry is the input's (seconds from now)."""
    cid = WORKFLOW_IDS[name]
    accepted = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)

    handle = await client.start_workflow(
        OrderLifecycle.run,
        LifecycleInput(
            cid,
            "DU1",
            "MSFT",
            "alpha",
            "BUY",
            200,
            linger_seconds=1,
            expires_at=datetime.now(UTC) + timedelta(seconds=2),
        ),
        id=cid,
        task_queue=QUEUE,
        start_signal="record",
        start_signal_args=[signed_event(order_event(cid, 1, EventKind.SUBMITTED, 0, ts=accepted))],
    )
    await handle.result()
    await handle.query(OrderLifecycle.history, HistoryQuery())
    return handle


async def record_broker_session(client: Client, name: str = "broker_session") -> WorkflowHandle:
    """Four epochs; for ``broker_session_newest_only`` (the ``broker-session-newest-change-only``
    patch) and ``broker_session_report_from_hot_path`` (the ``broker-session-report-from-hot-path``
    patch: each connect, reconnect and failover carries the hot path's report) also a record
    delivered after a later one, which is ignored, then a fifth epoch."""
    newest_only = name in ("broker_session_newest_only", "broker_session_report_from_hot_path")
    account = WORKFLOW_IDS[name].removeprefix("broker-session/")
    handle = await client.start_workflow(
        BrokerSession.run,
        BrokerSessionInput(account=account),
        id=WORKFLOW_IDS[name],
        task_queue=QUEUE,
    )
    t0 = datetime.now(UTC)
    changes = [
        ("s0", Change.CONNECTED, 0, 0.0),
        ("s1", Change.DISCONNECTED, 0, 1.0),
        ("s2", Change.RECONNECTED, 1, 2.0),
        ("s3", Change.FAILED_OVER, 2, 3.0),
    ]
    if newest_only:
        changes += [("late", Change.RECONNECTED, 1, 2.5), ("s4", Change.DISCONNECTED, 2, 4.0)]
    for event_id, change, epoch, seconds in changes:
        ts = t0 + timedelta(seconds=seconds)
        report = None
        if change is not Change.DISCONNECTED:
            report = ReconcileReport(account, epoch, ts, missed_fills=[f"x{epoch}"], last_exec_time=ts)
        await handle.signal(
            BrokerSession.on_session,
            SessionChange(event_id, change, "127.0.0.1:4002", "test", epoch, ts, reconcile=report),
        )
    epochs = 5 if newest_only else 4

    async def all_epochs() -> bool:
        return len((await handle.query(BrokerSession.view, SessionViewQuery())).epochs) == epochs

    await eventually(all_epochs, timeout=30)
    await handle.terminate("recorded")
    return handle


async def main(names: list[str]) -> None:
    for name in (
        "order_lifecycle_ledgered",
        "order_lifecycle_expiry_ledgered",
        "order_lifecycle_fresh_writers",
        "order_lifecycle_expiry_ticket",
    ):
        LEDGER.add(WORKFLOW_IDS[name], datetime.now(UTC) + timedelta(seconds=2))
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(venv_bin("temporal")), data_converter=DATA_CONVERTER
    )
    try:
        await ensure_search_attributes(env.client)
        venue = SimVenue(script=lambda n: "partial:30" if n == 2 else "fill")

        get_quote, publish_order, sim_cancel, check_parent, writers = venue.activities()

        @activity.defn(name="publish_cancel")
        async def publish_cancel(req: CancelCommandRequest) -> PublishResult:
            if not req.target_command_id.startswith("ord-"):
                result: PublishResult = await sim_cancel(req)  # type: ignore[misc]
                return result
            # The expiry cancel of a stand-alone order: confirmed as the bridge would deliver it.
            handle = activity.client().get_workflow_handle(req.target_command_id)
            cancelled = order_event(req.target_command_id, 9, EventKind.CANCELLED, 0)
            await handle.signal("record", signed_event(cancelled))
            return PublishResult(req.command_id, 0, 0)

        async with Worker(
            env.client,
            task_queue=QUEUE,
            workflows=[Iceberg, OrderLifecycle, BrokerSession],
            activities=[
                get_quote,
                publish_order,
                publish_cancel,
                reconcile_account,
                check_parent,
                writers,
                LEDGER.lifecycle_order,
            ],
        ):
            recorders = {
                "iceberg": lambda: record_iceberg(env.client),
                "iceberg_ledger_checked": lambda: record_iceberg(env.client, "iceberg_ledger_checked"),
                "iceberg_pacing_checked": lambda: record_iceberg(env.client, "iceberg_pacing_checked"),
                "iceberg_fresh_writers": lambda: record_iceberg(env.client, "iceberg_fresh_writers"),
                "iceberg_ticket": lambda: record_iceberg(env.client, "iceberg_ticket"),
                "order_lifecycle": lambda: record_lifecycle(env.client),
                "order_lifecycle_expiry": lambda: record_expiry(env.client),
                "order_lifecycle_signed": lambda: record_lifecycle(env.client, "order_lifecycle_signed"),
                "order_lifecycle_expiry_signed": lambda: record_expiry(
                    env.client, "order_lifecycle_expiry_signed"
                ),
                "order_lifecycle_ledgered": lambda: record_lifecycle(env.client, "order_lifecycle_ledgered"),
                "order_lifecycle_expiry_ledgered": lambda: record_expiry(
                    env.client, "order_lifecycle_expiry_ledgered"
                ),
                "order_lifecycle_fresh_writers": lambda: record_expiry(
                    env.client, "order_lifecycle_fresh_writers"
                ),
                "order_lifecycle_expiry_ticket": lambda: record_expiry(
                    env.client, "order_lifecycle_expiry_ticket"
                ),
                "broker_session": lambda: record_broker_session(env.client),
                "broker_session_newest_only": lambda: record_broker_session(
                    env.client, "broker_session_newest_only"
                ),
                "broker_session_report_from_hot_path": lambda: record_broker_session(
                    env.client, "broker_session_report_from_hot_path"
                ),
            }
            recorded = {name: await recorders[name]() for name in names or recorders}
        HISTORIES.mkdir(exist_ok=True)
        for name, handle in recorded.items():
            history = await handle.fetch_history()
            (HISTORIES / f"{name}.json").write_text(history.to_json())
        if "iceberg" not in recorded:
            return
        broken = json.loads((HISTORIES / "iceberg.json").read_text())
        for event in broken["events"]:
            attrs = event.get("activityTaskScheduledEventAttributes")
            if attrs:
                attrs["activityType"]["name"] = "get_quote_v0"
                break
        (HISTORIES / "iceberg_nondeterministic.json").write_text(json.dumps(broken, indent=2))
    finally:
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
