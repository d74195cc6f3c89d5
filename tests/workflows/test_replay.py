"""Recorded histories replay on today's workflow code; a history written by different code
is refused. Re-record with ``python -m tests.workflows.record_histories`` after a deliberate,
versioned change."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from temporal.config import DATA_CONVERTER
from tests.workflows.record_histories import WORKFLOW_IDS
from workflows.broker_session import BrokerSession
from workflows.iceberg import Iceberg
from workflows.order_lifecycle import OrderLifecycle

HISTORIES = Path(__file__).parent / "histories"
RECORDED = sorted(WORKFLOW_IDS)


def _history(name: str, workflow_id: str | None = None) -> WorkflowHistory:
    return WorkflowHistory.from_json(
        workflow_id or WORKFLOW_IDS[name], (HISTORIES / f"{name}.json").read_text()
    )


def _replayer() -> Replayer:
    return Replayer(workflows=[Iceberg, OrderLifecycle, BrokerSession], data_converter=DATA_CONVERTER)


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
