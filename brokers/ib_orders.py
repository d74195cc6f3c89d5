"""The floor's own map of its broker orders (the state layer).

ib_async forgets every order when a connection drops (``IB.disconnect`` resets its wrapper), and
with two gateway sessions the same order may be reported by both. This map is the adapter's
memory that survives both: ``order_ref`` <-> (client id, order id, perm id), the latest status
and fill progress, which executions and commissions were already reported, and which orders are
held while no session is up.

Status updates are monotonic: a done order never becomes working again and the filled quantity
never decreases, so a late or duplicated report from the other session changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from brokers.base import BrokerOrder, BrokerOrderStatus
from trading.orders import STAGE, OrderState

ORDER_STATE: dict[BrokerOrderStatus, OrderState] = {
    BrokerOrderStatus.HELD: OrderState.STAGED,
    BrokerOrderStatus.PENDING_SUBMIT: OrderState.PENDING,
    BrokerOrderStatus.PRE_SUBMITTED: OrderState.ACCEPTED,
    BrokerOrderStatus.SUBMITTED: OrderState.ACCEPTED,
    BrokerOrderStatus.PENDING_CANCEL: OrderState.PENDING_CANCEL,
    BrokerOrderStatus.CANCELLED: OrderState.CANCELLED,
    BrokerOrderStatus.INACTIVE: OrderState.REJECTED,
    BrokerOrderStatus.FILLED: OrderState.FILLED,
}
"""Each broker status as the order state machine's state (:mod:`trading.orders`); a status of
an earlier :data:`~trading.orders.STAGE` than the order's is a stale report."""


@dataclass
class OrderRecord:
    order: BrokerOrder
    status: BrokerOrderStatus = BrokerOrderStatus.HELD
    filled: int = 0
    avg_fill_price: Decimal | None = None
    client_id: int | None = None
    order_id: int | None = None
    perm_id: int = 0
    session: str = ""
    write_ns: int = 0
    sent_count: int = 0
    """How many times the order was written as a new order (more than 1 only when a resend
    followed a reconciliation that did not find it at the broker)."""
    sent_epoch: int = 0
    """The broker session epoch of the latest send."""
    accepted: bool = False
    lost: bool = False
    """Acknowledged by the broker, then listed by it nowhere at an epoch's start: over, never
    sent again, and ended by the owner of the ledger rather than by a status of the adapter's
    (reported in :attr:`~brokers.base.EpochReconciled.lost`)."""
    parked: bool = False
    """Adopted from an earlier process without the broker's acknowledgement: held, and not
    sent by reconciliation when the broker does not have it (the floor decides first)."""
    cancel_requested: bool = False
    modify_pending: bool = False
    original: BrokerOrder | None = None
    """The order as first placed (``order`` changes with every modify)."""
    exec_ids: set[str] = field(default_factory=set)

    @property
    def remaining(self) -> int:
        return max(self.order.quantity - self.filled, 0) if not self.status.is_done else 0

    @property
    def held(self) -> bool:
        return self.status is BrokerOrderStatus.HELD

    @property
    def done(self) -> bool:
        return self.status.is_done


class OrderMap:
    def __init__(self) -> None:
        self._by_ref: dict[str, OrderRecord] = {}
        self._by_id: dict[tuple[int, int], OrderRecord] = {}
        self._by_perm: dict[int, OrderRecord] = {}
        self.seen_exec: set[str] = set()
        self.seen_commission: set[str] = set()

    def __len__(self) -> int:
        return len(self._by_ref)

    def add(self, order: BrokerOrder) -> OrderRecord:
        rec = OrderRecord(order, original=order)
        self._by_ref[order.order_ref] = rec
        return rec

    def get(self, order_ref: str) -> OrderRecord | None:
        return self._by_ref.get(order_ref)

    def bind(self, rec: OrderRecord, client_id: int, order_id: int, session: str) -> None:
        if rec.client_id is not None and rec.order_id is not None:
            self._by_id.pop((rec.client_id, rec.order_id), None)
        rec.client_id, rec.order_id, rec.session = client_id, order_id, session
        self._by_id[(client_id, order_id)] = rec

    def bind_perm(self, rec: OrderRecord, perm_id: int) -> None:
        if perm_id > 0 and rec.perm_id != perm_id:
            rec.perm_id = perm_id
            self._by_perm[perm_id] = rec

    def find(
        self, order_ref: str = "", client_id: int = 0, order_id: int = 0, perm_id: int = 0
    ) -> OrderRecord | None:
        rec = self._by_ref.get(order_ref) if order_ref else None
        if rec is None and perm_id > 0:
            rec = self._by_perm.get(perm_id)
        if rec is None and order_id > 0:
            rec = self._by_id.get((client_id, order_id))
        return rec

    def by_order_id(self, client_id: int, order_id: int) -> OrderRecord | None:
        return self._by_id.get((client_id, order_id))

    def held(self) -> list[OrderRecord]:
        """Held orders in arrival order (dicts keep insertion order)."""
        return [r for r in self._by_ref.values() if r.held and not r.cancel_requested]

    def live(self) -> list[OrderRecord]:
        return [r for r in self._by_ref.values() if not r.done]

    def mark_lost(self, rec: OrderRecord) -> None:
        """The broker no longer has ``rec``: done in this map (so it is neither settled nor sent
        again, and only a late fill changes it), without a status report of its own."""
        rec.lost = True
        rec.status = BrokerOrderStatus.CANCELLED

    def apply_status(
        self, rec: OrderRecord, status: BrokerOrderStatus, filled: int, avg_fill_price: Decimal | None
    ) -> bool:
        """Fold a broker status report into ``rec``; True if anything visible changed."""
        if rec.done and not (status is BrokerOrderStatus.FILLED and filled > rec.filled):
            # Only a late fill may change a done order (Cancelled -> Filled happens at venues).
            return False
        if STAGE[ORDER_STATE[status]] < STAGE[ORDER_STATE[rec.status]] and filled <= rec.filled:
            return False
        filled = max(filled, rec.filled)
        changed = status is not rec.status or filled != rec.filled
        rec.status = status
        rec.filled = filled
        if avg_fill_price is not None:
            changed = changed or avg_fill_price != rec.avg_fill_price
            rec.avg_fill_price = avg_fill_price
        return changed
