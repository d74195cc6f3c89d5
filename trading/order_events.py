"""The ``orders.events`` record: what happened to one order, as the broker reported it.

The hot path produces these from broker callbacks; the Temporal bridge turns them into workflow
signals; the API fans them out to the HUD. All three read the same frozen dataclass through
:func:`encode` / :func:`decode`, so a field added here reaches everyone at once.

Wire format: UTF-8 JSON object. Prices are decimal *strings* (``"187.25"``), never JSON numbers,
so no reader ever sees a binary float. Quantities are JSON integers. ``ts`` is ISO 8601 with an
explicit UTC offset. Unknown keys are ignored on decode (a newer producer may add fields); a
missing or malformed required key raises :class:`OrderEventError` naming the key.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from trading.orders import Fill

SCHEMA_VERSION = 1


class OrderEventError(ValueError):
    """An ``orders.events`` record that cannot be decoded or is internally inconsistent."""


class EventKind(enum.StrEnum):
    ACCEPTED = "accepted"
    """Passed the sentry, sizer and risk and is in the ledger; not yet at the broker."""
    REJECTED = "rejected"
    """Refused by the floor (``reason`` names the rule) or by the broker."""
    SUBMITTED = "submitted"
    """The broker acknowledged the order and it is working."""
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    """Ended by its time in force (a DAY order at the close, an IOC remainder)."""


TERMINAL_KINDS = frozenset({EventKind.REJECTED, EventKind.FILLED, EventKind.CANCELLED, EventKind.EXPIRED})
FILL_KINDS = frozenset({EventKind.PARTIALLY_FILLED, EventKind.FILLED})

SIDES = frozenset({"BUY", "SELL"})


@dataclass(frozen=True)
class OrderEvent:
    event_id: str
    """Unique per event; consumers dedupe on it (Kafka delivers at least once)."""
    command_id: str
    """The command that created the order: the order's identity across the floor."""
    parent_id: str | None
    """For an iceberg slice, the iceberg's workflow id; None for a stand-alone order."""
    kind: EventKind
    account: str
    symbol: str
    agent_id: str
    side: str
    """``BUY`` or ``SELL``."""
    quantity: int
    """The order's total quantity."""
    filled_qty: int
    """Cumulative filled quantity after this event."""
    avg_fill_price: Decimal | None
    """Quantity-weighted average of all fills so far; None until the first fill."""
    last_fill: Fill | None
    """The execution this event reports, for partially_filled / filled (None otherwise)."""
    reason: str | None
    """Why it was rejected / cancelled / expired, as a dotted name (``risk.max_dollar_risk``)."""
    ts: datetime
    limit_price: Decimal | None = None
    tif: str | None = None
    """Time in force: ``DAY``, ``GTC``, ``IOC`` (None: the broker's default, DAY)."""
    broker_order_id: int | None = None
    iceberg_envelope: str | None = None
    """Only on the ``accepted`` record of an iceberg parent: the parent's signed wire envelope
    (JSON text), from which the bridge starts the ``Iceberg`` workflow. A parent is never sent
    to the broker itself; its slices are orders of their own. None on every other record (and
    on records written before the field existed)."""
    broker_filled_qty: int | None = None
    """On a terminal record the broker ended (cancelled, inactive): the cumulative quantity the
    broker reported filled when it did. More than ``filled_qty`` while executions are still on
    their way (a fill racing the cancel): whoever sizes what comes next counts these shares as
    filled already. None elsewhere (and on records written before the field existed). Carried
    on ``orders.events`` for the consumers that size what comes next; the ``order_events`` state
    rows keep the fills themselves, which is what recovery and reconciliation count."""
    control: str | None = None
    """Only on the ``accepted`` record of an iceberg control (``iceberg_amend``, ...): its kind.
    ``command_id`` is the control command's, ``parent_id`` the iceberg it steers; the bridge
    hands the command id to that Iceberg, which reads the command from the ledger itself (the
    record is a doorbell, not the authority). Never an order; never an order-state row."""

    def __post_init__(self) -> None:
        if not self.event_id or not self.command_id:
            raise OrderEventError("event_id and command_id must be non-empty")
        if self.side not in SIDES:
            raise OrderEventError(f"side must be BUY or SELL, got {self.side!r}")
        if self.quantity <= 0:
            raise OrderEventError(f"quantity must be positive, got {self.quantity}")
        if not 0 <= self.filled_qty <= self.quantity:
            raise OrderEventError(f"filled_qty {self.filled_qty} outside [0, {self.quantity}]")
        if self.ts.tzinfo is None:
            raise OrderEventError("ts must carry a timezone")
        if self.last_fill is not None and self.last_fill.qty <= 0:
            raise OrderEventError(f"last_fill.qty must be positive, got {self.last_fill.qty}")
        if self.kind in FILL_KINDS and self.last_fill is None:
            raise OrderEventError(f"{self.kind} event needs last_fill")
        if self.kind is EventKind.FILLED and self.filled_qty != self.quantity:
            raise OrderEventError("filled event must have filled_qty == quantity")
        if self.iceberg_envelope is not None and (self.kind is not EventKind.ACCEPTED or self.parent_id):
            raise OrderEventError("iceberg_envelope belongs on an accepted record of a parent order")
        if self.control is not None and (self.kind is not EventKind.ACCEPTED or not self.parent_id):
            raise OrderEventError("control belongs on an accepted record naming its parent")
        if self.broker_filled_qty is not None and not (
            self.terminal and 0 <= self.broker_filled_qty <= self.quantity
        ):
            raise OrderEventError(
                f"broker_filled_qty {self.broker_filled_qty}: only on a terminal record, in [0, quantity]"
            )

    @property
    def remaining(self) -> int:
        return self.quantity - self.filled_qty

    @property
    def terminal(self) -> bool:
        return self.kind in TERMINAL_KINDS

    @property
    def iceberg_parent(self) -> bool:
        """The accepted record of an iceberg parent (the bridge starts its workflow)."""
        return self.iceberg_envelope is not None

    @property
    def key(self) -> bytes:
        """Kafka key: ``account/symbol``, so one instrument's events keep their order."""
        return f"{self.account}/{self.symbol}".encode()


def to_dict(event: OrderEvent) -> dict[str, Any]:
    return {
        "v": SCHEMA_VERSION,
        "event_id": event.event_id,
        "command_id": event.command_id,
        "parent_id": event.parent_id,
        "kind": event.kind.value,
        "account": event.account,
        "symbol": event.symbol,
        "agent_id": event.agent_id,
        "side": event.side,
        "quantity": event.quantity,
        "filled_qty": event.filled_qty,
        "avg_fill_price": _dec_out(event.avg_fill_price),
        "last_fill": None
        if event.last_fill is None
        else {
            "exec_id": event.last_fill.exec_id,
            "qty": event.last_fill.qty,
            "price": str(event.last_fill.price),
        },
        "reason": event.reason,
        "ts": event.ts.astimezone(UTC).isoformat(),
        "limit_price": _dec_out(event.limit_price),
        "tif": event.tif,
        "broker_order_id": event.broker_order_id,
        "iceberg_envelope": event.iceberg_envelope,
        "broker_filled_qty": event.broker_filled_qty,
        "control": event.control,
    }


def encode(event: OrderEvent) -> bytes:
    return json.dumps(to_dict(event), separators=(",", ":"), sort_keys=True).encode()


def decode(raw: bytes | str) -> OrderEvent:
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise OrderEventError(f"not JSON: {type(exc).__name__}: {exc}") from exc
    if not isinstance(data, dict):
        raise OrderEventError("an order event is a JSON object")
    return from_dict(data)


def from_dict(data: dict[str, Any]) -> OrderEvent:
    fill_raw = data.get("last_fill")
    last_fill = None
    if fill_raw is not None:
        if not isinstance(fill_raw, dict):
            raise OrderEventError("last_fill must be an object or null")
        last_fill = Fill(
            exec_id=_str(fill_raw, "exec_id", "last_fill."),
            qty=_int(fill_raw, "qty", "last_fill."),
            price=_dec(fill_raw, "price", "last_fill."),
        )
    kind_raw = _str(data, "kind")
    try:
        kind = EventKind(kind_raw)
    except ValueError as exc:
        raise OrderEventError(f"unknown kind {kind_raw!r}") from exc
    try:
        ts = datetime.fromisoformat(_str(data, "ts"))
    except ValueError as exc:
        raise OrderEventError(f"ts is not ISO 8601: {data.get('ts')!r}") from exc
    broker_order_id = data.get("broker_order_id")
    if broker_order_id is not None and (type(broker_order_id) is not int):
        raise OrderEventError("broker_order_id must be an integer or null")
    return OrderEvent(
        event_id=_str(data, "event_id"),
        command_id=_str(data, "command_id"),
        parent_id=_opt_str(data, "parent_id"),
        kind=kind,
        account=_str(data, "account"),
        symbol=_str(data, "symbol"),
        agent_id=_str(data, "agent_id"),
        side=_str(data, "side"),
        quantity=_int(data, "quantity"),
        filled_qty=_int(data, "filled_qty"),
        avg_fill_price=_opt_dec(data, "avg_fill_price"),
        last_fill=last_fill,
        reason=_opt_str(data, "reason"),
        ts=ts,
        limit_price=_opt_dec(data, "limit_price"),
        tif=_opt_str(data, "tif"),
        broker_order_id=broker_order_id,
        iceberg_envelope=_opt_str(data, "iceberg_envelope"),
        broker_filled_qty=None if data.get("broker_filled_qty") is None else _int(data, "broker_filled_qty"),
        control=_opt_str(data, "control"),
    )


def _dec_out(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _str(data: dict[str, Any], key: str, prefix: str = "") -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise OrderEventError(f"{prefix}{key} must be a string, got {value!r}")
    return value


def _opt_str(data: dict[str, Any], key: str) -> str | None:
    return None if data.get(key) is None else _str(data, key)


def _int(data: dict[str, Any], key: str, prefix: str = "") -> int:
    value = data.get(key)
    # bool is an int subclass; a JSON true is never a quantity.
    if type(value) is not int:
        raise OrderEventError(f"{prefix}{key} must be an integer, got {value!r}")
    return value


def _dec(data: dict[str, Any], key: str, prefix: str = "") -> Decimal:
    value = data.get(key)
    if not isinstance(value, str):
        raise OrderEventError(f"{prefix}{key} must be a decimal string, got {value!r}")
    try:
        result = Decimal(value)
    except InvalidOperation as exc:
        raise OrderEventError(f"{prefix}{key} is not a decimal: {value!r}") from exc
    if not result.is_finite():
        raise OrderEventError(f"{prefix}{key} must be finite, got {value!r}")
    return result


def _opt_dec(data: dict[str, Any], key: str) -> Decimal | None:
    return None if data.get(key) is None else _dec(data, key)
