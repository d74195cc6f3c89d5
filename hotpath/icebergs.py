"""Intake's view of the iceberg parents: which are live, their totals after amends, and what
their slices have taken, so a slice or control is checked without a ledger round trip.

A parent accepted by this process is known from its acceptance; one accepted before a restart
is read from the ledger (:mod:`ledger.iceberg_parents`) the first time something names it,
with what its earlier slices took from the order-state rows. From then on the slices intake
accepts and the fills the broker reports (on the shared order map) keep it current.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from hotpath.floor_orders import FloorOrder
from hotpath.ports import HotLedger
from trading.commands import Command
from trading.iceberg_parents import Parent, parent_command_id
from trading.order_events import EventKind, OrderEvent


class IcebergParents:
    def __init__(self, ledger: HotLedger, orders: dict[str, FloorOrder]) -> None:
        self._ledger = ledger
        self._orders = orders
        self._parents: dict[str, Parent] = {}
        """workflow id -> parent."""
        self._slices: dict[str, set[str]] = {}
        """workflow id -> command ids of its slices in the order map."""
        self._earlier: dict[str, int] = {}
        """workflow id -> shares taken by slices ledgered before this process knew the parent
        and not in its order map (ended before a restart)."""

    def accepted(self, parent: Parent) -> None:
        self._parents[parent.workflow_id] = parent
        self._slices.setdefault(parent.workflow_id, set())
        self._earlier.setdefault(parent.workflow_id, 0)

    async def get(self, parent_id: str) -> Parent | None:
        """The parent ``parent_id`` names, from memory or else the ledger; None if none."""
        parent = self._parents.get(parent_id)
        if parent is not None:
            return parent
        command_id = parent_command_id(parent_id)
        if command_id is None:
            return None
        parent = await self._ledger.iceberg_parent(command_id)
        if parent is None:
            return None
        earlier = 0
        slices: set[str] = set()
        for state in await self._ledger.iceberg_slices(parent_id):
            if state.command_id in self._orders:
                slices.add(state.command_id)
            else:
                earlier += state.taken
        # Restored working slices (the order map is rebuilt from the ledger at start) count live.
        slices.update(c for c, o in self._orders.items() if o.parent_id == parent_id)
        self._parents[parent_id] = parent
        self._slices[parent_id] = slices
        self._earlier[parent_id] = earlier
        return parent

    def taken(self, parent: Parent) -> int:
        """Shares the parent's slices hold against its total: fills of ended slices, the whole
        quantity of working ones."""
        total = self._earlier.get(parent.workflow_id, 0)
        for command_id in self._slices.get(parent.workflow_id, ()):
            order = self._orders.get(command_id)
            if order is not None:
                total += order.filled_qty if order.done else order.quantity
        return total

    def slice_accepted(self, order: FloorOrder) -> None:
        if order.parent_id is not None:
            self._slices.setdefault(order.parent_id, set()).add(order.command_id)

    def working_slices(self, parent: Parent) -> list[FloorOrder]:
        orders = (self._orders.get(c) for c in self._slices.get(parent.workflow_id, ()))
        return [o for o in orders if o is not None and not o.done]

    def apply(self, parent: Parent, control: Command) -> Parent:
        """Record an accepted control; returns the parent as it now stands."""
        after = parent.after(control)
        self._parents[parent.workflow_id] = after
        return after


def control_record(parent: Parent, control: Command) -> OrderEvent:
    """The ``orders.events`` record that tells the bridge a control for ``parent`` is ledgered."""
    return OrderEvent(
        event_id=uuid.uuid4().hex,
        command_id=control.command_id,
        parent_id=parent.workflow_id,
        kind=EventKind.ACCEPTED,
        account=parent.account,
        symbol=parent.symbol,
        agent_id=control.agent_id,
        side=parent.side.value,
        quantity=parent.total,
        filled_qty=0,
        avg_fill_price=None,
        last_fill=None,
        reason=None,
        ts=datetime.now(UTC),
        limit_price=parent.limit_price,
        control=control.kind.value,
    )
