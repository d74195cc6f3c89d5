"""The circuit breaker's durable state: which ledger entries halt the floor and which re-arm it,
and the floor's own signed record of an automatic trip (pure). The breaker that acts on the
state is :mod:`hotpath.circuit_breaker` (its docstring lists every module of the breaker).

The trading state is whatever the newest breaker entry in the ledger says:

================  ==========================================  =================  =========
entry kind        written by                                  signed by          state
================  ==========================================  =================  =========
breaker_tripped   the hot path, on a flash crash (automatic)  the breaker's key  HALTED
breaker_trip      an operator's or a trader's command,        an operator key,   HALTED
                  through intake                              or a trader's key
breaker_arm       an operator's or a trader's command,        an operator key,   ACTIVE
                  through intake                              or a trader's key
================  ==========================================  =================  =========

A trader's key speaks for the breaker only with that trader's WebAuthn authorization in the
signed command (:func:`trading.sentry.trader_problem`, the sentry's own rule).

The breaker's key is a ``service`` key of the hot path's configured breaker agent
(``floor-breaker``): no other floor key speaks for the breaker. No breaker entry at all is
ACTIVE (a new floor). An entry that does not verify (signature,
signer's role) counts as a trip, never as an arm: whoever can write the ledger without the
operator's key can halt the floor at worst, never re-arm it.

A :class:`TripRecord` is canonical JSON (RFC 8785) shaped like a command so the ledger's
columns (kind, account, agent_id, command_id, nonce, issued_at) come straight from it; it
names the symbol, the move (reference high, crashing price, exact drop) and the time::

    {"v": 1, "kind": "breaker_tripped", "command_id": "trip-...", "agent_id": "floor-breaker",
     "account": "*", "nonce": "...", "issued_at": "2026-...Z", "symbol": "AAPL",
     "reference_high": "231.50", "price": "196.77", "drop_pct": "15.00...",
     "threshold_pct": "10", "window_ms": 60000}

Prices and percentages are exact decimal strings: the drop is the detector's exact Decimal
quotient (28 significant digits, the default context), written as computed, never rounded.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import rfc8785

from trading.commands import (
    FLOOR_WIDE,
    Command,
    CommandInvalid,
    CommandKind,
    format_timestamp_ms,
    parse_timestamp_ms,
)
from trading.risk import TradingState
from trading.sentry import ROLE_OPERATOR, ROLE_TRADER, trader_problem

ROLE_SERVICE = "service"

KIND_TRIPPED = "breaker_tripped"
"""The ledger kind of an automatic trip (a :class:`TripRecord`)."""

HALTING_KINDS = frozenset({KIND_TRIPPED, CommandKind.BREAKER_TRIP.value})
ARMING_KINDS = frozenset({CommandKind.BREAKER_ARM.value})
BREAKER_KINDS = HALTING_KINDS | ARMING_KINDS
"""Every ledger kind that changes the trading state."""
SIGNER_ROLES: dict[str, frozenset[str]] = {
    KIND_TRIPPED: frozenset({ROLE_SERVICE}),
    CommandKind.BREAKER_TRIP.value: frozenset({ROLE_OPERATOR, ROLE_TRADER}),
    CommandKind.BREAKER_ARM.value: frozenset({ROLE_OPERATOR, ROLE_TRADER}),
}
"""The key registry roles (``agent_keys.role``) whose keys may sign each breaker entry."""


def signer_problem(
    kind: str, role: str, agent_id: str, breaker_agent: str | None, command: Command | None = None
) -> str | None:
    """Why a key of ``role`` held by ``agent_id`` may not sign a breaker entry of ``kind``
    (None: it may). An automatic trip is the breaker's own: with ``breaker_agent`` known, a
    trip signed by any other service key (the Sniper's, say) carries no authority. A trader's
    key needs the signed ``command`` to carry that trader's authorization."""
    roles = SIGNER_ROLES[kind]
    if role not in roles:
        first = min(roles - {ROLE_TRADER})
        by_trader = " (or a trader's key, with the trader's authorization)" if ROLE_TRADER in roles else ""
        return f"{kind} needs a key with the {first} role, not {role}{by_trader}"
    if kind == KIND_TRIPPED and breaker_agent is not None and agent_id != breaker_agent:
        return f"{kind} is signed by the breaker's key ({breaker_agent}), not {agent_id}'s"
    if role == ROLE_TRADER:
        if command is None:
            return f"{kind} signed by a trader's key is not a command naming its authorization"
        return trader_problem(command, role, agent_id)
    return None


_KEYS = frozenset(
    {
        "v", "kind", "command_id", "agent_id", "account", "nonce", "issued_at",
        "symbol", "reference_high", "price", "drop_pct", "threshold_pct", "window_ms",
        "cancelled_orders", "tick_to_cancel_us",
    }
)  # fmt: skip
_DECIMALS = ("reference_high", "price", "drop_pct", "threshold_pct")
_TEXT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}")


class TripRecordInvalid(ValueError):
    """A trip record that does not parse; ``field`` names the key."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def state_after(kind: str) -> TradingState:
    """The trading state a breaker entry of ``kind`` leaves the floor in."""
    if kind in ARMING_KINDS:
        return TradingState.ACTIVE
    if kind in HALTING_KINDS:
        return TradingState.HALTED
    raise ValueError(f"{kind!r} is not a breaker entry")


@dataclass(frozen=True)
class TripRecord:
    command_id: str
    agent_id: str
    """The floor service whose key signs the record (``floor-breaker``)."""
    nonce: str
    issued_at: datetime
    """When the breaker tripped: UTC, whole milliseconds."""
    symbol: str
    reference_high: Decimal
    price: Decimal
    drop_pct: Decimal
    threshold_pct: Decimal
    window_ms: int
    cancelled_orders: int | None = None
    """The floor's orders working when the global cancel went out. Both cancel figures are known
    before the record is signed, so the trader's banner shows signed figures; records written
    before they were carried have neither (and sign the same bytes as then)."""
    tick_to_cancel_us: Decimal | None = None
    """From the crashing tick's receipt to the global cancel on the broker's socket."""

    def to_json_dict(self) -> dict[str, Any]:
        out = self._move_dict()
        if self.cancelled_orders is not None:
            out["cancelled_orders"] = self.cancelled_orders
        if self.tick_to_cancel_us is not None:
            out["tick_to_cancel_us"] = format(self.tick_to_cancel_us, "f")
        return out

    def _move_dict(self) -> dict[str, Any]:
        return {
            "v": 1,
            "kind": KIND_TRIPPED,
            "command_id": self.command_id,
            "agent_id": self.agent_id,
            "account": FLOOR_WIDE,
            "nonce": self.nonce,
            "issued_at": format_timestamp_ms(self.issued_at),
            "symbol": self.symbol,
            "reference_high": format(self.reference_high, "f"),
            "price": format(self.price, "f"),
            "drop_pct": format(self.drop_pct, "f"),
            "threshold_pct": format(self.threshold_pct, "f"),
            "window_ms": self.window_ms,
        }

    def canonical(self) -> bytes:
        return rfc8785.dumps(self.to_json_dict())

    @classmethod
    def from_json_dict(cls, data: Any) -> TripRecord:
        if not isinstance(data, dict):
            raise TripRecordInvalid("record", "must be an object")
        for key in data:
            if key not in _KEYS:
                raise TripRecordInvalid(str(key), "not allowed in a trip record")
        if data.get("v") != 1 or data.get("kind") != KIND_TRIPPED:
            raise TripRecordInvalid("kind", f"not a v1 {KIND_TRIPPED} record")
        if data.get("account") != FLOOR_WIDE:
            raise TripRecordInvalid("account", f"a trip halts the whole floor: must be {FLOOR_WIDE!r}")
        for key in ("command_id", "agent_id", "nonce", "symbol"):
            if not isinstance(data.get(key), str) or _TEXT.fullmatch(data[key]) is None:
                raise TripRecordInvalid(key, "required: 1-128 characters of A-Z a-z 0-9 . _ : @ / -")
        values: dict[str, Decimal] = {}
        for key in _DECIMALS:
            try:
                values[key] = Decimal(data[key])
            except (KeyError, TypeError, InvalidOperation):
                raise TripRecordInvalid(key, "required: a decimal string") from None
            if not isinstance(data[key], str) or not values[key].is_finite():
                raise TripRecordInvalid(key, "required: a decimal string")
        window = data.get("window_ms")
        if type(window) is not int or window <= 0:
            raise TripRecordInvalid("window_ms", "required: a positive integer")
        issued_raw: Any = data.get("issued_at")  # checked by parse_timestamp_ms, whatever it is
        try:
            issued_at = parse_timestamp_ms(issued_raw)
        except CommandInvalid as exc:
            raise TripRecordInvalid("issued_at", exc.reason) from None
        return cls(
            command_id=data["command_id"],
            agent_id=data["agent_id"],
            nonce=data["nonce"],
            issued_at=issued_at,
            symbol=data["symbol"],
            window_ms=window,
            cancelled_orders=_cancelled_orders(data),
            tick_to_cancel_us=_tick_to_cancel_us(data),
            **values,
        )

    @classmethod
    def from_canonical(cls, payload: bytes) -> TripRecord:
        try:
            return cls.from_json_dict(json.loads(payload))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise TripRecordInvalid("record", f"not JSON: {exc}") from None


def _cancelled_orders(data: dict[str, Any]) -> int | None:
    value = data.get("cancelled_orders")
    if value is not None and (type(value) is not int or value < 0):
        raise TripRecordInvalid("cancelled_orders", "optional: a whole number >= 0")
    return value


def _tick_to_cancel_us(data: dict[str, Any]) -> Decimal | None:
    value = data.get("tick_to_cancel_us")
    if value is None:
        return None
    try:
        micros = Decimal(value) if isinstance(value, str) else None
    except InvalidOperation:
        micros = None
    if micros is None or not micros.is_finite() or micros < 0:
        raise TripRecordInvalid("tick_to_cancel_us", "optional: a decimal string >= 0")
    return micros
