"""The order state machine: a transition table and :meth:`Order.apply` over immutable events.

States::

    STAGED ─Submitted─▶ PENDING ─Accepted─▶ ACCEPTED ─Fill─▶ PARTIALLY_FILLED ─Fill─▶ FILLED
                          │                  │    ▲                │
                          │                  │    └CancelRejected──┤ (back to where it was)
                          │           CancelRequested ─▶ PENDING_CANCEL ─Cancelled─▶ CANCELLED
                          └─Rejected─▶ REJECTED            Expired ─▶ EXPIRED

``apply`` returns a new :class:`Order`; nothing is mutated. An event the table does not allow
in the current state raises :class:`InvalidTransition`; a fill whose ``exec_id`` was already
applied raises :class:`DuplicateExecution`; a fill beyond the order's quantity raises
:class:`Overfill`.

Some transitions only a real venue produces, never the floor itself; they are listed in
:data:`VENUE_ONLY` so reconciliation and monitoring can flag them:

* CANCELLED → FILLED / CANCELLED (+fill): a fill that crossed our cancel on the wire.
* EXPIRED → FILLED / EXPIRED (+fill): the same race against expiry.
* PENDING_CANCEL → ACCEPTED / PARTIALLY_FILLED: the venue refused the cancel.
* ACCEPTED / PARTIALLY_FILLED / PENDING_CANCEL → REJECTED: the venue ended a working order on
  its own (IB reports such an order ``Inactive``).

``ACCEPTED`` is the venue's acceptance: the order is working there. It is not the
``accepted`` record of :mod:`trading.order_events`, which says the floor took the command
(that order is still STAGED here); :mod:`trading.order_state` maps the records onto these
events.

Average fill price: ``filled_notional`` (sum of qty x price, exact) divided by ``filled_qty``
in the default Decimal context (28 significant digits, half-even); only the display value is
ever rounded.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from decimal import Decimal

from trading.commands import Side


class OrderState(enum.StrEnum):
    STAGED = "STAGED"
    PENDING = "PENDING"
    ACCEPTED = "ACCEPTED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    PENDING_CANCEL = "PENDING_CANCEL"
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"


TERMINAL_STATES = frozenset(
    {OrderState.FILLED, OrderState.CANCELLED, OrderState.REJECTED, OrderState.EXPIRED}
)


class OrderError(ValueError):
    """Base of the state machine's named errors."""


class InvalidTransition(OrderError):
    def __init__(self, state: OrderState, event: OrderEvent) -> None:
        super().__init__(f"{type(event).__name__} not allowed in state {state.value}")
        self.state = state
        self.event = event


class DuplicateExecution(OrderError):
    def __init__(self, exec_id: str) -> None:
        super().__init__(f"execution {exec_id!r} already applied")
        self.exec_id = exec_id


class Overfill(OrderError):
    pass


@dataclass(frozen=True)
class Submitted:
    """The floor sent the order to the broker."""

    broker_order_id: int | None = None


@dataclass(frozen=True)
class Accepted:
    """The venue acknowledged the order; it is working."""


@dataclass(frozen=True)
class Rejected:
    reason: str


@dataclass(frozen=True)
class Fill:
    """One execution as the venue reports it; ``exec_id`` is the venue's and is unique.

    The one fill of the code base: the state machine applies it, and an ``orders.events``
    record carries it as its ``last_fill``."""

    exec_id: str
    qty: int
    price: Decimal


@dataclass(frozen=True)
class CancelRequested:
    pass


@dataclass(frozen=True)
class CancelRejected:
    """The venue refused the cancel (usually: already filled or unknown)."""

    reason: str = ""


@dataclass(frozen=True)
class Cancelled:
    reason: str | None = None


@dataclass(frozen=True)
class Expired:
    pass


OrderEvent = Submitted | Accepted | Rejected | Fill | CancelRequested | CancelRejected | Cancelled | Expired

S = OrderState
_WORKING = (S.ACCEPTED, S.PARTIALLY_FILLED)

TRANSITIONS: dict[tuple[OrderState, type], frozenset[OrderState]] = {
    (S.STAGED, Submitted): frozenset({S.PENDING}),
    (S.STAGED, Rejected): frozenset({S.REJECTED}),
    (S.STAGED, Cancelled): frozenset({S.CANCELLED}),
    (S.STAGED, Expired): frozenset({S.EXPIRED}),
    (S.PENDING, Accepted): frozenset({S.ACCEPTED}),
    (S.PENDING, Rejected): frozenset({S.REJECTED}),
    (S.PENDING, Fill): frozenset({S.PARTIALLY_FILLED, S.FILLED}),
    (S.PENDING, CancelRequested): frozenset({S.PENDING_CANCEL}),
    (S.PENDING, Cancelled): frozenset({S.CANCELLED}),
    (S.PENDING, Expired): frozenset({S.EXPIRED}),
    (S.ACCEPTED, Fill): frozenset({S.PARTIALLY_FILLED, S.FILLED}),
    (S.ACCEPTED, CancelRequested): frozenset({S.PENDING_CANCEL}),
    (S.ACCEPTED, Cancelled): frozenset({S.CANCELLED}),
    (S.ACCEPTED, Expired): frozenset({S.EXPIRED}),
    (S.ACCEPTED, Rejected): frozenset({S.REJECTED}),
    (S.PARTIALLY_FILLED, Fill): frozenset({S.PARTIALLY_FILLED, S.FILLED}),
    (S.PARTIALLY_FILLED, CancelRequested): frozenset({S.PENDING_CANCEL}),
    (S.PARTIALLY_FILLED, Cancelled): frozenset({S.CANCELLED}),
    (S.PARTIALLY_FILLED, Expired): frozenset({S.EXPIRED}),
    (S.PARTIALLY_FILLED, Rejected): frozenset({S.REJECTED}),
    (S.PENDING_CANCEL, Fill): frozenset({S.PENDING_CANCEL, S.FILLED}),
    (S.PENDING_CANCEL, Cancelled): frozenset({S.CANCELLED}),
    (S.PENDING_CANCEL, CancelRejected): frozenset({S.ACCEPTED, S.PARTIALLY_FILLED}),
    (S.PENDING_CANCEL, Expired): frozenset({S.EXPIRED}),
    (S.PENDING_CANCEL, Rejected): frozenset({S.REJECTED}),
    (S.CANCELLED, Fill): frozenset({S.CANCELLED, S.FILLED}),
    (S.EXPIRED, Fill): frozenset({S.EXPIRED, S.FILLED}),
}
"""(state, event type) -> the states the event may lead to; which one depends on the fills."""

VENUE_ONLY: frozenset[tuple[OrderState, OrderState]] = frozenset(
    {
        (S.CANCELLED, S.FILLED),
        (S.CANCELLED, S.CANCELLED),
        (S.EXPIRED, S.FILLED),
        (S.EXPIRED, S.EXPIRED),
        (S.PENDING_CANCEL, S.ACCEPTED),
        (S.PENDING_CANCEL, S.PARTIALLY_FILLED),
        (S.ACCEPTED, S.REJECTED),
        (S.PARTIALLY_FILLED, S.REJECTED),
        (S.PENDING_CANCEL, S.REJECTED),
    }
)
"""(from, to) pairs only a venue produces (late fills, failed cancels, working orders it ends)."""

STAGE: dict[OrderState, int] = {
    S.STAGED: 0,
    S.PENDING: 1,
    S.ACCEPTED: 2,
    S.PARTIALLY_FILLED: 2,
    S.PENDING_CANCEL: 3,
    S.FILLED: 4,
    S.CANCELLED: 4,
    S.REJECTED: 4,
    S.EXPIRED: 4,
}
"""How far along its life each state is. Status reports cross on the wire and two broker
sessions report the same order, so a report of an earlier stage than the order is at is stale;
the table above never moves an order to an earlier stage but by a :data:`VENUE_ONLY`
transition (a refused cancel)."""


@dataclass(frozen=True)
class Order:
    command_id: str
    side: Side
    quantity: int
    state: OrderState = OrderState.STAGED
    filled_qty: int = 0
    filled_notional: Decimal = Decimal(0)
    exec_ids: frozenset[str] = field(default_factory=frozenset)
    broker_order_id: int | None = None
    reason: str | None = None
    last_transition_venue_only: bool = False
    """True when the most recent event took a :data:`VENUE_ONLY` transition."""

    def __post_init__(self) -> None:
        if type(self.quantity) is not int or self.quantity <= 0:
            raise OrderError(f"quantity must be a positive integer, got {self.quantity!r}")

    @property
    def remaining(self) -> int:
        return self.quantity - self.filled_qty

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def avg_fill_price(self) -> Decimal | None:
        return None if self.filled_qty == 0 else self.filled_notional / self.filled_qty

    def can_apply(self, event: OrderEvent) -> bool:
        return (self.state, type(event)) in TRANSITIONS

    def apply(self, event: OrderEvent) -> Order:
        allowed = TRANSITIONS.get((self.state, type(event)))
        if allowed is None:
            raise InvalidTransition(self.state, event)
        if isinstance(event, Fill):
            return self._apply_fill(event, allowed)
        if isinstance(event, CancelRejected):
            target = S.PARTIALLY_FILLED if self.filled_qty else S.ACCEPTED
            return self._to(target)
        if isinstance(event, Submitted):
            return replace(self._to(S.PENDING), broker_order_id=event.broker_order_id)
        if isinstance(event, Rejected):
            return replace(self._to(S.REJECTED), reason=event.reason)
        if isinstance(event, Cancelled):
            return replace(self._to(S.CANCELLED), reason=event.reason)
        (target,) = allowed
        return self._to(target)

    def _apply_fill(self, fill: Fill, allowed: frozenset[OrderState]) -> Order:
        if fill.exec_id in self.exec_ids:
            raise DuplicateExecution(fill.exec_id)
        if type(fill.qty) is not int or fill.qty <= 0:
            raise OrderError(f"fill qty must be a positive integer, got {fill.qty!r}")
        filled = self.filled_qty + fill.qty
        if filled > self.quantity:
            raise Overfill(f"fill {fill.exec_id!r} takes {filled} of {self.quantity}")
        if filled == self.quantity:
            target = S.FILLED
        elif self.state in (S.PENDING, S.ACCEPTED):
            target = S.PARTIALLY_FILLED
        else:
            # Partial fills keep PARTIALLY_FILLED / PENDING_CANCEL / CANCELLED / EXPIRED.
            target = self.state
        assert target in allowed, (self.state, target)
        moved = self._to(target)
        return replace(
            moved,
            filled_qty=filled,
            filled_notional=self.filled_notional + fill.qty * fill.price,
            exec_ids=self.exec_ids | {fill.exec_id},
        )

    def _to(self, target: OrderState) -> Order:
        return replace(self, state=target, last_transition_venue_only=(self.state, target) in VENUE_ONLY)
