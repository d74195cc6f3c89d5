"""Orders a page at a time, newest first, for the API's blotter: keyset pagination over each
order's first state row (``order_events.id`` of its first record), which never changes once
written, so a page boundary stays where it was while new orders arrive.

Every order's state is its rows folded by :func:`trading.order_state.order_state`, the one rule;
a filter on state is applied after the fold (the database keeps no state), reading further
pages until the page is full or the rows run out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from ledger.db import Db
from ledger.order_events import COLUMNS, event_from_row
from trading.order_events import OrderEvent
from trading.order_state import OrderView
from trading.order_state import order_state as fold
from trading.orders import OrderState

_SCAN_BATCH = 200
"""Orders read per query while a state filter skips some."""


@dataclass(frozen=True)
class OrderFilter:
    visible: frozenset[str] | None = None
    """The accounts the caller may see; None: every account."""
    account: str | None = None
    symbol: str | None = None
    agent: str | None = None
    states: frozenset[OrderState] | None = None

    def admits(self, order: ListedOrder) -> bool:
        return self.states is None or order.state in self.states


@dataclass(frozen=True)
class ListedOrder:
    key: int
    """The id of the order's first state row: its place in the blotter, and its cursor."""
    records: tuple[OrderEvent, ...]
    """Its state rows, oldest first."""
    view: OrderView

    @property
    def first(self) -> OrderEvent:
        return self.records[0]

    @property
    def latest(self) -> OrderEvent:
        return self.view.state_record() or self.records[-1]

    @property
    def state(self) -> OrderState:
        return self.view.state


def _where(flt: OrderFilter) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    for column, value in (("account", flt.account), ("symbol", flt.symbol), ("agent_id", flt.agent)):
        if value is not None:
            args.append(value)
            clauses.append(f"{column} = ${len(args)}")
    if flt.visible is not None:
        args.append(sorted(flt.visible))
        clauses.append(f"account = ANY(${len(args)}::text[])")
    return (" AND ".join(clauses) or "true"), args


async def _batch(db: Db, flt: OrderFilter, before: int | None, limit: int) -> list[ListedOrder]:
    where, args = _where(flt)
    args += [before, limit]
    n = len(args)
    rows = await db.fetch(
        f"WITH firsts AS ("
        f" SELECT command_id, min(id) AS first_id FROM order_events WHERE {where}"
        f" GROUP BY command_id HAVING ${n - 1}::bigint IS NULL OR min(id) < ${n - 1}"
        f" ORDER BY first_id DESC LIMIT ${n})"
        f" SELECT f.first_id, {', '.join('e.' + c for c in COLUMNS)}"
        f" FROM firsts f JOIN order_events e USING (command_id) ORDER BY f.first_id DESC, e.id",
        *args,
    )
    return list(listed(rows))


def listed(rows: Iterable[Any]) -> Iterable[ListedOrder]:
    """Rows with a ``first_id`` column, grouped by it (each group one order's rows in order)."""
    for first_id, group in groupby(rows, key=lambda r: r["first_id"]):
        records = tuple(event_from_row(r) for r in group)
        view = fold(records)
        assert view is not None
        yield ListedOrder(int(first_id), records, view)


async def order_page(
    db: Db, flt: OrderFilter, first: int, before: int | None = None
) -> tuple[list[ListedOrder], bool]:
    """Up to ``first`` orders older than key ``before`` (newest first), and whether more follow."""
    size = first + 1 if flt.states is None else max(_SCAN_BATCH, first + 1)
    page: list[ListedOrder] = []
    while True:
        batch = await _batch(db, flt, before, size)
        page.extend(o for o in batch if flt.admits(o))
        if len(page) > first:
            return page[:first], True
        if len(batch) < size:
            return page, False
        before = batch[-1].key


async def orders_by_id(db: Db, command_ids: Sequence[str]) -> dict[str, ListedOrder]:
    """Each of ``command_ids`` that has state rows, with them."""
    rows = await db.fetch(
        f"SELECT min(id) OVER (PARTITION BY command_id) AS first_id, {', '.join(COLUMNS)}"
        " FROM order_events WHERE command_id = ANY($1::text[]) ORDER BY first_id, id",
        list(command_ids),
    )
    return {order.view.command_id: order for order in listed(rows)}


async def orders_of_parent(db: Db, parent_id: str) -> list[ListedOrder]:
    """An iceberg's slices with their rows, oldest first."""
    rows = await db.fetch(
        f"SELECT min(id) OVER (PARTITION BY command_id) AS first_id, {', '.join(COLUMNS)}"
        " FROM order_events WHERE parent_id = $1 ORDER BY first_id, id",
        parent_id,
    )
    return list(listed(rows))
