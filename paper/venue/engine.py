"""The venue core: it wires the books, the order-flow model, matching, stop triggers, order
validation and scripted price moves into one deterministic venue with no I/O.

:class:`Venue` is event driven: every method that changes state takes the market time
``t_ns`` at which it happens, first runs the order-flow model (and any scripted move) up to
that time, then applies the input. Outputs (order updates, executions, commission reports,
position and account changes) collect in an :class:`~paper.venue.outbox.Outbox` that
:meth:`Venue.drain` empties; depth changes accumulate per book (:meth:`Venue.drain_depth`).
Given the same seed, start time and inputs, two venues produce identical outputs, which is
what makes a paper run replayable.

Where each duty lives: the order-flow model in :mod:`paper.venue.flow_models`, the book in
:mod:`paper.venue.book`, matching and fills in :mod:`paper.venue.matching`, stops in
:mod:`paper.venue.stops`, order checks and buying power in :mod:`paper.venue.validation`,
flash crashes and other scripted moves in :mod:`paper.venue.faults`, cash and P&L in
:mod:`paper.venue.account`, the shared state in :mod:`paper.venue.state`, and the messages
built from it in :mod:`paper.venue.snapshots`. Prices are integer ticks inside; ``Decimal``
only at the edges (requests and messages).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from paper.venue import snapshots
from paper.venue.account import Account
from paper.venue.events import AccountEvent, PositionEvent
from paper.venue.faults import PriceMoves
from paper.venue.flow import NEVER
from paper.venue.flow_models import DEFAULT_FLOW
from paper.venue.matching import Matcher
from paper.venue.messages import (
    CODE_ORDER_CANCELLED,
    ERR_CANCEL_NOT_CANCELLABLE,
    ERR_CANCEL_NOT_FOUND,
    ERR_DUPLICATE_ORDER_ID,
    ERR_NO_SECURITY_DEFINITION,
    AccountSnapshot,
    CancelResult,
    ContractInfo,
    DepthSnapshot,
    ExecutionFilter,
    ExecutionReport,
    OrderAck,
    OrderReject,
    OrderUpdate,
    PlaceOrder,
    Position,
    Print,
    Tick,
)
from paper.venue.outbox import Outbox
from paper.venue.state import SymbolState, WorkingOrder, to_ticks
from paper.venue.stops import STOP_TYPES, StopTriggers, set_stop
from paper.venue.symbols import DEFAULT_SYMBOLS, SymbolConfig
from paper.venue.validation import (
    NO_DEFINITION,
    OrderRefused,
    check_buying_power,
    check_modify,
    check_order,
    rejected,
)


@dataclass(frozen=True, slots=True)
class VenueConfig:
    """Venue settings. ``increasing_order_ids`` is IB's rule (a reused or lower id for a client
    is refused with 103); ``check_buying_power`` refuses orders whose value exceeds it;
    ``flow`` names the order-flow model (:mod:`paper.venue.flow_models`)."""

    symbols: tuple[SymbolConfig, ...] = DEFAULT_SYMBOLS
    account: str = "DU1234567"
    sub_accounts: tuple[str, ...] = ()
    """Further accounts, which no TWS gateway serves (the paper Schwab API's): orders that name
    one trade the same books, but its cash, positions and values are its own, and it pays no
    commission (Schwab charges none on stock trades)."""
    initial_cash: Decimal = Decimal("1000000.00")
    increasing_order_ids: bool = True
    check_buying_power: bool = True
    flow: str = DEFAULT_FLOW


class Venue:
    def __init__(
        self,
        config: VenueConfig,
        seed: int,
        start_ns: int,
        *,
        epoch: int = 0,
        first_perm_id: int = 1_000_001,
        highest_order_ids: dict[int, int] | None = None,
        first_exec_seq: int = 0,
    ) -> None:
        self.config = config
        self.seed = seed
        self.epoch = epoch
        self.start_ns = start_ns
        self.now_ns = start_ns
        self.states = [
            SymbolState(cfg, seed, start_ns, i, config.flow) for i, cfg in enumerate(config.symbols)
        ]
        self.by_symbol = {s.symbol: s for s in self.states}
        self.by_con_id = {s.contract.con_id: s for s in self.states}
        self.accounts = {a: Account(a, config.initial_cash) for a in (config.account, *config.sub_accounts)}
        self.account = self.accounts[config.account]
        """The primary account (the gateways')."""
        self.orders: dict[tuple[int, int], WorkingOrder] = {}
        self.open: dict[int, WorkingOrder] = {}
        self.highest_ids: dict[int, int] = dict(highest_order_ids or {})
        self.next_perm_id = first_perm_id
        self.outbox = Outbox(start_ns, epoch, first_exec_seq, lambda: self.now_ns)
        self.matcher = Matcher(self.accounts, self.outbox, self.open, frozenset(config.sub_accounts))
        self.stops = StopTriggers(self.matcher, self.outbox)
        # A trade may trigger stops and a triggered stop trades: the stops call the matcher,
        # the matcher reaches the stops only through this hook.
        self.matcher.on_trade = self.stops.check
        self.moves = PriceMoves(self.matcher, self.stops)

    @property
    def executions(self) -> list[ExecutionReport]:
        return self.outbox.executions

    @property
    def exec_seq(self) -> int:
        """The last execution's sequence number (persisted so ids survive a restart)."""
        return self.outbox.exec_seq

    # ================================================================== clock

    def next_due_ns(self) -> int:
        """Market time of the next model event or scripted move."""
        due = min((s.flow.next_ns for s in self.states), default=NEVER)
        if self.moves.pending:
            due = min(due, self.moves.pending[0][0])
        return due

    def advance(self, t_ns: int) -> None:
        """Run every model event and scripted move due at or before ``t_ns``."""
        if t_ns < self.now_ns:
            t_ns = self.now_ns
        states = self.states
        moves = self.moves.pending
        model_event = self.matcher.model_event
        while True:
            best = None
            best_t = t_ns + 1
            for s in states:
                if s.flow.next_ns < best_t:
                    best, best_t = s, s.flow.next_ns
            if moves and moves[0][0] < best_t:
                when, _, index, reference, final = self.moves.pop()
                self.now_ns = max(self.now_ns, when)
                self.moves.apply(states[index], reference, final)
                continue
            if best is None:
                break
            self.now_ns = best_t
            model_event(best)
        self.now_ns = t_ns

    def set_event_rate(self, symbol: str, rate: float, t_ns: int) -> None:
        self.advance(t_ns)
        self._symbol(symbol).flow.set_rate(rate, self.now_ns)

    # ================================================================== requests

    def contract(self, symbol: str = "", con_id: int = 0) -> ContractInfo | None:
        s = self.by_symbol.get(symbol.upper()) if symbol else self.by_con_id.get(con_id)
        return s.contract if s else None

    def next_valid_id(self, client_id: int) -> int:
        return self.highest_ids.get(client_id, 0) + 1

    def place(self, req: PlaceOrder, t_ns: int) -> OrderAck | OrderReject:
        """Accept a new order or a modify; refusals change nothing (but a new order's id is
        used up unless it was refused as a duplicate, as at IB)."""
        self.advance(t_ns)
        existing = self.orders.get((req.client_id, req.order_id))
        try:
            if existing is not None:
                self._modify(existing, req)
                return OrderAck(existing.perm_id, self._update(existing))
            wo = self._new(req)
            return OrderAck(wo.perm_id, self._update(wo))
        except OrderRefused as refused:
            return OrderReject(req.client_id, req.order_id, refused.code, refused.message)

    def _new(self, req: PlaceOrder) -> WorkingOrder:
        highest = self.highest_ids.get(req.client_id, 0)
        if self.config.increasing_order_ids and req.order_id <= highest:
            raise OrderRefused(ERR_DUPLICATE_ORDER_ID, "Duplicate order id")
        if req.order_id > highest:
            self.highest_ids[req.client_id] = req.order_id
        s = self._lookup(req.symbol, req.con_id)
        account = req.account or self.config.account
        holder = self.accounts.get(account)
        if holder is None:
            raise rejected(f"Unknown account {account}")
        check_order(req.order, s.tick, s.lot)
        if self.config.check_buying_power:
            check_buying_power(req.order, s.mark(), holder.buying_power(self.marks()))
        wo = WorkingOrder(self.next_perm_id, req, account, s, self.now_ns)
        self.next_perm_id += 1
        self.orders[(req.client_id, req.order_id)] = wo
        self.open[wo.perm_id] = wo
        if req.order.order_type in STOP_TYPES:
            # Held by the venue until triggered, as IB holds simulated stops.
            wo.status = "PreSubmitted"
            set_stop(wo)
            self.outbox.order_changed(wo)
            self.stops.arm(wo)
        else:
            wo.status = "Submitted"
            lmt = req.order.lmt_price
            wo.limit = to_ticks(lmt, s.tick) if req.order.order_type == "LMT" and lmt is not None else None
            self.outbox.order_changed(wo)
            self.matcher.work(wo)
        return wo

    def _lookup(self, symbol: str, con_id: int) -> SymbolState:
        s = self.by_symbol.get(symbol.upper()) if symbol else self.by_con_id.get(con_id)
        if s is None:
            raise OrderRefused(ERR_NO_SECURITY_DEFINITION, NO_DEFINITION)
        return s

    def _modify(self, wo: WorkingOrder, req: PlaceOrder) -> None:
        check_modify(wo, req)
        new = req.order
        old = wo.spec
        s = wo.sym
        if new.order_type == "TRAIL":
            given = new.trail_stop_price
            if given is None or given == wo.client_stop:
                # No new stop (none, or the one the client sent before): keep the ratcheted
                # stop unless the trailing distance changed; then it restarts from the last trade.
                trail_changed = new.aux_price != old.aux_price or new.trailing_percent != old.trailing_percent
                new = replace(new, trail_stop_price=None if trail_changed else old.trail_stop_price)
            wo.client_stop = given
        grew = new.total_qty > old.total_qty
        wo.spec = new
        if not wo.triggered and new.order_type in STOP_TYPES:
            set_stop(wo)
            self.outbox.order_changed(wo)
            self.stops.arm(wo)
            return
        limit = wo.limit
        if new.lmt_price is not None and wo.limit is not None:
            limit = to_ticks(new.lmt_price, s.tick)
        resting = wo.resting
        if resting is None:
            self.outbox.order_changed(wo)
            return
        if limit == wo.limit and not grew:
            if wo.remaining < resting.qty:
                s.book.reduce(resting, wo.remaining)
            self.outbox.order_changed(wo)
            return
        # A new price or a larger size goes to the back of the queue, as on real exchanges.
        s.book.remove(resting)
        wo.resting = None
        wo.limit = limit
        self.outbox.order_changed(wo)
        self.matcher.work(wo)

    def cancel(self, client_id: int, order_id: int, t_ns: int) -> CancelResult:
        self.advance(t_ns)
        wo = self.orders.get((client_id, order_id))
        if wo is None:
            return CancelResult(
                client_id,
                order_id,
                ERR_CANCEL_NOT_FOUND,
                f"OrderId {order_id} that needs to be cancelled is not found.",
                None,
            )
        if not wo.is_open:
            return CancelResult(
                client_id,
                order_id,
                ERR_CANCEL_NOT_CANCELLABLE,
                f"OrderId {order_id} that needs to be cancelled cannot be cancelled, state: {wo.status}.",
                self._update(wo),
            )
        self.matcher.finish(wo, "Cancelled")
        update = self._update(wo)
        return CancelResult(client_id, order_id, CODE_ORDER_CANCELLED, "Order Canceled - reason:", update)

    def global_cancel(self, t_ns: int, account: str = "") -> int:
        self.advance(t_ns)
        victims = [wo for wo in self.open.values() if not account or wo.account == account]
        for wo in victims:
            self.matcher.finish(wo, "Cancelled")
        return len(victims)

    def session_close(self, t_ns: int) -> int:
        """End of the trading day: every open DAY order expires (Cancelled). Returns how many."""
        self.advance(t_ns)
        victims = [wo for wo in self.open.values() if wo.spec.tif == "DAY"]
        for wo in victims:
            self.matcher.finish(wo, "Cancelled")
        for s in self.states:
            s.close = s.last if s.last is not None else s.close
            s.volume = 0
            s.tape.session_close()
        return len(victims)

    def move_price(self, symbol: str, pct: Decimal, duration_ns: int, t_ns: int) -> None:
        """Scripted move (flash crash when negative) of ``pct`` percent over ``duration_ns``,
        see :mod:`paper.venue.faults`."""
        self.advance(t_ns)
        self.moves.schedule(self._symbol(symbol), pct, duration_ns, self.now_ns)
        self.advance(self.now_ns)

    # ================================================================== queries

    def _symbol(self, symbol: str) -> SymbolState:
        s = self.by_symbol.get(symbol.upper())
        if s is None:
            raise KeyError(symbol)
        return s

    def open_orders(self, client_id: int | None = None) -> tuple[OrderUpdate, ...]:
        return tuple(
            self._update(wo) for wo in self.open.values() if client_id is None or wo.client_id == client_id
        )

    def completed_orders(self, client_id: int | None = None) -> tuple[OrderUpdate, ...]:
        return tuple(
            self._update(wo)
            for wo in self.orders.values()
            if not wo.is_open and (client_id is None or wo.client_id == client_id)
        )

    def _update(self, wo: WorkingOrder) -> OrderUpdate:
        return snapshots.order_update(wo, self.now_ns)

    def order(self, client_id: int, order_id: int) -> OrderUpdate | None:
        wo = self.orders.get((client_id, order_id))
        return self._update(wo) if wo else None

    def executions_matching(self, f: ExecutionFilter) -> tuple[ExecutionReport, ...]:
        return snapshots.executions_matching(self.executions, f)

    def marks(self) -> dict[str, Decimal]:
        return {s.symbol: s.mark() for s in self.states}

    def position(self, symbol: str, account: str = "") -> Position:
        """``symbol``'s position in ``account`` ("" the primary)."""
        return snapshots.position(self._symbol(symbol), self.accounts.get(account, self.account))

    def positions(self, account: str = "") -> tuple[Position, ...]:
        holder = self.accounts.get(account or self.config.account)
        if holder is None:
            return ()
        return tuple(self.position(sym, holder.account_id) for sym in holder.positions)

    def account_snapshot(self, account: str = "") -> AccountSnapshot:
        """``account``'s values ("" or an unknown one: the primary's)."""
        holder = self.accounts.get(account, self.account)
        return snapshots.account_snapshot(holder, self.marks(), self.now_ns)

    def tick(self, symbol: str) -> Tick:
        return snapshots.tick(self._symbol(symbol), self.now_ns)

    def depth_snapshot(self, symbol: str) -> DepthSnapshot:
        return snapshots.depth_snapshot(self._symbol(symbol), self.now_ns)

    # ================================================================== outputs

    def drain(self) -> list[object]:
        """Events since the last drain, in order; position and account changes last."""
        outbox = self.outbox
        out = outbox.take_events()
        order = list(self.accounts)
        if outbox.dirty_positions:
            for account, symbol in sorted(
                outbox.dirty_positions, key=lambda p: (order.index(p[0]), self.by_symbol[p[1]].index)
            ):
                out.append(PositionEvent(self.position(symbol, account)))
            outbox.dirty_positions.clear()
        for account in sorted(outbox.dirty_accounts, key=order.index):
            out.append(AccountEvent(self.account_snapshot(account)))
        outbox.dirty_accounts.clear()
        return out

    def drain_trades(self) -> list[tuple[SymbolState, list[Print]]]:
        """Per symbol that traded since the last drain: its state and its prints, in order."""
        out = []
        for s in self.states:
            if s.tape.pending:
                out.append((s, s.tape.drain()))
        return out

    def tape(self, symbol: str) -> tuple[Print, ...]:
        """The symbol's newest prints (:data:`paper.venue.tape.KEPT` at most), oldest first."""
        return self._symbol(symbol).tape.recent()

    def drain_depth(self) -> list[tuple[SymbolState, list[tuple[int, int, int, int]]]]:
        """Per symbol with changes: its state and the raw ``(seq, side, ticks, size)`` list."""
        out = []
        for s in self.states:
            if s.book.changes:
                out.append((s, s.book.changes))
                s.book.changes = []
        return out
