"""The state the venue's parts share: one listed symbol's market and one order of ours.

:class:`SymbolState` is a symbol's book, its order-flow model, the last trade and the stop
orders waiting on it; :class:`WorkingOrder` is one of our orders from acceptance to its end.
Prices are integer ticks here (:func:`to_ticks` converts exactly); the messages built from
this state are in :mod:`paper.venue.snapshots`.
"""

from __future__ import annotations

from decimal import Decimal

from paper.venue.book import Book, Resting
from paper.venue.flow import FlowModel
from paper.venue.flow_models import make_flow
from paper.venue.messages import ASK, BID, PlaceOrder
from paper.venue.symbols import SymbolConfig
from paper.venue.tape import Tape


def to_ticks(price: Decimal, tick: Decimal) -> int:
    """Exact conversion; ``ValueError`` if ``price`` is not on the tick grid."""
    q = price / tick
    if q != q.to_integral_value():
        raise ValueError(f"{price} is not a multiple of {tick}")
    return int(q)


class SymbolState:
    """One listed symbol: its book, order-flow model, tape (last trade, volume, close) and the
    stop orders of ours waiting on its trades."""

    __slots__ = (
        "cfg", "contract", "symbol", "tick", "lot", "book", "flow", "last", "last_size",
        "volume", "close", "stops", "_prices", "index", "tape",
    )  # fmt: skip

    def __init__(self, cfg: SymbolConfig, seed: int, start_ns: int, index: int, flow: str) -> None:
        self.cfg = cfg
        self.contract = cfg.contract
        self.symbol = cfg.contract.symbol
        self.tick = cfg.contract.tick_size
        self.lot = cfg.contract.lot_size
        self.index = index
        price = to_ticks(cfg.initial_price, self.tick)
        self.book = Book()
        self.flow: FlowModel = make_flow(flow, cfg, seed, price, self.lot, start_ns)
        self.last: int | None = price
        self.last_size = 0
        self.volume = 0
        self.close = price
        self.tape = Tape(self.tick)
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

    def record_trade(self, price: int, qty: int, t_ns: int) -> None:
        """A print on the tape: the last trade, the day's volume, and the print itself."""
        self.last = price
        self.last_size = qty
        self.volume += qty
        self.tape.record(price, qty, t_ns)


class WorkingOrder:
    """One order of ours: what was asked (``spec``), its status and fills, and where it is
    (resting in the book, or a stop waiting with ``stop``/``limit`` in ticks)."""

    __slots__ = (
        "perm_id", "client_id", "order_id", "account", "sym", "spec", "status", "filled",
        "cum_value", "last_fill", "resting", "stop", "limit", "triggered", "commission",
        "buy", "time_ns", "client_stop", "ended_ns",
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
        self.ended_ns: int | None = None
        """The market time the venue ended it (cancelled, expired): ``GET /orders`` shows it."""

    @property
    def remaining(self) -> int:
        return self.spec.total_qty - self.filled

    @property
    def side(self) -> int:
        return BID if self.buy else ASK

    @property
    def is_open(self) -> bool:
        return self.status in ("PreSubmitted", "Submitted")
