"""L1 and L2 subscriptions over ib_async, kept across failover and reconnect.

The subscriptions live here, not in ib_async (which forgets them with every connection): after
each change of active session the epoch's reconciliation (:mod:`brokers.ib_reconcile`) calls
:meth:`MarketData.resubscribe` with the new session's ``IB``. Only the active session's tickers
are delivered.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal

from ib_async import IB, Contract, Stock, Ticker
from ib_async.objects import DOMLevel

from brokers import ib_convert as cv
from brokers.base import DepthLevel, DepthSnapshot, Quote, Subscription, UnknownSymbol
from brokers.ib_session import call_safely

__all__ = ["MarketData", "UnknownSymbol"]


QuoteHandler = Callable[[Quote], None]
DepthHandler = Callable[[DepthSnapshot], None]


class MarketData:
    def __init__(self, exchange: str = "SMART", currency: str = "USD") -> None:
        self._exchange = exchange
        self._currency = currency
        self._contracts: dict[str, Contract] = {}
        self._quotes: dict[str, list[QuoteHandler]] = {}
        self._depth: dict[str, list[DepthHandler]] = {}
        self._rows: dict[str, int] = {}

    def contract(self, symbol: str) -> Contract:
        """The qualified contract (market data needs the ``conId``); see :meth:`qualify`."""
        return self._contracts[symbol]

    async def qualify(self, symbol: str, ib: IB) -> Contract:
        """Ask the gateway for ``symbol``'s contract once; raise :class:`UnknownSymbol`."""
        contract = self._contracts.get(symbol)
        if contract is None:
            candidate = Stock(symbol, self._exchange, self._currency)
            await ib.qualifyContractsAsync(candidate)
            if not candidate.conId:
                raise UnknownSymbol(symbol)
            # One Contract object per symbol: ib_async keys its tickers by the contract.
            contract = self._contracts[symbol] = candidate
        return contract

    async def subscribe_quotes(self, symbol: str, handler: QuoteHandler, ib: IB | None) -> Subscription:
        if ib is not None:
            await self.qualify(symbol, ib)
        handlers = self._quotes.setdefault(symbol, [])
        handlers.append(handler)
        if len(handlers) == 1 and ib is not None:
            ib.reqMktData(self.contract(symbol))
        return Subscription("quotes", symbol, id(handler))

    async def subscribe_depth(
        self, symbol: str, handler: DepthHandler, rows: int, ib: IB | None
    ) -> Subscription:
        if ib is not None:
            await self.qualify(symbol, ib)
        handlers = self._depth.setdefault(symbol, [])
        handlers.append(handler)
        self._rows[symbol] = max(rows, self._rows.get(symbol, 0))
        if len(handlers) == 1 and ib is not None:
            ib.reqMktDepth(self.contract(symbol), self._rows[symbol])
        return Subscription("depth", symbol, id(handler))

    def unsubscribe(self, subscription: Subscription, ib: IB | None) -> None:
        symbol = subscription.symbol
        if symbol not in self._contracts:
            ib = None  # never reached the gateway
        if subscription.kind == "quotes":
            before = self._quotes.get(symbol, [])
            self._quotes[symbol] = [h for h in before if id(h) != subscription.key]
            if before and not self._quotes[symbol] and ib is not None:
                ib.cancelMktData(self.contract(symbol))
        else:
            before_d = self._depth.get(symbol, [])
            self._depth[symbol] = [h for h in before_d if id(h) != subscription.key]
            if before_d and not self._depth[symbol] and ib is not None:
                ib.cancelMktDepth(self.contract(symbol))

    async def resubscribe(self, ib: IB) -> None:
        """Subscribe everything again on a new session (ib_async forgot the old ones)."""
        for symbol, quote_handlers in self._quotes.items():
            if quote_handlers:
                ib.reqMktData(await self.qualify(symbol, ib))
        for symbol, depth_handlers in self._depth.items():
            if depth_handlers:
                ib.reqMktDepth(await self.qualify(symbol, ib), self._rows[symbol])

    def on_tickers(self, tickers: Iterable[Ticker], recv_ns: int) -> None:
        now = datetime.now(UTC)
        recv_ns = recv_ns or time.perf_counter_ns()
        for t in tickers:
            symbol = t.contract.symbol if t.contract is not None else ""
            if t.ticks and self._quotes.get(symbol):
                quote = Quote(
                    symbol=symbol,
                    bid=cv.price(t.bid),
                    bid_size=_size(t.bidSize),
                    ask=cv.price(t.ask),
                    ask_size=_size(t.askSize),
                    last=cv.price(t.last),
                    last_size=_size(t.lastSize),
                    time=now,
                    recv_ns=recv_ns,
                )
                for qh in self._quotes[symbol]:
                    call_safely(qh, quote)
            if t.domTicks and self._depth.get(symbol):
                snap = DepthSnapshot(
                    symbol=symbol,
                    bids=tuple(
                        DepthLevel(cv.price(lv.price) or Decimal(0), cv.shares(lv.size)) for lv in t.domBids
                    ),
                    asks=tuple(
                        DepthLevel(cv.price(lv.price) or Decimal(0), cv.shares(lv.size)) for lv in t.domAsks
                    ),
                    time=now,
                    recv_ns=recv_ns,
                )
                for dh in self._depth[symbol]:
                    call_safely(dh, snap)


def _levels(levels: Iterable[DOMLevel]) -> tuple[DepthLevel, ...]:
    return tuple(DepthLevel(cv.price(lv.price) or Decimal(0), cv.shares(lv.size)) for lv in levels)


def _size(value: float | None) -> int | None:
    if value is None or value != value or value < 0:
        return None
    return int(round(value))
