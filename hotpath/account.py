"""The hot path's own view of each account: positions, working orders and last prices.

Kept in memory because the risk gate needs it on every command and the broker cannot be asked
on the critical path. Seeded from the broker at start (positions) and kept current from broker
events (fills, terminal states) and quotes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from hotpath.floor_orders import FloorOrder
from trading.commands import Side

NEVER_MS = 10**12
"""Price age reported for a symbol with no quote yet: older than any staleness limit."""


@dataclass(frozen=True)
class LastPrice:
    bid: Decimal | None
    ask: Decimal | None
    last: Decimal | None
    recv_ns: int

    def reference(self, side: Side) -> Decimal | None:
        """The touch a market order on ``side`` would take, else the last trade."""
        touch = self.ask if side is Side.BUY else self.bid
        return touch if touch is not None else self.last

    def mark(self) -> Decimal | None:
        """Mid if both sides are quoted, else the last trade (for exposure and the breaker)."""
        if self.bid is not None and self.ask is not None:
            return (self.bid + self.ask) / 2
        return self.last if self.last is not None else (self.bid or self.ask)


@dataclass
class AccountBook:
    positions: dict[tuple[str, str], int] = field(default_factory=dict)
    avg_costs: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    working: dict[str, set[str]] = field(default_factory=dict)
    """account -> command ids of orders at (or held for) the broker and not yet done."""
    prices: dict[str, LastPrice] = field(default_factory=dict)
    _open: dict[str, tuple[tuple[str, str, Side, bool], int]] = field(default_factory=dict)
    """command id of a working order -> ((account, symbol, side, exit?), shares still to fill)."""
    _open_qty: dict[tuple[str, str, Side, bool], int] = field(default_factory=dict)
    """(account, symbol, side, exit?) -> shares still to fill on those working orders, kept as
    orders start, fill and end so the risk gate reads it without walking the orders. The floor's
    protective stops are not exits here: a desk's own exit takes their place
    (:mod:`hotpath.protective_stops` shrinks them to what the desk's exits leave uncovered)."""
    on_change: Callable[[str, str, str], None] | None = None
    """Told (account, symbol, command id) after the order's fill, or as it starts or ends working."""

    def position(self, account: str, symbol: str) -> int:
        return self.positions.get((account, symbol), 0)

    def set_position(self, account: str, symbol: str, quantity: int, avg_cost: Decimal) -> None:
        self.positions[(account, symbol)] = quantity
        self.avg_costs[(account, symbol)] = avg_cost

    def on_fill(self, account: str, symbol: str, side: Side, quantity: int, command_id: str = "") -> None:
        key = (account, symbol)
        self.positions[key] = self.positions.get(key, 0) + side.sign * quantity
        if command_id in self._open:
            self._shrink(command_id, quantity)
        self._changed(account, symbol, command_id)

    def open_orders(self, account: str) -> int:
        return len(self.working.get(account, ()))

    def counted_remaining(self, command_id: str) -> int | None:
        """The shares ``command_id`` is counted working for (None: not counted)."""
        counted = self._open.get(command_id)
        return None if counted is None else counted[1]

    def working_qty(self, account: str, symbol: str, side: Side, *, exits_only: bool = False) -> int:
        """Shares still to fill on the account's working ``side`` orders in ``symbol`` (only
        its ``exit`` orders with ``exits_only``)."""
        exits = self._open_qty.get((account, symbol, side, True), 0)
        return exits if exits_only else exits + self._open_qty.get((account, symbol, side, False), 0)

    def order_working(self, order: FloorOrder) -> bool:
        """Count ``order`` as working; False when it was counted already (from its decision, or
        as another process's order this one took over), so the caller knows it added nothing
        to take back."""
        if order.command_id in self._open:
            # Counted already, from its decision (intake counts an order before its ledger
            # commit, hotpath.overlap); it has reached the broker now, and intake's order map,
            # which is where the hook looks it up: told again.
            self._changed(order.account, order.symbol, order.command_id)
            return False
        self.working.setdefault(order.account, set()).add(order.command_id)
        key = (order.account, order.symbol, order.side, order.reduce_only and not order.protective)
        remaining = max(order.quantity - order.filled_qty, 0)
        self._open[order.command_id] = (key, remaining)
        self._open_qty[key] = self._open_qty.get(key, 0) + remaining
        self._changed(order.account, order.symbol, order.command_id)
        return True

    def order_done(self, account: str, command_id: str) -> None:
        self.working.get(account, set()).discard(command_id)
        if command_id in self._open:
            key = self._open[command_id][0]
            self._shrink(command_id, None)
            del self._open[command_id]
            self._changed(key[0], key[1], command_id)

    def _changed(self, account: str, symbol: str, command_id: str) -> None:
        if self.on_change is not None:
            self.on_change(account, symbol, command_id)

    def _shrink(self, command_id: str, filled: int | None) -> None:
        """Take ``filled`` shares (None: all that remain) off a working order's open quantity."""
        key, remaining = self._open[command_id]
        taken = remaining if filled is None else min(filled, remaining)
        self._open[command_id] = (key, remaining - taken)
        self._open_qty[key] -= taken

    def gross_exposure(self, account: str) -> Decimal:
        """Sum over the account's symbols of |position| x mark (average cost if unquoted)."""
        total = Decimal(0)
        for (acct, symbol), qty in self.positions.items():
            if acct != account or qty == 0:
                continue
            last = self.prices.get(symbol)
            mark = last.mark() if last is not None else None
            total += abs(qty) * (mark if mark is not None else self.avg_costs.get((acct, symbol), Decimal(0)))
        return total

    def on_quote(self, symbol: str, price: LastPrice) -> None:
        self.prices[symbol] = price

    def price_age_ms(self, symbol: str, now_ns: int | None = None) -> int:
        last = self.prices.get(symbol)
        if last is None:
            return NEVER_MS
        now_ns = time.perf_counter_ns() if now_ns is None else now_ns
        return max(0, (now_ns - last.recv_ns) // 1_000_000)
