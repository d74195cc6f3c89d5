"""Compare the broker's view of an account with the floor's, after a reconnect or failover.

Pure: snapshots in, a plan out. The one reconciler is the hot path's: its broker adapter asks
the broker at the start of every epoch (:mod:`brokers.ib_reconcile`) and the hot path compares
the answer with its order map, which is the ledger's view (restored from it at start, and every
change written to it), carries the plan out and reports it (:mod:`hotpath.reconciler`). Rules:

- An execution of one of our orders whose ``exec_id`` the ledger has not recorded is a
  *missed fill*. Missed fills of one order are applied in execution-time order and never past
  the order's quantity (the excess is reported as an anomaly, not recorded), so nothing is
  counted twice and nothing overfills.
- An order the ledger shows as working at the broker (submitted or partially filled), that the
  broker no longer lists as open and that its executions do not complete, is *unknown at the
  broker*: the broker ended it while we could not hear (a cancel or expiry during the outage).
  It is marked, not resent: resending a command is the hot path's job, and only for orders the
  broker never had (it holds those and resends them on reconnect, keyed by ``orderRef``).
- An order the ledger shows only as accepted (possibly held for sending) and the broker does not
  list yet is *awaiting the broker*: reported, left alone.
- Orders whose last ledger record is newer than ``as_of - grace`` are skipped: their broker
  report may simply not have arrived yet. Not so an order the broker is *known to have lost*
  (``gone``): one the broker had acknowledged before it was asked, in a running process whose
  adapter then found it listed nowhere (neither open, completed nor executed). Its broker
  report has arrived, and with the adapter never sending it again, skipping it would leave it
  working for good. An order skipped for grace is looked at again at the next epoch.
- Broker orders and executions with no ledger order are *foreign* (another client on the
  account, or manual trading): reported, never adopted.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from trading.orders import OrderState

WORKING_AT_BROKER = frozenset({OrderState.ACCEPTED, OrderState.PARTIALLY_FILLED, OrderState.PENDING_CANCEL})
AWAITING_BROKER = frozenset({OrderState.STAGED, OrderState.PENDING})
DEFAULT_GRACE = timedelta(seconds=5)


UNKNOWN_AT_BROKER = "reconcile.unknown_at_broker"
"""The reason on the ``cancelled`` record of an order the broker no longer knows."""
MISSED_FILL = "reconcile.missed_fill"
"""The reason on the record of a fill the floor learnt of only by reconciling."""


@dataclass(frozen=True)
class LedgerOrder:
    """The ledger's latest state of one order, with the executions it has recorded."""

    command_id: str
    account: str
    symbol: str
    agent_id: str
    side: str
    quantity: int
    state: OrderState
    exec_ids: frozenset[str]
    filled_qty: int
    filled_notional: Decimal
    """Sum of qty x price of the recorded executions (for the average)."""
    last_ts: datetime
    parent_id: str | None = None
    limit_price: Decimal | None = None
    tif: str | None = None


@dataclass(frozen=True)
class BrokerOpenOrder:
    order_ref: str
    quantity: int
    filled: int


@dataclass(frozen=True)
class BrokerExecution:
    exec_id: str
    order_ref: str
    qty: int
    price: Decimal
    time: datetime


@dataclass(frozen=True)
class MissedFill:
    command_id: str
    exec_id: str
    qty: int
    price: Decimal
    time: datetime
    filled_after: int
    """The order's cumulative filled quantity once this fill is applied."""
    notional_after: Decimal
    """Sum of qty x price of all the order's fills once this one is applied (for the average)."""


@dataclass(frozen=True)
class ReconcilePlan:
    missed_fills: tuple[MissedFill, ...] = ()
    unknown_at_broker: tuple[str, ...] = ()
    awaiting_broker: tuple[str, ...] = ()
    foreign_orders: tuple[str, ...] = ()
    anomalies: tuple[str, ...] = ()

    @property
    def in_sync(self) -> bool:
        return not (self.missed_fills or self.unknown_at_broker or self.anomalies)


def reconcile(
    ledger: Sequence[LedgerOrder],
    open_orders: Sequence[BrokerOpenOrder],
    executions: Sequence[BrokerExecution],
    as_of: datetime,
    grace: timedelta = DEFAULT_GRACE,
    gone: Collection[str] = (),
) -> ReconcilePlan:
    by_id = {o.command_id: o for o in ledger}
    open_refs = {o.order_ref for o in open_orders}
    missed: list[MissedFill] = []
    anomalies: list[str] = []
    foreign: set[str] = set()
    filled = {o.command_id: o.filled_qty for o in ledger}
    notional = {o.command_id: o.filled_notional for o in ledger}
    seen: set[str] = set()

    for ex in sorted(executions, key=lambda e: (e.time, e.exec_id)):
        order = by_id.get(ex.order_ref)
        if order is None:
            foreign.add(ex.order_ref)
            continue
        if ex.exec_id in order.exec_ids or ex.exec_id in seen:
            continue
        seen.add(ex.exec_id)
        room = order.quantity - filled[order.command_id]
        qty = min(ex.qty, room)
        if qty < ex.qty:
            anomalies.append(
                f"{order.command_id}: execution {ex.exec_id} of {ex.qty} exceeds the {room} left; "
                f"{ex.qty - qty} not recorded"
            )
        if qty <= 0:
            continue
        filled[order.command_id] += qty
        notional[order.command_id] += qty * ex.price
        missed.append(
            MissedFill(
                command_id=order.command_id,
                exec_id=ex.exec_id,
                qty=qty,
                price=ex.price,
                time=ex.time,
                filled_after=filled[order.command_id],
                notional_after=notional[order.command_id],
            )
        )

    foreign |= {o.order_ref for o in open_orders if o.order_ref not in by_id}
    unknown: list[str] = []
    awaiting: list[str] = []
    for order in ledger:
        if order.command_id in open_refs or filled[order.command_id] >= order.quantity:
            continue
        if order.last_ts > as_of - grace and order.command_id not in gone:
            continue
        if order.state in WORKING_AT_BROKER:
            unknown.append(order.command_id)
        elif order.state in AWAITING_BROKER:
            awaiting.append(order.command_id)

    return ReconcilePlan(
        missed_fills=tuple(missed),
        unknown_at_broker=tuple(sorted(unknown)),
        awaiting_broker=tuple(sorted(awaiting)),
        foreign_orders=tuple(sorted(foreign)),
        anomalies=tuple(anomalies),
    )


@dataclass(frozen=True)
class ReconcileReport:
    """What one epoch's reconciliation found for one account: travels in the signed
    ``broker.sessions`` record of the epoch to the account's BrokerSession workflow."""

    account: str
    epoch: int
    as_of: datetime
    missed_fills: list[str] = field(default_factory=list)
    """Execution ids the floor learnt of only by reconciling."""
    unknown_at_broker: list[str] = field(default_factory=list)
    awaiting_broker: list[str] = field(default_factory=list)
    foreign_orders: list[str] = field(default_factory=list)
    anomalies: list[str] = field(default_factory=list)
    last_exec_time: datetime | None = None

    @property
    def in_sync(self) -> bool:
        return not (self.missed_fills or self.unknown_at_broker or self.anomalies)

    def to_json(self) -> dict[str, Any]:
        """As it travels in a ``broker.sessions`` record (times in ISO 8601)."""
        return {
            "account": self.account,
            "epoch": self.epoch,
            "as_of": self.as_of.isoformat(),
            "missed_fills": list(self.missed_fills),
            "unknown_at_broker": list(self.unknown_at_broker),
            "awaiting_broker": list(self.awaiting_broker),
            "foreign_orders": list(self.foreign_orders),
            "anomalies": list(self.anomalies),
            "last_exec_time": None if self.last_exec_time is None else self.last_exec_time.isoformat(),
        }

    @classmethod
    def from_json(cls, data: Any) -> ReconcileReport:
        """The inverse of :meth:`to_json`; ``ValueError`` naming the field that is wrong."""
        if not isinstance(data, dict):
            raise ValueError("reconcile: must be an object")

        def ids(key: str) -> list[str]:
            value = data.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"reconcile.{key}: must be a list of strings")
            return value

        def when(key: str, required: bool) -> datetime | None:
            value = data.get(key)
            if value is None and not required:
                return None
            try:
                parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
            except ValueError:
                parsed = None
            if parsed is None or parsed.tzinfo is None:
                raise ValueError(f"reconcile.{key}: must be an ISO 8601 time with a timezone")
            return parsed

        account, epoch = data.get("account"), data.get("epoch")
        if not isinstance(account, str) or type(epoch) is not int:
            raise ValueError("reconcile: must name its account (string) and epoch (integer)")
        as_of = when("as_of", True)
        assert as_of is not None
        return cls(
            account=account,
            epoch=epoch,
            as_of=as_of,
            missed_fills=ids("missed_fills"),
            unknown_at_broker=ids("unknown_at_broker"),
            awaiting_broker=ids("awaiting_broker"),
            foreign_orders=ids("foreign_orders"),
            anomalies=ids("anomalies"),
            last_exec_time=when("last_exec_time", False),
        )

    @classmethod
    def of(
        cls, account: str, epoch: int, as_of: datetime, plan: ReconcilePlan, last_exec_time: datetime | None
    ) -> ReconcileReport:
        return cls(
            account=account,
            epoch=epoch,
            as_of=as_of,
            missed_fills=[m.exec_id for m in plan.missed_fills],
            unknown_at_broker=list(plan.unknown_at_broker),
            awaiting_broker=list(plan.awaiting_broker),
            foreign_orders=list(plan.foreign_orders),
            anomalies=list(plan.anomalies),
            last_exec_time=last_exec_time,
        )
