"""The venue core: books, order flow, our orders, matching and the account, with no I/O.

:class:`Venue` is event driven and deterministic: every method that changes state takes the
market time ``t_ns`` at which it happens, first runs the order-flow model up to that time, then
applies the input. Outputs (order updates, executions, commission reports, position and account
changes) are appended to an outbox that :meth:`Venue.drain` empties; depth changes accumulate
per book (:meth:`Venue.drain_depth`). Given the same seed, start time and inputs, two venues
produce identical outputs, which is what makes a paper run replayable.

Prices are integer ticks inside; ``Decimal`` only at the edges (requests and messages).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal

from paper.venue.account import PNL_QUANTUM, Account, order_commission
from paper.venue.book import Book, Resting
from paper.venue.flow import CANCEL, MARKET, FlowModel
from paper.venue.messages import (
    ACTIONS,
    ASK,
    BID,
    CODE_ORDER_CANCELLED,
    ERR_CANCEL_NOT_CANCELLABLE,
    ERR_CANCEL_NOT_FOUND,
    ERR_DUPLICATE_ORDER_ID,
    ERR_MODIFY_FILLED,
    ERR_MODIFY_MISMATCH,
    ERR_NO_SECURITY_DEFINITION,
    ERR_ORDER_REJECTED,
    ERR_PRICE_INCREMENT,
    ORDER_TYPES,
    TIFS,
    AccountEvent,
    AccountSnapshot,
    AccountValue,
    CancelResult,
    CommissionEvent,
    CommissionReport,
    ContractInfo,
    DepthSnapshot,
    Execution,
    ExecutionEvent,
    ExecutionFilter,
    ExecutionReport,
    Level,
    OrderAck,
    OrderEvent,
    OrderReject,
    OrderSpec,
    OrderUpdate,
    PlaceOrder,
    Position,
    PositionEvent,
    Tick,
)
from paper.venue.symbols import DEFAULT_SYMBOLS, SymbolConfig

MS = 1_000_000
NEVER = 2**63 - 1
ADDED = 1
REMOVED = 2
STOP_TYPES = frozenset({"STP", "STP LMT", "TRAIL"})
MAX_MOVE_STEPS = 50
NO_DEFINITION = "No security definition has been found for the request"


@dataclass(frozen=True, slots=True)
class VenueConfig:
    """Venue settings. ``increasing_order_ids`` is IB's rule (a reused or lower id for a client
    is refused with 103); ``check_buying_power`` refuses orders whose value exceeds it."""

    symbols: tuple[SymbolConfig, ...] = DEFAULT_SYMBOLS
    account: str = "DU1234567"
    initial_cash: Decimal = Decimal("1000000.00")
    increasing_order_ids: bool = True
    check_buying_power: bool = True


class OrderRefused(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class SymbolState:
    __slots__ = (
        "cfg", "contract", "symbol", "tick", "lot", "book", "flow", "last", "last_size",
        "volume", "close", "stops", "_prices", "index",
    )  # fmt: skip

    def __init__(self, cfg: SymbolConfig, seed: int, start_ns: int, index: int) -> None:
        self.cfg = cfg
        self.contract = cfg.contract
        self.symbol = cfg.contract.symbol
        self.tick = cfg.contract.tick_size
        self.lot = cfg.contract.lot_size
        self.index = index
        price = to_ticks(cfg.initial_price, self.tick)
        self.book = Book()
        self.flow = FlowModel(cfg.flow, seed, self.symbol, price, self.lot, start_ns)
        self.last: int | None = price
        self.last_size = 0
        self.volume = 0
        self.close = price
        self.stops: list[WorkingOrder] = []
        self._prices: dict[int, Decimal] = {}
        for side, p, qty in self.flow.initial_orders():
            self.book.insert(Resting(side, p, qty))
        self.book.changes.clear()

    def px(self, ticks: int) -> Decimal:
        cached = self._prices.get(ticks)
        if cached is None:
            cached = self._prices[ticks] = ticks * self.tick
        return cached

    def mark(self) -> Decimal:
        bid, ask = self.book.best_bid(), self.book.best_ask()
        if bid is not None and ask is not None:
            return (self.px(bid) + self.px(ask)) / 2
        return self.px(self.last if self.last is not None else self.close)

    def mid_ticks(self) -> float | None:
        bid, ask = self.book.best_bid(), self.book.best_ask()
        if bid is None or ask is None:
            return None
        return (bid + ask) / 2


def to_ticks(price: Decimal, tick: Decimal) -> int:
    """Exact conversion; ``ValueError`` if ``price`` is not on the tick grid."""
    q = price / tick
    if q != q.to_integral_value():
        raise ValueError(f"{price} is not a multiple of {tick}")
    return int(q)


class WorkingOrder:
    __slots__ = (
        "perm_id", "client_id", "order_id", "account", "sym", "spec", "status", "filled",
        "cum_value", "last_fill", "resting", "stop", "limit", "triggered", "commission",
        "buy", "time_ns", "client_stop",
    )  # fmt: skip

    def __init__(self, perm_id: int, req: PlaceOrder, account: str, sym: SymbolState, t_ns: int) -> None:
        self.perm_id = perm_id
        self.client_id = req.client_id
        self.order_id = req.order_id
        self.account = account
        self.sym = sym
        self.spec = req.order
        self.status = "PendingSubmit"
        self.filled = 0
        self.cum_value = 0
        self.last_fill: int | None = None
        self.resting: Resting | None = None
        self.stop: int | None = None
        self.limit: int | None = None
        self.triggered = False
        self.commission = Decimal(0)
        self.buy = req.order.action == "BUY"
        self.time_ns = t_ns
        # The trail stop the client last sent: clients echo it on every modify.
        self.client_stop = req.order.trail_stop_price

    @property
    def remaining(self) -> int:
        return self.spec.total_qty - self.filled

    @property
    def side(self) -> int:
        return BID if self.buy else ASK

    @property
    def is_open(self) -> bool:
        return self.status in ("PreSubmitted", "Submitted")


def _average(value: Decimal, qty: int) -> Decimal:
    avg = value / qty
    exponent = avg.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -8:
        avg = avg.quantize(PNL_QUANTUM)
    return avg


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
        self.states = [SymbolState(cfg, seed, start_ns, i) for i, cfg in enumerate(config.symbols)]
        self.by_symbol = {s.symbol: s for s in self.states}
        self.by_con_id = {s.contract.con_id: s for s in self.states}
        self.account = Account(config.account, config.initial_cash)
        self.orders: dict[tuple[int, int], WorkingOrder] = {}
        self.open: dict[int, WorkingOrder] = {}
        self.highest_ids: dict[int, int] = dict(highest_order_ids or {})
        self.next_perm_id = first_perm_id
        self.executions: list[ExecutionReport] = []
        self.out: list[object] = []
        self.exec_seq = first_exec_seq
        # Execution ids must never repeat, not even across venue restarts (the floor dedupes
        # fills on them): the start time (an input, so replays still match) and the reset epoch.
        self._exec_prefix = f"{(start_ns // 1_000_000) & 0xFFFFFFFF:08x}"
        self._exec_suffix = f"{epoch & 0xFF:02x}.01"
        self._moves: list[tuple[int, int, int, float, bool]] = []
        self._move_seq = 0
        self._dirty_positions: set[str] = set()
        self._account_dirty = False
        self._stops_busy = False

    # ================================================================== clock

    def next_due_ns(self) -> int:
        """Market time of the next model event or scripted move."""
        due = min((s.flow.next_ns for s in self.states), default=NEVER)
        if self._moves:
            due = min(due, self._moves[0][0])
        return due

    def advance(self, t_ns: int) -> None:
        """Run every model event and scripted move due at or before ``t_ns``."""
        if t_ns < self.now_ns:
            t_ns = self.now_ns
        states = self.states
        moves = self._moves
        while True:
            best = None
            best_t = t_ns + 1
            for s in states:
                if s.flow.next_ns < best_t:
                    best, best_t = s, s.flow.next_ns
            if moves and moves[0][0] < best_t:
                when, _, index, reference, final = heapq.heappop(moves)
                self.now_ns = max(self.now_ns, when)
                self._apply_move(states[index], reference, final)
                continue
            if best is None:
                break
            self.now_ns = best_t
            self._model_event(best)
        self.now_ns = t_ns

    def _model_event(self, s: SymbolState) -> None:
        kind, side, price, qty, order = s.flow.step(s.book)
        book = s.book
        if kind == CANCEL:
            assert order is not None
            book.remove(order)
        elif kind == MARKET:
            # As in CST, a market order consumes (part of) the best queue only; the book is
            # walked by limit orders priced through it and by scripted moves.
            best = book.best_ask() if side == BID else book.best_bid()
            if best is not None:
                self._model_take(s, side, min(qty, book.size_at(1 - side, best)), best)
        else:
            opposite = book.best_ask() if side == BID else book.best_bid()
            if opposite is not None and (price >= opposite if side == BID else price <= opposite):
                qty = self._model_take(s, side, qty, price)
            if qty > 0:
                book.insert(Resting(side, price, qty))

    def set_event_rate(self, symbol: str, rate: float, t_ns: int) -> None:
        self.advance(t_ns)
        self._symbol(symbol).flow.set_rate(rate, self.now_ns)

    # ================================================================== matching

    def _print(self, s: SymbolState, price: int, qty: int) -> None:
        s.last = price
        s.last_size = qty
        s.volume += qty

    def _model_take(self, s: SymbolState, side: int, qty: int, limit: int | None) -> int:
        fills = s.book.take(side, qty, limit)
        for maker, q, price in fills:
            qty -= q
            self._print(s, price, q)
            if maker.owner is not None:
                self._fill(maker.owner, q, price, ADDED)
        if fills and s.stops:
            self._check_stops(s)
        return qty

    def _our_take(self, wo: WorkingOrder, limit: int | None) -> None:
        s = wo.sym
        fills = s.book.take(wo.side, wo.remaining, limit)
        for maker, q, price in fills:
            self._print(s, price, q)
            if maker.owner is not None:
                self._fill(maker.owner, q, price, ADDED)
            self._fill(wo, q, price, REMOVED)
        if fills and s.stops:
            self._check_stops(s)

    def _work(self, wo: WorkingOrder) -> None:
        """Execute a live (non-stop or triggered) order against the book; rest or end it."""
        if wo.limit is None:
            self._our_take(wo, None)
            if wo.is_open and wo.remaining > 0:
                # No liquidity left on the other side: a market order does not wait.
                self._finish(wo, "Cancelled")
            return
        self._our_take(wo, wo.limit)
        if not wo.is_open or wo.remaining == 0:
            return
        if wo.spec.tif == "IOC":
            self._finish(wo, "Cancelled")
            return
        wo.resting = Resting(wo.side, wo.limit, wo.remaining, wo)
        wo.sym.book.insert(wo.resting)

    def _fill(self, wo: WorkingOrder, qty: int, price: int, liquidity: int) -> None:
        s = wo.sym
        wo.filled += qty
        wo.cum_value += qty * price
        wo.last_fill = price
        if wo.resting is not None and wo.resting.qty == 0:
            wo.resting = None
        price_d = s.px(price)
        cum_value = wo.cum_value * s.tick
        total_commission = order_commission(wo.filled, cum_value)
        commission = total_commission - wo.commission
        wo.commission = total_commission
        realized = self.account.apply_fill(s.symbol, qty if wo.buy else -qty, price_d, commission)
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
            price=price_d,
            time_ns=self.now_ns,
            cum_qty=wo.filled,
            avg_price=_average(cum_value, wo.filled),
            order_ref=wo.spec.order_ref,
            liquidity=liquidity,
        )
        report = CommissionReport(exec_id, commission, s.contract.currency, realized)
        self.executions.append(ExecutionReport(execution, report))
        self.out.append(ExecutionEvent(execution))
        self.out.append(CommissionEvent(report))
        self._dirty_positions.add(s.symbol)
        self._account_dirty = True
        if wo.remaining == 0:
            self._finish(wo, "Filled")
        else:
            self._emit(wo)

    def _finish(self, wo: WorkingOrder, status: str) -> None:
        if wo.resting is not None:
            if wo.resting.qty:
                wo.sym.book.remove(wo.resting)
            wo.resting = None
        if wo in wo.sym.stops:
            wo.sym.stops.remove(wo)
        wo.status = status
        self.open.pop(wo.perm_id, None)
        self._emit(wo)

    def _emit(self, wo: WorkingOrder) -> None:
        self.out.append(OrderEvent(self._update(wo)))

    def _update(self, wo: WorkingOrder) -> OrderUpdate:
        s = wo.sym
        return OrderUpdate(
            account=wo.account,
            client_id=wo.client_id,
            order_id=wo.order_id,
            perm_id=wo.perm_id,
            symbol=s.symbol,
            con_id=s.contract.con_id,
            order=wo.spec,
            status=wo.status,
            filled=wo.filled,
            remaining=wo.remaining,
            avg_fill_price=_average(wo.cum_value * s.tick, wo.filled) if wo.filled else None,
            last_fill_price=s.px(wo.last_fill) if wo.last_fill is not None else None,
            time_ns=self.now_ns,
        )

    # ================================================================== stops

    def _trail_amount(self, wo: WorkingOrder, reference: int) -> int:
        spec = wo.spec
        if spec.trailing_percent is not None:
            amount = (Decimal(reference) * spec.trailing_percent / 100).to_integral_value(ROUND_HALF_UP)
            return max(1, int(amount))
        assert spec.aux_price is not None
        return to_ticks(spec.aux_price, wo.sym.tick)

    def _set_stop(self, wo: WorkingOrder) -> None:
        """Compute the stop (and a STP LMT's limit) in ticks from the order's prices; a TRAIL
        without an initial stop starts one trailing amount away from the last trade."""
        s = wo.sym
        spec = wo.spec
        if spec.order_type == "TRAIL":
            if spec.trail_stop_price is not None:
                wo.stop = to_ticks(spec.trail_stop_price, s.tick)
            else:
                reference = s.last if s.last is not None else s.close
                amount = self._trail_amount(wo, reference)
                wo.stop = reference + amount if wo.buy else reference - amount
                wo.spec = replace(spec, trail_stop_price=s.px(wo.stop))
        else:
            assert spec.aux_price is not None
            wo.stop = to_ticks(spec.aux_price, s.tick)
            wo.limit = to_ticks(spec.lmt_price, s.tick) if spec.lmt_price is not None else None

    def _arm(self, wo: WorkingOrder) -> None:
        s = wo.sym
        if wo not in s.stops:
            s.stops.append(wo)
        self._check_stops(s)

    def _check_stops(self, s: SymbolState) -> None:
        if self._stops_busy:
            return
        self._stops_busy = True
        try:
            again = True
            while again:
                again = False
                last = s.last
                if last is None:
                    return
                for wo in list(s.stops):
                    if not wo.is_open or wo.stop is None:
                        continue
                    if wo.spec.order_type == "TRAIL":
                        amount = self._trail_amount(wo, last)
                        candidate = last + amount if wo.buy else last - amount
                        if (candidate < wo.stop) if wo.buy else (candidate > wo.stop):
                            wo.stop = candidate
                            wo.spec = replace(wo.spec, trail_stop_price=s.px(candidate))
                            self._emit(wo)
                    if (last >= wo.stop) if wo.buy else (last <= wo.stop):
                        s.stops.remove(wo)
                        self._trigger(wo)
                        again = True
                        break
        finally:
            self._stops_busy = False

    def _trigger(self, wo: WorkingOrder) -> None:
        """A triggered STP or TRAIL becomes a market order, a STP LMT a limit order (with new
        time priority). Stops the fills trigger are checked by the caller's loop."""
        wo.triggered = True
        wo.status = "Submitted"
        if wo.spec.order_type != "STP LMT":
            wo.limit = None
        self._emit(wo)
        self._work(wo)

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
        if account != self.config.account:
            raise OrderRefused(ERR_ORDER_REJECTED, f"Order rejected - reason:Unknown account {account}")
        self._validate(req.order, s)
        if self.config.check_buying_power:
            self._check_buying_power(req.order, s)
        wo = WorkingOrder(self.next_perm_id, req, account, s, self.now_ns)
        self.next_perm_id += 1
        self.orders[(req.client_id, req.order_id)] = wo
        self.open[wo.perm_id] = wo
        if req.order.order_type in STOP_TYPES:
            # Held by the venue until triggered, as IB holds simulated stops.
            wo.status = "PreSubmitted"
            self._set_stop(wo)
            self._emit(wo)
            self._arm(wo)
        else:
            wo.status = "Submitted"
            lmt = req.order.lmt_price
            wo.limit = to_ticks(lmt, s.tick) if req.order.order_type == "LMT" and lmt is not None else None
            self._emit(wo)
            self._work(wo)
        return wo

    def _lookup(self, symbol: str, con_id: int) -> SymbolState:
        s = self.by_symbol.get(symbol.upper()) if symbol else self.by_con_id.get(con_id)
        if s is None:
            raise OrderRefused(ERR_NO_SECURITY_DEFINITION, NO_DEFINITION)
        return s

    def _validate(self, spec: OrderSpec, s: SymbolState) -> None:
        def reject(reason: str) -> OrderRefused:
            return OrderRefused(ERR_ORDER_REJECTED, f"Order rejected - reason:{reason}")

        for value in (spec.lmt_price, spec.aux_price, spec.trailing_percent, spec.trail_stop_price):
            if value is not None and not value.is_finite():
                raise reject(f"Invalid price {value}")
        if spec.action not in ACTIONS:
            raise reject(f"Invalid action {spec.action!r}")
        if spec.order_type not in ORDER_TYPES:
            raise reject(f"Unsupported order type {spec.order_type!r}")
        if spec.tif not in TIFS:
            raise reject(f"Unsupported time in force {spec.tif!r}")
        if spec.total_qty <= 0 or spec.total_qty % s.lot:
            raise reject(f"Invalid order quantity {spec.total_qty} (lot size {s.lot})")
        needs_limit = spec.order_type in ("LMT", "STP LMT")
        needs_aux = spec.order_type in ("STP", "STP LMT")
        if needs_limit and (spec.lmt_price is None or spec.lmt_price <= 0):
            raise reject("A limit price is required")
        if needs_aux and (spec.aux_price is None or spec.aux_price <= 0):
            raise reject("A stop price is required")
        if spec.order_type == "TRAIL":
            if spec.trailing_percent is not None:
                if not 0 < spec.trailing_percent < 100:
                    raise reject("Trailing percent must be between 0 and 100")
            elif spec.aux_price is None or spec.aux_price <= 0:
                raise reject("A trailing amount or percent is required")
        prices: Iterable[Decimal | None] = (
            spec.lmt_price if needs_limit else None,
            spec.aux_price if spec.order_type != "TRAIL" or spec.trailing_percent is None else None,
            spec.trail_stop_price,
        )
        for price in prices:
            if price is None:
                continue
            if not price.is_finite() or price <= 0 or price % s.tick != 0:
                raise OrderRefused(
                    ERR_PRICE_INCREMENT,
                    f"The price does not conform to the minimum price variation ({s.tick}).",
                )

    def _check_buying_power(self, spec: OrderSpec, s: SymbolState) -> None:
        reference = spec.lmt_price or spec.aux_price if spec.order_type != "TRAIL" else None
        value = spec.total_qty * (reference if reference is not None else s.mark())
        power = self.account.buying_power(self._marks())
        if value > power:
            raise OrderRefused(
                ERR_ORDER_REJECTED,
                f"Order rejected - reason:Insufficient buying power ({value} > {power:.2f})",
            )

    def _modify(self, wo: WorkingOrder, req: PlaceOrder) -> None:
        if wo.status == "Filled":
            raise OrderRefused(ERR_MODIFY_FILLED, "Unable to modify this order as it is already filled")
        if not wo.is_open:
            raise OrderRefused(
                ERR_ORDER_REJECTED, f"Order rejected - reason:Order is no longer active ({wo.status})"
            )
        new = req.order
        old = wo.spec
        s = wo.sym
        other_symbol = req.symbol and req.symbol.upper() != s.symbol
        if other_symbol or (req.con_id and req.con_id != s.contract.con_id):
            raise OrderRefused(ERR_MODIFY_MISMATCH, "Order being modified does not match original order")
        if new.action != old.action or new.order_type != old.order_type:
            raise OrderRefused(ERR_MODIFY_MISMATCH, "Order being modified does not match original order")
        self._validate(new, s)
        if new.total_qty <= wo.filled:
            raise OrderRefused(
                ERR_ORDER_REJECTED,
                f"Order rejected - reason:Quantity {new.total_qty} not above filled {wo.filled}",
            )
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
            self._set_stop(wo)
            self._emit(wo)
            self._arm(wo)
            return
        limit = wo.limit
        if new.lmt_price is not None and wo.limit is not None:
            limit = to_ticks(new.lmt_price, s.tick)
        resting = wo.resting
        if resting is None:
            self._emit(wo)
            return
        if limit == wo.limit and not grew:
            if wo.remaining < resting.qty:
                s.book.reduce(resting, wo.remaining)
            self._emit(wo)
            return
        # A new price or a larger size goes to the back of the queue, as on real exchanges.
        s.book.remove(resting)
        wo.resting = None
        wo.limit = limit
        self._emit(wo)
        self._work(wo)

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
        self._finish(wo, "Cancelled")
        update = self._update(wo)
        return CancelResult(client_id, order_id, CODE_ORDER_CANCELLED, "Order Canceled - reason:", update)

    def global_cancel(self, t_ns: int, account: str = "") -> int:
        self.advance(t_ns)
        victims = [wo for wo in self.open.values() if not account or wo.account == account]
        for wo in victims:
            self._finish(wo, "Cancelled")
        return len(victims)

    def session_close(self, t_ns: int) -> int:
        """End of the trading day: every open DAY order expires (Cancelled). Returns how many."""
        self.advance(t_ns)
        victims = [wo for wo in self.open.values() if wo.spec.tif == "DAY"]
        for wo in victims:
            self._finish(wo, "Cancelled")
        for s in self.states:
            s.close = s.last if s.last is not None else s.close
            s.volume = 0
        return len(victims)

    def move_price(self, symbol: str, pct: Decimal, duration_ns: int, t_ns: int) -> None:
        """Scripted move (flash crash when negative): the reference price goes ``pct`` percent
        from where it is, in equal steps over ``duration_ns``; each step sweeps the liquidity
        the new price has left behind (filling our resting orders there) and re-quotes."""
        self.advance(t_ns)
        s = self._symbol(symbol)
        mid = s.mid_ticks()
        start = mid if mid is not None else s.flow.reference
        target = start * (1.0 + float(pct) / 100.0)
        steps = max(1, min(MAX_MOVE_STEPS, duration_ns // MS))
        for k in range(1, steps + 1):
            self._move_seq += 1
            when = self.now_ns + duration_ns * k // steps
            reference = start + (target - start) * k / steps
            heapq.heappush(self._moves, (when, self._move_seq, s.index, reference, k == steps))
        self.advance(self.now_ns)

    def _apply_move(self, s: SymbolState, reference: float, final: bool) -> None:
        # Stops triggered by the sweep must meet the re-quoted book, not the emptied side.
        busy, self._stops_busy = self._stops_busy, True
        try:
            self._move_book(s, reference, final)
        finally:
            self._stops_busy = busy
        if s.stops and not busy:
            self._check_stops(s)

    def _move_book(self, s: SymbolState, reference: float, final: bool) -> None:
        flow = s.flow
        previous = flow.reference
        flow.move_reference(max(1.0, reference))
        # Quote on the side of the move so the mid reaches the target, not half a tick short.
        half = flow.params.spread_ticks / 2
        bid_ref = math.floor(reference - half) if reference < previous else math.ceil(reference - half)
        bid_ref = max(1, bid_ref)
        ask_ref = bid_ref + flow.params.spread_ticks
        book = s.book
        best_bid, best_ask = book.best_bid(), book.best_ask()
        if best_bid is not None and best_bid > bid_ref:
            self._model_take(s, ASK, 1 << 62, bid_ref + 1)
        if best_ask is not None and best_ask < ask_ref:
            self._model_take(s, BID, 1 << 62, ask_ref - 1)
        reach = flow.params.depth_levels
        for order in list(book.model):
            if order.side == ASK and order.price > ask_ref + reach:
                book.remove(order)
            elif order.side == BID and order.price < bid_ref - reach:
                book.remove(order)
        # On the way the book is quoted three levels deep at the usual size per level (stops
        # triggered by the move sell into it); at the end it is rebuilt to its usual depth.
        per_level = max(1, round(flow.params.orders_per_level))
        for i in range(reach if final else 3):
            bid_price, ask_price = bid_ref - i, ask_ref + i
            top_ask, top_bid = book.best_ask(), book.best_bid()
            bid_free = top_ask is None or bid_price < top_ask
            if bid_price >= 1 and bid_free and not book.size_at(BID, bid_price):
                for _ in range(per_level):
                    book.insert(Resting(BID, bid_price, flow.size()))
            if not book.size_at(ASK, ask_price) and (top_bid is None or ask_price > top_bid):
                for _ in range(per_level):
                    book.insert(Resting(ASK, ask_price, flow.size()))

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

    def order(self, client_id: int, order_id: int) -> OrderUpdate | None:
        wo = self.orders.get((client_id, order_id))
        return self._update(wo) if wo else None

    def executions_matching(self, f: ExecutionFilter) -> tuple[ExecutionReport, ...]:
        side = {"BUY": "BOT", "SELL": "SLD"}.get(f.side.upper(), f.side.upper())
        symbol = f.symbol.upper()
        return tuple(
            r
            for r in self.executions
            if (f.client_id is None or r.execution.client_id == f.client_id)
            and (not f.account or r.execution.account == f.account)
            and (f.since_ns is None or r.execution.time_ns >= f.since_ns)
            and (not symbol or r.execution.symbol == symbol)
            and (not side or r.execution.side == side)
        )

    def _marks(self) -> dict[str, Decimal]:
        return {s.symbol: s.mark() for s in self.states}

    def position(self, symbol: str) -> Position:
        s = self._symbol(symbol)
        state = self.account.positions.get(s.symbol)
        mark = s.mark()
        qty = state.qty if state else 0
        return Position(
            account=self.account.account_id,
            symbol=s.symbol,
            con_id=s.contract.con_id,
            position=qty,
            avg_cost=state.avg_cost() if state else Decimal(0),
            market_price=mark,
            market_value=qty * mark,
            unrealized_pnl=state.unrealized(mark) if state and qty else Decimal(0),
            realized_pnl=state.realized if state else Decimal(0),
        )

    def positions(self, account: str = "") -> tuple[Position, ...]:
        if account and account != self.account.account_id:
            return ()
        return tuple(self.position(sym) for sym in self.account.positions)

    def account_snapshot(self, account: str = "") -> AccountSnapshot:
        currency = "USD"
        values = tuple(
            AccountValue(key, str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)), currency)
            for key, value in self.account.values(self._marks())
        )
        return AccountSnapshot(self.account.account_id, values, self.now_ns)

    def tick(self, symbol: str) -> Tick:
        s = self._symbol(symbol)
        book = s.book
        bid, ask = book.best_bid(), book.best_ask()
        return Tick(
            symbol=s.symbol,
            bid=s.px(bid) if bid is not None else None,
            ask=s.px(ask) if ask is not None else None,
            last=s.px(s.last) if s.last is not None else None,
            bid_size=book.size_at(BID, bid) if bid is not None else 0,
            ask_size=book.size_at(ASK, ask) if ask is not None else 0,
            last_size=s.last_size,
            volume=s.volume,
            close=s.px(s.close),
            time_ns=self.now_ns,
        )

    def depth_snapshot(self, symbol: str) -> DepthSnapshot:
        s = self._symbol(symbol)
        book = s.book
        return DepthSnapshot(
            symbol=s.symbol,
            seq=book.seq,
            bids=tuple(Level(s.px(p), q) for p, q in book.ladder(BID)),
            asks=tuple(Level(s.px(p), q) for p, q in book.ladder(ASK)),
            time_ns=self.now_ns,
        )

    # ================================================================== outputs

    def drain(self) -> list[object]:
        """Events since the last drain, in order; position and account changes last."""
        out = self.out
        self.out = []
        if self._dirty_positions:
            for symbol in sorted(self._dirty_positions, key=lambda sym: self.by_symbol[sym].index):
                out.append(PositionEvent(self.position(symbol)))
            self._dirty_positions.clear()
        if self._account_dirty:
            out.append(AccountEvent(self.account_snapshot()))
            self._account_dirty = False
        return out

    def drain_depth(self) -> list[tuple[SymbolState, list[tuple[int, int, int, int]]]]:
        """Per symbol with changes: its state and the raw ``(seq, side, ticks, size)`` list."""
        out = []
        for s in self.states:
            if s.book.changes:
                out.append((s, s.book.changes))
                s.book.changes = []
        return out
