"""BrokerSession: one long-running workflow per broker account (id ``broker-session/<account>``).

Every change of connectivity (``session`` signal: disconnected, reconnected, failed over)
is recorded as an epoch with its times, gateway and cause, and for every connect, reconnect or
failover the report of the reconciliation the hot path ran at the start of that epoch, which
the change carries (the hot path owns the broker connection and is the one reconciler, see
:mod:`hotpath.reconciler`). Before the :data:`REPORT_FROM_HOT_PATH_PATCH` the workflow ran a
reconciliation activity of its own (``reconcile_account``, on a broker session of the worker's)
after each such change; histories written then still replay. Signals dedupe on ``event_id`` (the last
:data:`KEEP_EVENT_IDS` changes acted on, so always the newest), and a change that happened
before the newest one already handled is ignored and takes no place among those ids: a signed
record copied back onto ``broker.sessions`` once its id has been forgotten is no epoch, moves
no connection state and starts no reconciliation, nor does a record delivered out of its order
(it describes a connection that has since changed). Before the :data:`NEWEST_ONLY_PATCH` such a
change was recorded as an epoch and set the connection state; only a change no later than the
last reconciled one was kept from reconciling again. Epoch numbers are not that order: each
hot-path process counts them from the start again, so after a restart the first connect is
epoch 1 however many came before, and it must still be reconciled.

The history is kept short with continue-as-new: the carried state is the last
:data:`KEEP_EPOCHS` epochs, the time of the last reconciled execution and the connection
state.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    # By its full name: ``from workflows import ticket`` would load it inside the sandbox,
    # where its time zones are restricted proxies.
    import workflows.ticket as ticket
    from trading.reconciliation import ReconcileReport
    from workflows import search

KEEP_EPOCHS = 20
NEWEST_ONLY_PATCH = "broker-session-newest-change-only"
"""Changes older than the newest handled one are ignored, not recorded (see the module)."""
REPORT_FROM_HOT_PATH_PATCH = "broker-session-report-from-hot-path"
"""The reconciliation report comes with the change; no reconciliation activity runs."""
RECONCILE_ACTIVITY = "reconcile_account"
"""The activity runs recorded before :data:`REPORT_FROM_HOT_PATH_PATCH` called (by name: no
worker registers it any more, and replay needs none)."""
KEEP_EVENT_IDS = 200
CONTINUE_AFTER_SIGNALS = 500

RECONCILE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10), maximum_attempts=5
)
"""The retry policy the recorded ``reconcile_account`` runs were scheduled with."""


class Change(enum.StrEnum):
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    RECONNECTED = "reconnected"
    FAILED_OVER = "failed_over"


RECONCILE_AFTER = frozenset({Change.CONNECTED, Change.RECONNECTED, Change.FAILED_OVER})


@dataclass(frozen=True)
class ReconcileRequest:
    """The input of the recorded ``reconcile_account`` runs (see :data:`RECONCILE_ACTIVITY`)."""

    account: str
    epoch: int
    since: datetime | None = None


@dataclass(frozen=True)
class SessionChange:
    """One connectivity change, as the broker session reports it
    (:class:`brokers.base.SessionChanged`)."""

    event_id: str
    change: Change
    gateway: str
    cause: str
    epoch: int
    ts: datetime
    previous_gateway: str | None = None
    reconcile: ReconcileReport | None = None
    """For a change in :data:`RECONCILE_AFTER`: the hot path's reconciliation of this epoch."""
    reconcile_error: str | None = None
    """Why that reconciliation has no report (the epoch ended before it finished)."""


@dataclass(frozen=True)
class Epoch:
    number: int
    change: Change
    gateway: str
    cause: str
    started_at: datetime
    previous_gateway: str | None = None
    outage_started_at: datetime | None = None
    """For a reconnect: when the preceding disconnect was reported."""
    reconcile: ReconcileReport | None = None
    reconcile_error: str | None = None


@dataclass(frozen=True)
class BrokerSessionInput:
    account: str
    connected: bool = False
    gateway: str = ""
    last_epoch: int = -1
    last_exec_time: datetime | None = None
    disconnected_at: datetime | None = None
    epochs: list[Epoch] = field(default_factory=list)
    seen_event_ids: list[str] = field(default_factory=list)
    continue_after_signals: int = CONTINUE_AFTER_SIGNALS
    last_reconciled_at: datetime | None = None
    """``ts`` of the last change reconciled after."""


@dataclass(frozen=True)
class SessionViewQuery:
    """Empty today; a place for options without changing the query's signature."""


@dataclass(frozen=True)
class BrokerSessionView:
    account: str
    connected: bool
    gateway: str
    last_epoch: int
    last_exec_time: datetime | None
    epochs: list[Epoch]


@workflow.defn(name="BrokerSession")
class BrokerSession:
    @workflow.init
    def __init__(self, inp: BrokerSessionInput) -> None:
        self._account = inp.account
        self._connected = inp.connected
        self._gateway = inp.gateway
        self._last_epoch = inp.last_epoch
        self._last_reconciled_at = inp.last_reconciled_at
        self._last_exec_time = inp.last_exec_time
        self._disconnected_at = inp.disconnected_at
        self._epochs = list(inp.epochs)
        self._seen = list(inp.seen_event_ids)
        self._queue: list[SessionChange] = []
        self._handled = 0
        self._continue_after = inp.continue_after_signals

    @workflow.run
    async def run(self, inp: BrokerSessionInput) -> None:
        self._publish_search_attributes()
        self._show()
        while True:
            await workflow.wait_condition(
                lambda: bool(self._queue) or workflow.info().is_continue_as_new_suggested()
            )
            while self._queue:
                await self._handle(self._queue.pop(0))
                self._show()
            if self._handled >= self._continue_after or workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                if not self._queue:
                    workflow.continue_as_new(self._carry())

    @workflow.signal(name="session")
    def on_session(self, change: SessionChange) -> None:
        if change.event_id in self._seen:
            return
        self._seen.append(change.event_id)
        del self._seen[:-KEEP_EVENT_IDS]
        self._queue.append(change)

    @workflow.query(name="view")
    def view(self, _: SessionViewQuery) -> BrokerSessionView:
        return BrokerSessionView(
            account=self._account,
            connected=self._connected,
            gateway=self._gateway,
            last_epoch=self._last_epoch,
            last_exec_time=self._last_exec_time,
            epochs=list(self._epochs),
        )

    async def _handle(self, change: SessionChange) -> None:
        self._handled += 1
        if workflow.patched(NEWEST_ONLY_PATCH) and self._older_than_handled(change):
            # Not kept among the ids either: a flood of old copies must not push out the ids of
            # the changes acted on last.
            if change.event_id in self._seen:
                self._seen.remove(change.event_id)
            workflow.logger.warning(
                "session change %s (%s at %s) is older than one already handled: ignored",
                change.event_id, change.change.value, change.ts.isoformat(),
            )  # fmt: skip
            return
        epoch = Epoch(
            number=change.epoch,
            change=change.change,
            gateway=change.gateway,
            cause=change.cause,
            started_at=change.ts,
            previous_gateway=change.previous_gateway,
        )
        if change.change is Change.DISCONNECTED:
            self._connected = False
            self._disconnected_at = change.ts
            self._remember(epoch)
            self._publish_search_attributes()
            return
        self._connected = True
        self._gateway = change.gateway
        epoch = replace(epoch, outage_started_at=self._disconnected_at)
        self._disconnected_at = None
        self._publish_search_attributes()
        stale = self._last_reconciled_at is not None and change.ts <= self._last_reconciled_at
        if change.change not in RECONCILE_AFTER or stale:
            self._remember(epoch)
            return
        self._last_epoch = change.epoch
        self._last_reconciled_at = change.ts
        if workflow.patched(REPORT_FROM_HOT_PATH_PATCH):
            report = change.reconcile
            if report is None:
                self._remember(replace(epoch, reconcile_error=change.reconcile_error))
                return
        else:
            try:
                report = await workflow.execute_activity(
                    RECONCILE_ACTIVITY,
                    ReconcileRequest(account=self._account, epoch=change.epoch, since=self._last_exec_time),
                    result_type=ReconcileReport,
                    start_to_close_timeout=timedelta(seconds=60),
                    retry_policy=RECONCILE_RETRY,
                )
            except ActivityError as exc:
                self._remember(replace(epoch, reconcile_error=str(exc.cause or exc)))
                return
        if report.last_exec_time is not None:
            self._last_exec_time = report.last_exec_time
        self._remember(replace(epoch, reconcile=report))

    def _older_than_handled(self, change: SessionChange) -> bool:
        # Every change handled is remembered as an epoch, so the newest epoch (carried across
        # continue-as-new) bounds what has been acted on, however many ids were forgotten since.
        # Two changes may share an instant; a copy of the newest is caught by its id.
        handled = [e.started_at for e in self._epochs]
        if self._last_reconciled_at is not None:
            handled.append(self._last_reconciled_at)
        return bool(handled) and change.ts < max(handled)

    def _remember(self, epoch: Epoch) -> None:
        self._epochs.append(epoch)
        del self._epochs[:-KEEP_EPOCHS]

    def _carry(self) -> BrokerSessionInput:
        return BrokerSessionInput(
            account=self._account,
            connected=self._connected,
            gateway=self._gateway,
            last_epoch=self._last_epoch,
            last_reconciled_at=self._last_reconciled_at,
            last_exec_time=self._last_exec_time,
            disconnected_at=self._disconnected_at,
            epochs=list(self._epochs),
            seen_event_ids=list(self._seen),
            continue_after_signals=self._continue_after,
        )

    def _show(self) -> None:
        """The account's connection as the Temporal UI shows it (current details)."""
        last = self._epochs[-1] if self._epochs else None
        since = self._disconnected_at if not self._connected else (last.started_at if last else None)
        text: str | None = None
        if last is not None:
            text = f"{last.change.value} {last.gateway} ({last.cause}) at {ticket.utc_time(last.started_at)}"
            if last.reconcile is not None:
                report = last.reconcile
                text += "; " + ticket.reconciled(
                    len(report.missed_fills), len(report.unknown_at_broker), len(report.anomalies)
                )
            elif last.reconcile_error is not None:
                text += f"; not reconciled: {last.reconcile_error}"
        workflow.set_current_details(
            ticket.session_details(
                account=self._account,
                connected=self._connected,
                gateway=self._gateway,
                since=since,
                epoch=self._last_epoch,
                last=text,
            )
        )

    def _publish_search_attributes(self) -> None:
        workflow.upsert_search_attributes(
            [
                search.ACCOUNT.value_set(self._account),
                search.STATE.value_set("Connected" if self._connected else "Disconnected"),
            ]
        )
