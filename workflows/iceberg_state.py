"""What one Iceberg run keeps (:mod:`workflows.iceberg`): the parent's working terms, the slices
sent with what each has filled, what was already seen (events, executions, requests), and the
totals derived from them; and how the run shows itself: search attributes and the ticket the
Temporal UI shows as current details.

The workflow's parts (:mod:`workflows.iceberg_slice_work`, :mod:`workflows.iceberg_slice_events`,
:mod:`workflows.iceberg_control`) are mixins over :class:`IcebergState`; the workflow class
combines them and holds every Temporal handler.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from temporalio import workflow

from workflows.iceberg_messages import IcebergInput, IcebergStatus, SliceReport

with workflow.unsafe.imports_passed_through():
    # By its full name: ``from workflows import ticket`` would load it inside the sandbox,
    # where its time zones are restricted proxies.
    import workflows.ticket as ticket
    from trading.iceberg import SliceFill
    from trading.record_signing import WriterKey
    from workflows import search
    from workflows.signed_events import FreshWriters


@dataclass
class SliceRecord:
    slice_no: int
    command_id: str
    qty: int
    price: Decimal
    mid_at_send: Decimal
    sent_at: datetime
    filled_qty: int = 0
    notional: Decimal = Decimal(0)
    done: bool = False
    outcome: str = "working"
    cancel_attempts: int = 0
    acknowledged: bool = False
    """Intake accepted it (or the broker reported on it): it exists, whatever comes later."""
    broker_filled: int = 0
    """What the broker said had filled when it ended the slice; above ``filled_qty`` until the
    executions racing the cancel arrive."""
    label: str = ""
    """``slice 7 of 12``, as the Temporal UI's summaries name it (the plan when it was sent)."""

    @property
    def committed(self) -> int:
        """Shares this slice has taken, counting fills still on their way."""
        return max(self.filled_qty, self.broker_filled)

    @property
    def avg_price(self) -> Decimal | None:
        return self.notional / self.filled_qty if self.filled_qty else None


class IcebergState:
    """The run's state, set up from its input before anything runs."""

    def __init__(self, inp: IcebergInput) -> None:
        self._inp = inp
        self._total = inp.total_qty
        self._display = inp.display_qty
        self._limit = inp.limit_price
        self._slices: list[SliceRecord] = []
        self._by_command: dict[str, SliceRecord] = {}
        self._seen_events: set[str] = set()
        self._seen_execs: set[str] = set()
        self._seen_requests: set[str] = set()
        self._paused = False
        self._cancel_reason: str | None = None
        self._status = IcebergStatus.WORKING
        self._notes: list[str] = []
        self._consecutive_rejects = 0
        self._expires_at = inp.expires_at
        self._expired = False
        self._end_reason: str | None = None
        self._writers: dict[str, WriterKey] | None = None
        """Keys whose signed slice records count; None until the parent check passed."""
        self._signed_events: bool | None = None
        """Whether slice events must come signed (None: not known before run starts)."""
        self._fresh: FreshWriters | None = None
        """Re-reads the writer keys before they vouch for a record (runs under the patch)."""
        self._fresh_task: asyncio.Task[None] | None = None
        self._last: str | None = None
        """The last slice event or control, as the UI's current details show it."""

    @property
    def _filled(self) -> int:
        return sum(s.filled_qty for s in self._slices)

    @property
    def _committed(self) -> int:
        """Filled, plus what the broker reported filled on ended slices whose executions are
        still on their way: what the next slice is sized against, so nothing overfills."""
        return sum(s.committed for s in self._slices)

    @property
    def _working_open(self) -> int:
        """Shares the working slice (if any) may still fill: asked for, not yet taken."""
        return sum(max(0, s.qty - s.committed) for s in self._slices if not s.done)

    def _slice_fills(self) -> list[SliceFill]:
        return [
            SliceFill(qty=s.filled_qty, price=s.notional / s.filled_qty, mid=s.mid_at_send)
            for s in self._slices
            if s.filled_qty
        ]

    def _first_time(self, request_id: str) -> bool:
        if not request_id:
            return True
        if request_id in self._seen_requests:
            return False
        self._seen_requests.add(request_id)
        return True

    def _session_closed(self) -> bool:
        """The parent's expiry has passed (never, without one); remembered once seen."""
        if self._expires_at is not None and not self._expired and workflow.now() >= self._expires_at:
            self._expired = True
        return self._expired

    @staticmethod
    def _until(when: datetime) -> float:
        return max(0.0, (when - workflow.now()).total_seconds())

    def _report(self, s: SliceRecord) -> SliceReport:
        return SliceReport(
            slice_no=s.slice_no,
            command_id=s.command_id,
            qty=s.qty,
            price=s.price,
            mid_at_send=s.mid_at_send,
            sent_at=s.sent_at,
            filled_qty=s.filled_qty,
            avg_price=s.avg_price,
            outcome=s.outcome,
        )

    def _publish_search_attributes(self) -> None:
        workflow.upsert_search_attributes(
            [
                search.SYMBOL.value_set(self._inp.symbol),
                search.ACCOUNT.value_set(self._inp.account),
                search.AGENT.value_set(self._inp.agent_id),
                search.STATE.value_set(self._status.value),
            ]
        )
        # The status changed: so did the ticket.
        self._show()

    def _show(self) -> None:
        """The parent's ticket as the Temporal UI shows it (current details)."""
        working = next((s for s in self._slices if not s.done), None)
        filled = self._filled
        notional = sum((s.notional for s in self._slices), Decimal(0))
        lines = ticket.iceberg_details(
            status=self._status.value,
            side=self._inp.side.value,
            symbol=self._inp.symbol,
            account=self._inp.account,
            total=self._total,
            display=self._display,
            limit=self._limit,
            filled=filled,
            avg=notional / filled if filled else None,
            working=(
                f"{working.label}: {working.filled_qty} of {working.qty} @ {ticket.price(working.price)}"
                if working is not None
                else None
            ),
            expires_at=self._expires_at,
            last=self._last,
        )
        if self._notes:
            lines += f"\nnote: {self._notes[-1]}"
        workflow.set_current_details(lines)
