"""Recorded histories replay on today's workflow code; a history written by different code
is refused. Re-record with ``python -m tests.workflows.record_histories`` after a deliberate,
versioned change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from temporal.config import DATA_CONVERTER
from tests.workflows.record_histories import WORKFLOW_IDS
from trading.order_events import OrderEvent
from trading.order_state import OrderView, step
from workflows.broker_session import BrokerSession
from workflows.iceberg import Iceberg
from workflows.order_lifecycle import LifecycleView, OrderLifecycle, lifecycle_state
from workflows.signed_events import SignedOrderEvent, unchecked_event

HISTORIES = Path(__file__).parent / "histories"
RECORDED = sorted(WORKFLOW_IDS)


def _history(name: str, workflow_id: str | None = None) -> WorkflowHistory:
    return WorkflowHistory.from_json(
        workflow_id or WORKFLOW_IDS[name], (HISTORIES / f"{name}.json").read_text()
    )


def _replayer() -> Replayer:
    # With the tracing interceptor, as the worker runs them (temporal.client.connect): its
    # headers on activities and its spans change no command.
    return Replayer(
        workflows=[Iceberg, OrderLifecycle, BrokerSession],
        data_converter=DATA_CONVERTER,
        interceptors=[TracingInterceptor()],
    )


@pytest.mark.parametrize("name", RECORDED)
async def test_recorded_history_replays(name: str) -> None:
    history = _history(name)
    assert len(history.events) > 10
    result = await _replayer().replay_workflow(history)
    assert result.replay_failure is None


async def test_history_from_different_code_is_nondeterministic() -> None:
    with pytest.raises(NondeterminismError):
        await _replayer().replay_workflow(_history("iceberg_nondeterministic", WORKFLOW_IDS["iceberg"]))


DIRECT_SIGNALS = "iceberg_direct_signals"
"""Written once by the Iceberg as it was before control came only from the ledger: a pause, an
amend (300 to 200, display 80) and a resume sent straight to Temporal, all applied. Never
re-recorded: today's code ignores such signals, and this history shows it still replays the
ones it applied then (the ``iceberg-control-from-ledger`` patch)."""


async def test_a_history_whose_direct_control_signals_were_applied_still_replays() -> None:
    history = WorkflowHistory.from_json(
        "ice-replay-signals", (HISTORIES / f"{DIRECT_SIGNALS}.json").read_text()
    )
    signals = [
        e.workflow_execution_signaled_event_attributes.signal_name
        for e in history.events
        if e.HasField("workflow_execution_signaled_event_attributes")
    ]
    assert {"pause", "amend", "resume"} <= set(signals)
    result = await _replayer().replay_workflow(history)
    assert result.replay_failure is None


LIFECYCLES = [name for name in RECORDED if name.startswith("order_lifecycle")]


@pytest.mark.parametrize("name", LIFECYCLES)
def test_the_order_state_fold_derives_what_each_recorded_lifecycle_did(name: str) -> None:
    """Every recorded OrderLifecycle's states, entry by entry, are what folding its records with
    :mod:`trading.order_state` gives: deriving the state there changed no recorded outcome."""
    history = _history(name)
    convert = DATA_CONVERTER.payload_converter
    records: dict[str, OrderEvent] = {}
    result: LifecycleView | None = None
    for e in history.events:
        if e.HasField("workflow_execution_signaled_event_attributes"):
            signal = e.workflow_execution_signaled_event_attributes
            payload = signal.input.payloads[0]
            if signal.signal_name == "record":
                event = unchecked_event(convert.from_payloads([payload], [SignedOrderEvent])[0])
            else:
                event = convert.from_payloads([payload], [OrderEvent])[0]
            records.setdefault(event.event_id, event)
        if e.HasField("workflow_execution_completed_event_attributes"):
            done = e.workflow_execution_completed_event_attributes.result.payloads
            result = convert.from_payloads(list(done), [LifecycleView])[0]
    assert result is not None and result.history
    first = records[next(h.event_id for h in result.history if h.event_id)]
    view = OrderView.new(result.command_id, first.side, result.quantity)
    expiry_cancel_sent = False
    for entry in result.history:
        if entry.what == "cancel_requested":
            expiry_cancel_sent = True
            continue
        assert entry.event_id is not None
        record = records[entry.event_id]
        view = step(view, record, cancel_is_expiry=expiry_cancel_sent, ignore_repeat_refusals=True).view
        assert (lifecycle_state(view.state), view.filled_qty) == (entry.state, entry.filled_qty), entry
    assert (lifecycle_state(view.state), view.filled_qty, view.avg_fill_price) == (
        result.state,
        result.filled_qty,
        result.avg_fill_price,
    )


TICKETS = ["iceberg_ticket", "order_lifecycle_expiry_ticket"]
"""Recorded by workflows that name their timers and activities (:mod:`workflows.ticket`)."""


def _summaries(history: WorkflowHistory) -> list[str]:
    convert = DATA_CONVERTER.payload_converter
    return [
        convert.from_payloads([e.user_metadata.summary], [str])[0]
        for e in history.events
        if e.HasField("user_metadata") and e.user_metadata.HasField("summary")
    ]


@pytest.mark.parametrize("name", TICKETS)
async def test_summaries_are_beside_the_commands_so_histories_replay_with_or_without_them(name: str) -> None:
    """The UI's timer and activity summaries are user metadata on the history's events, not part
    of the commands replay compares: a history recorded with them replays on code that writes
    other summaries (or none), and the histories recorded before them replay on today's code
    (``test_recorded_history_replays``). So they need no patch."""
    history = _history(name)
    summaries = _summaries(history)
    wanted = (
        ("DAY expiry at the ", "linger 1 s for late fills")
        if "lifecycle" in name
        else ("slice 1 of 3: BUY ",)
    )
    for text in wanted:
        assert any(s.startswith(text) for s in summaries), (text, summaries)
    stripped = json.loads((HISTORIES / f"{name}.json").read_text())
    for event in stripped["events"]:
        event.pop("userMetadata", None)
    bare = WorkflowHistory.from_json(WORKFLOW_IDS[name], json.dumps(stripped))
    assert not _summaries(bare)
    for h in (history, bare):
        result = await _replayer().replay_workflow(h)
        assert result.replay_failure is None
