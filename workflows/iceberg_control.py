"""Control of an Iceberg run (:mod:`workflows.iceberg`): pause, resume, cancel and amend.

Control is a signed ``iceberg_*`` command that intake ledgered; the ``control`` signal carries
only its command id, and the run reads the command back from the ledger
(:mod:`activities.control`) before acting on it. Pause, resume, cancel and amend signals sent
straight to Temporal change nothing in new runs (anyone who reaches Temporal could send them);
runs whose histories applied them replay them (``LEDGERED_CONTROL_PATCH``). An amend that could
overfill the parent is refused.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

from workflows.iceberg_messages import AmendRequest, ControlSignal, IcebergStatus
from workflows.iceberg_policies import AMEND_FLOOR_PATCH, CONTROL_RETRY, LEDGERED_CONTROL_PATCH, failure_cause
from workflows.iceberg_state import IcebergState

with workflow.unsafe.imports_passed_through():
    # By its full name: ``from workflows import ticket`` would load it inside the sandbox,
    # where its time zones are restricted proxies.
    import workflows.ticket as ticket
    from activities.control import ControlActivities, ControlLookup, LedgeredControl


class IcebergControl(IcebergState):
    """Applies the parent's ledgered controls, and refuses the direct ones."""

    async def _take_control(self, req: ControlSignal) -> None:
        """Read the ledgered control ``req`` names and apply it, once per command id."""
        seen = f"control:{req.command_id}"
        if not self._first_time(seen):
            return
        try:
            ledgered = await workflow.execute_activity_method(
                ControlActivities.read_control,
                ControlLookup(command_id=req.command_id, parent_id=workflow.info().workflow_id),
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=CONTROL_RETRY,
                summary=f"read control {req.command_id} from the ledger",
            )
        except ActivityError as exc:
            self._notes.append(f"control {req.command_id} not applied: {failure_cause(exc)}")
            # The same control delivered again (the bridge redelivers) is read afresh: the
            # ledger may have been unreachable this time.
            self._seen_requests.discard(seen)
            return
        self._apply_control(ledgered)

    def _apply_control(self, c: LedgeredControl) -> None:
        self._notes.append(f"{c.kind} {c.command_id} by {c.agent_id}")
        if c.kind == "iceberg_pause":
            self._pause()
        elif c.kind == "iceberg_resume":
            self._resume()
        elif c.kind == "iceberg_cancel":
            self._cancel(c.reason or c.agent_id)
        elif c.kind == "iceberg_amend":
            self._amend(AmendRequest(c.command_id, c.total_qty, c.display_qty, c.limit_price))
        self._last = f"{c.kind.removeprefix('iceberg_')} by {c.agent_id} at {ticket.utc_time(workflow.now())}"
        self._show()

    def _direct_signal_ignored(self, name: str) -> bool:
        """A control signal sent straight to Temporal: no authority, so no effect (new runs)."""
        if not workflow.patched(LEDGERED_CONTROL_PATCH):
            return False
        note = f"direct {name} signal ignored: send a signed iceberg_{name} command through intake"
        if note not in self._notes:
            self._notes.append(note)
        return True

    def _pause(self) -> None:
        if self._cancel_reason is None:
            self._paused = True
            self._status = IcebergStatus.PAUSED
            self._publish_search_attributes()

    def _resume(self) -> None:
        if self._cancel_reason is None:
            self._paused = False
            self._status = IcebergStatus.WORKING
            self._publish_search_attributes()

    def _cancel(self, reason: str) -> None:
        if self._cancel_reason is None:
            self._cancel_reason = reason
            self._notes.append(f"cancel requested: {self._cancel_reason}")

    def _amend(self, req: AmendRequest) -> None:
        problem = self._amend_problem(req)
        if problem:
            self._notes.append(f"amend {req.request_id} refused: {problem}")
            return
        if req.total_qty is not None:
            self._total = req.total_qty
        if req.display_qty is not None:
            self._display = req.display_qty
        if req.limit_price is not None:
            self._limit = req.limit_price
        self._notes.append(f"amend {req.request_id} applied")

    def _amend_problem(self, req: AmendRequest) -> str | None:
        if req.total_qty is not None and req.total_qty < self._committed:
            return f"total {req.total_qty} is below the {self._committed} already filled"
        if req.total_qty is not None and req.total_qty <= 0:
            return "total must be positive"
        working = self._working_open
        floor = self._committed + working
        if req.total_qty is not None and req.total_qty < floor and workflow.patched(AMEND_FLOOR_PATCH):
            # The working slice may fill whole while its cancel is on the way, so a total below
            # this could end overfilled.
            return (
                f"total {req.total_qty} is below the {self._committed} filled plus the {working}"
                f" still working; the smallest total accepted now is {floor}"
            )
        if req.display_qty is not None and req.display_qty <= 0:
            return "display size must be positive"
        if req.limit_price is not None and req.limit_price <= 0:
            return "limit must be positive"
        return None
