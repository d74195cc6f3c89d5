"""BrokerSession on the time-skipping server: epochs, the hot path's reconciliation report of
each recorded once, dedupe, continue-as-new carrying the state."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.helpers import eventually
from trading.reconciliation import ReconcileReport
from workflows.broker_session import (
    BrokerSession,
    BrokerSessionInput,
    BrokerSessionView,
    Change,
    Epoch,
    SessionChange,
    SessionViewQuery,
)

QUEUE = "broker-session-test"
T0 = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def _report(epoch: int) -> ReconcileReport:
    """What the hot path's reconciliation of ``epoch`` reports (in the change's record)."""
    return ReconcileReport(
        account="DU-TEST",
        epoch=epoch,
        as_of=datetime.now(UTC),
        missed_fills=[f"x-{epoch}"],
        last_exec_time=T0 + timedelta(minutes=epoch),
    )


def _change(n: int, change: Change, epoch: int, gateway: str = "127.0.0.1:4002") -> SessionChange:
    return SessionChange(
        event_id=f"s{n}",
        change=change,
        gateway=gateway,
        cause=f"cause {n}",
        epoch=epoch,
        ts=T0 + timedelta(seconds=n),
        reconcile=None if change is Change.DISCONNECTED else _report(epoch),
    )


def _reconciled(view: BrokerSessionView) -> list[int]:
    """The epochs whose reconciliation report the workflow recorded, in order."""
    return [e.reconcile.epoch for e in view.epochs if e.reconcile is not None]


async def _view(handle: WorkflowHandle) -> BrokerSessionView:
    return await handle.query(BrokerSession.view, SessionViewQuery())


async def _after(
    env: WorkflowEnvironment,
    changes: list[SessionChange],
    *,
    epochs: int,
    carried: BrokerSessionInput | None = None,
) -> BrokerSessionView:
    """A fresh account's BrokerSession (or one continued with ``carried``) once it has
    recorded ``epochs`` of ``changes``. The worker has no activities: the workflow needs none."""
    account = f"DU{uuid.uuid4().hex[:6]}"
    async with Worker(env.client, task_queue=QUEUE, workflows=[BrokerSession]):
        handle = await env.client.start_workflow(
            BrokerSession.run,
            replace(carried or BrokerSessionInput(account=""), account=account),
            id=f"broker-session/{account}",
            task_queue=QUEUE,
        )
        for change in changes:
            await handle.signal(BrokerSession.on_session, change)

        async def recorded() -> BrokerSessionView | None:
            v = await _view(handle)
            return v if len(v.epochs) >= epochs else None

        view: BrokerSessionView = await eventually(recorded, timeout=20)
        await handle.terminate()
    return view


async def test_every_reconnect_is_an_epoch_with_its_reconciliation_recorded_once(
    skipping_env: WorkflowEnvironment,
) -> None:
    view = await _after(
        skipping_env,
        [
            _change(1, Change.CONNECTED, 0),
            _change(2, Change.DISCONNECTED, 0),
            _change(3, Change.RECONNECTED, 1),
            _change(3, Change.RECONNECTED, 1),  # redelivered
            _change(4, Change.FAILED_OVER, 2, gateway="127.0.0.1:4012"),
            # Delivered late, after the failover it preceded: it describes a connection that has
            # since changed, so it is no epoch and changes nothing.
            replace(_change(5, Change.RECONNECTED, 1), ts=T0 + timedelta(seconds=3, milliseconds=500)),
            _change(6, Change.DISCONNECTED, 2, gateway="127.0.0.1:4012"),
        ],
        epochs=5,
    )

    assert _reconciled(view) == [0, 1, 2]
    # The last execution reconciled is the newest report's.
    assert view.last_exec_time == T0 + timedelta(minutes=2)
    assert [e.change for e in view.epochs] == [
        Change.CONNECTED,
        Change.DISCONNECTED,
        Change.RECONNECTED,
        Change.FAILED_OVER,
        Change.DISCONNECTED,
    ]
    reconnect = view.epochs[2]
    assert reconnect.outage_started_at == T0 + timedelta(seconds=2)
    assert reconnect.reconcile is not None and reconnect.reconcile.missed_fills == ["x-1"]
    assert not view.connected and view.gateway == "127.0.0.1:4012" and view.last_epoch == 2


def _epoch(change: SessionChange) -> Epoch:
    return Epoch(change.epoch, change.change, change.gateway, change.cause, change.ts)


async def test_a_signed_record_copied_back_after_its_id_was_forgotten_is_no_epoch_and_reconciles_nothing(
    skipping_env: WorkflowEnvironment,
) -> None:
    past = [
        _change(1, Change.CONNECTED, 1),
        _change(2, Change.DISCONNECTED, 1),
        _change(3, Change.RECONNECTED, 2),
        _change(4, Change.FAILED_OVER, 3, gateway="127.0.0.1:4012"),
    ]
    # What continue-as-new carries once many more changes have passed: the epochs and the last
    # reconciliation, and of the ids only the newest (older copies are flooding in).
    carried = BrokerSessionInput(
        account="",
        connected=True,
        gateway="127.0.0.1:4012",
        last_epoch=3,
        last_reconciled_at=past[-1].ts,
        epochs=[_epoch(c) for c in past],
        seen_event_ids=[past[-1].event_id],
    )
    view = await _after(
        skipping_env,
        [
            *past,  # the same signed records, copied back onto broker.sessions
            _change(5, Change.DISCONNECTED, 3, gateway="127.0.0.1:4012"),
            _change(6, Change.RECONNECTED, 4, gateway="127.0.0.1:4012"),
        ],
        epochs=6,
        carried=carried,
    )

    assert _reconciled(view) == [4]
    assert [e.started_at for e in view.epochs] == [c.ts for c in past] + [
        T0 + timedelta(seconds=5),
        T0 + timedelta(seconds=6),
    ]
    assert view.connected and view.gateway == "127.0.0.1:4012" and view.last_epoch == 4


async def test_after_a_hot_path_restart_its_epochs_count_from_one_and_are_still_reconciled(
    skipping_env: WorkflowEnvironment,
) -> None:
    view = await _after(
        skipping_env,
        [
            _change(1, Change.CONNECTED, 1),
            _change(2, Change.DISCONNECTED, 1),
            _change(3, Change.RECONNECTED, 2),
            _change(4, Change.FAILED_OVER, 3, gateway="127.0.0.1:4012"),
            # The hot path restarts: a new process, its epochs counted from 1 again.
            _change(5, Change.CONNECTED, 1),
            _change(6, Change.FAILED_OVER, 2, gateway="127.0.0.1:4012"),
        ],
        epochs=6,
    )

    assert _reconciled(view) == [1, 2, 3, 1, 2]
    assert [e.reconcile is not None for e in view.epochs] == [True, False, True, True, True, True]


async def test_continue_as_new_keeps_epochs_and_last_execution(dev_client: Client) -> None:
    # On the real dev server, not the shared time-skipping one: a query that meets a run as it
    # continues as new can stay pending in the test server and hold its clock for every later
    # test. The workflow needs no timers, so real time costs nothing here.
    account = f"DU{uuid.uuid4().hex[:6]}"
    queue = f"broker-session-can-{uuid.uuid4().hex[:8]}"
    async with Worker(dev_client, task_queue=queue, workflows=[BrokerSession]):
        handle = await dev_client.start_workflow(
            BrokerSession.run,
            BrokerSessionInput(account=account, continue_after_signals=3),
            id=f"broker-session/{account}",
            task_queue=queue,
        )
        first_run = (await handle.describe()).run_id
        for n in range(1, 8):
            change = Change.DISCONNECTED if n % 2 else Change.RECONNECTED
            await handle.signal(BrokerSession.on_session, _change(n, change, n))
        latest = dev_client.get_workflow_handle(f"broker-session/{account}")

        async def settled() -> BrokerSessionView | None:
            v = await _view(latest)
            return v if len(v.epochs) == 7 else None

        view: BrokerSessionView = await eventually(settled, timeout=20)
        assert (await latest.describe()).run_id != first_run
        await latest.terminate()
    assert _reconciled(view) == [2, 4, 6]
    assert view.last_exec_time == T0 + timedelta(minutes=6)
    assert not view.connected


async def test_an_epoch_whose_reconciliation_did_not_finish_is_recorded_with_why(
    skipping_env: WorkflowEnvironment,
) -> None:
    unfinished = replace(
        _change(2, Change.FAILED_OVER, 2, gateway="127.0.0.1:4012"),
        reconcile=None,
        reconcile_error="reconciliation did not finish: disconnected before it finished: closed",
    )
    view = await _after(
        skipping_env,
        [_change(1, Change.CONNECTED, 1), unfinished, _change(3, Change.RECONNECTED, 3)],
        epochs=3,
    )

    assert _reconciled(view) == [1, 3]
    assert view.epochs[1].reconcile is None and view.epochs[1].reconcile_error == unfinished.reconcile_error
    assert view.last_epoch == 3 and view.last_exec_time == T0 + timedelta(minutes=3)
