"""What the Iceberg workflow (:mod:`workflows.iceberg`) takes and gives: its input, the payloads
of its signals and of its ``progress`` query, its result with one report per slice, and the
parent's status.

Frozen dataclasses, one in and one out for each: fields can be added (with defaults) without
breaking the histories of running parents.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from trading.commands import Edge, Side, TimeInForce
    from workflows.slicing import FillQuality


class IcebergStatus(enum.StrEnum):
    WORKING = "Working"
    PAUSED = "Paused"
    COMPLETED = "Completed"
    CANCELLED = "Cancelled"
    REJECTED = "Rejected"
    EXPIRED = "Expired"
    """The session closed (``expires_at``) before the parent filled."""


@dataclass(frozen=True)
class IcebergInput:
    account: str
    symbol: str
    side: Side
    total_qty: int
    display_qty: int
    edge: Edge
    """The parent's claimed edge; each slice carries it to the sizer (which may size it down)."""
    limit_price: Decimal | None = None
    agent_id: str = "sniper"
    tif: TimeInForce = TimeInForce.DAY
    jitter: Decimal = Decimal(0)
    """Move each slice's size by up to this fraction of the display size (0.05: ±5 %)."""
    cancel_confirm_timeout_s: float = 30.0
    """Re-send a slice cancel the broker has not confirmed after this long; also how long the
    finished parent waits for executions the broker reported filled but has not yet sent."""
    interval_scale: Decimal = Decimal(1)
    """Multiplies the 3-7 s interval. 1 in production; a venue whose market clock runs N times
    faster than real time is matched with 1/N, so both run on the same time base."""
    expires_at: datetime | None = None
    """When a DAY parent stops sending slices (the session close, set by the bridge); None for
    GTC and for inputs written before this field existed."""


@dataclass(frozen=True)
class PauseRequest:
    request_id: str = ""


@dataclass(frozen=True)
class ResumeRequest:
    request_id: str = ""


@dataclass(frozen=True)
class CancelRequest:
    request_id: str = ""
    reason: str = "trader"


@dataclass(frozen=True)
class ControlSignal:
    """A control command for this parent was ledgered: its command id (nothing else is taken
    from the signal)."""

    command_id: str


@dataclass(frozen=True)
class AmendRequest:
    request_id: str
    total_qty: int | None = None
    display_qty: int | None = None
    limit_price: Decimal | None = None


@dataclass(frozen=True)
class SliceReport:
    slice_no: int
    command_id: str
    qty: int
    price: Decimal
    mid_at_send: Decimal
    sent_at: datetime
    filled_qty: int
    avg_price: Decimal | None
    outcome: str


@dataclass(frozen=True)
class ProgressQuery:
    """Empty today; a place for options without changing the query's signature."""


@dataclass(frozen=True)
class IcebergProgress:
    status: IcebergStatus
    total_qty: int
    display_qty: int
    limit_price: Decimal | None
    filled_qty: int
    working_qty: int
    slices_sent: int
    avg_fill_price: Decimal | None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class IcebergResult:
    status: IcebergStatus
    account: str
    symbol: str
    side: Side
    total_qty: int
    filled_qty: int
    started_at: datetime
    finished_at: datetime
    slices: list[SliceReport]
    quality: FillQuality | None
    notes: list[str] = field(default_factory=list)
    reason: str | None = None
    """Why the parent ended short of its total (None when it completed)."""
