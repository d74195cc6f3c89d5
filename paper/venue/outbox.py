"""What the venue reports, in the order it happened: order updates, executions and their
commission reports, and which positions and whether the account changed since the last drain.

Execution ids are made here: they must never repeat, not even across venue restarts (the
floor dedupes fills on them), so they carry the start time (an input, so replays still match)
and the reset epoch besides a sequence number that survives restarts.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from paper.venue.events import CommissionEvent, ExecutionEvent, OrderEvent
from paper.venue.messages import CommissionReport, Execution, ExecutionReport
from paper.venue.snapshots import average_price, order_update
from paper.venue.state import WorkingOrder


class Outbox:
    def __init__(self, start_ns: int, epoch: int, first_exec_seq: int, now: Callable[[], int]) -> None:
        self.now = now
        self.events: list[object] = []
        self.executions: list[ExecutionReport] = []
        self.exec_seq = first_exec_seq
        self.dirty_positions: set[tuple[str, str]] = set()
        """(account, symbol) of every position a fill changed since the last drain."""
        self.dirty_accounts: set[str] = set()
        self._exec_prefix = f"{(start_ns // 1_000_000) & 0xFFFFFFFF:08x}"
        self._exec_suffix = f"{epoch & 0xFF:02x}.01"

    def order_changed(self, wo: WorkingOrder) -> None:
        self.events.append(OrderEvent(order_update(wo, self.now())))

    def executed(
        self,
        wo: WorkingOrder,
        qty: int,
        price: Decimal,
        liquidity: int,
        commission: Decimal,
        realized: Decimal | None,
    ) -> None:
        """Report one fill of ``wo`` (already applied to the order and the account)."""
        s = wo.sym
        self.exec_seq += 1
        exec_id = f"{self._exec_prefix}.{self.exec_seq:08x}.{self._exec_suffix}"
        execution = Execution(
            exec_id=exec_id,
            perm_id=wo.perm_id,
            client_id=wo.client_id,
            order_id=wo.order_id,
            account=wo.account,
            symbol=s.symbol,
            con_id=s.contract.con_id,
            side="BOT" if wo.buy else "SLD",
            shares=qty,
            price=price,
            time_ns=self.now(),
            cum_qty=wo.filled,
            avg_price=average_price(wo.cum_value * s.tick, wo.filled),
            order_ref=wo.spec.order_ref,
            liquidity=liquidity,
        )
        report = CommissionReport(exec_id, commission, s.contract.currency, realized)
        self.executions.append(ExecutionReport(execution, report))
        self.events.append(ExecutionEvent(execution))
        self.events.append(CommissionEvent(report))
        self.dirty_positions.add((wo.account, s.symbol))
        self.dirty_accounts.add(wo.account)

    def take_events(self) -> list[object]:
        """The order and execution events since the last call."""
        events = self.events
        self.events = []
        return events
