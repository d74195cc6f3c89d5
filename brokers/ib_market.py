"""L1, L2 and trade subscriptions over ib_async, kept across failover and reconnect.

Trades come as TWS's RTVolume ticks (generic tick 233 of ``reqMktData``, one tick per trade,
which every L1 request here asks for): each is read raw (:func:`brokers.ib_internals.on_rt_volume`)
so its price stays the exact decimal the venue sent and its time the venue's.

The subscriptions live here, not in ib_async (which forgets them with every connection): after
each change of active session the epoch's reconciliation (:mod:`brokers.ib_reconcile`) calls
:meth:`MarketData.resubscribe` with the new session's ``IB``; the gateway's 1101 (restored, market
data lost) makes the session's subscriptions void (:meth:`MarketData.data_lost`) so they are
requested again. Only the active session's tickers are delivered. The first book of a symbol
after any of these carries ``gap=True`` (so does the first after a 317 book reset): the feed may
have missed updates, and the L2 feed downstream tells its own readers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

from ib_async import IB, Contract, Stock, Ticker
from ib_async.objects import DOMLevel

from brokers import ib_convert as cv
from brokers.base import DepthLevel, DepthSnapshot, Quote, Subscription, Trade, UnknownSymbol
from brokers.ib_session import call_safely

__all__ = ["MarketData", "UnknownSymbol", "rt_volume_trade"]

log = logging.getLogger(__name__)

QuoteHandler = Callable[[Quote], None]
DepthHandler = Callable[[DepthSnapshot], None]
TradeHandler = Callable[[Trade], None]

RT_VOLUME_TICKS = "233"
"""The generic tick that makes TWS send an RTVolume tick for every trade."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def rt_volume_trade(symbol: str, value: str) -> Trade | None:
    """The trade an RTVolume value ``price;size;epochMillis;totalVolume;vwap;singleTrade``
    reports, exactly as sent; None for one that reports no trade (TWS sends an empty price
    with a volume-only update) or that does not parse."""
    parts = value.split(";")
    if len(parts) < 4 or not parts[0]:
        return None
    try:
        price = Decimal(parts[0])
        size = Decimal(parts[1])
        millis = int(parts[2])
        volume = int(Decimal(parts[3])) if parts[3] else None
    except (InvalidOperation, ValueError):
        return None
    if not price.is_finite() or price <= 0 or size <= 0 or size != size.to_integral_value():
        return None
    return Trade(
        symbol=symbol,
        price=price,
        size=int(size),
        time=_EPOCH + timedelta(milliseconds=millis),
        venue_volume=volume,
    )


class MarketData:
    def __init__(self, exchange: str = "SMART", currency: str = "USD") -> None:
        self._exchange = exchange
        self._currency = currency
        self._contracts: dict[str, Contract] = {}
        self._quotes: dict[str, list[QuoteHandler]] = {}
        self._depth: dict[str, list[DepthHandler]] = {}
        self._trades: dict[str, list[TradeHandler]] = {}
        self._rows: dict[str, int] = {}
        self._live: IB | None = None
        """The ``IB`` whose connection carries the current subscriptions."""
        self._gaps: set[str] = set()
        """Symbols whose next book follows a gap."""

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

    def _ticks_wanted(self, symbol: str) -> bool:
        return bool(self._quotes.get(symbol) or self._trades.get(symbol))

    def _req_ticks(self, symbol: str, ib: IB) -> None:
        # One L1 request per symbol serves quotes and trades: ib_async keeps one ticker per
        # contract, so a second request would share (and its cancel end) the first one's.
        ib.reqMktData(self.contract(symbol), RT_VOLUME_TICKS)

    async def subscribe_quotes(self, symbol: str, handler: QuoteHandler, ib: IB | None) -> Subscription:
        if ib is not None:
            await self.qualify(symbol, ib)
        first = not self._ticks_wanted(symbol)
        self._quotes.setdefault(symbol, []).append(handler)
        if first and ib is not None:
            self._live = self._live or ib
            self._req_ticks(symbol, ib)
        return Subscription("quotes", symbol, id(handler))

    async def subscribe_trades(self, symbol: str, handler: TradeHandler, ib: IB | None) -> Subscription:
        if ib is not None:
            await self.qualify(symbol, ib)
        first = not self._ticks_wanted(symbol)
        self._trades.setdefault(symbol, []).append(handler)
        if first and ib is not None:
            self._live = self._live or ib
            self._req_ticks(symbol, ib)
        return Subscription("trades", symbol, id(handler))

    async def subscribe_depth(
        self, symbol: str, handler: DepthHandler, rows: int, ib: IB | None
    ) -> Subscription:
        if ib is not None:
            await self.qualify(symbol, ib)
        handlers = self._depth.setdefault(symbol, [])
        handlers.append(handler)
        self._rows[symbol] = max(rows, self._rows.get(symbol, 0))
        if len(handlers) == 1 and ib is not None:
            self._live = self._live or ib
            ib.reqMktDepth(self.contract(symbol), self._rows[symbol])
        return Subscription("depth", symbol, id(handler))

    def unsubscribe(self, subscription: Subscription, ib: IB | None) -> None:
        symbol = subscription.symbol
        if symbol not in self._contracts:
            ib = None  # never reached the gateway
        if subscription.kind in ("quotes", "trades"):
            if subscription.kind == "quotes":
                had = bool(self._quotes.get(symbol))
                self._quotes[symbol] = [h for h in self._quotes.get(symbol, []) if id(h) != subscription.key]
            else:
                had = bool(self._trades.get(symbol))
                self._trades[symbol] = [h for h in self._trades.get(symbol, []) if id(h) != subscription.key]
            if had and not self._ticks_wanted(symbol) and ib is not None:
                ib.cancelMktData(self.contract(symbol))
        else:
            before_d = self._depth.get(symbol, [])
            self._depth[symbol] = [h for h in before_d if id(h) != subscription.key]
            if before_d and not self._depth[symbol] and ib is not None:
                ib.cancelMktDepth(self.contract(symbol))

    def data_lost(self, ib: IB | None) -> None:
        """The gateway dropped ``ib``'s market data (1101): the next :meth:`resubscribe` on it
        requests everything again."""
        if ib is not None and ib is self._live:
            self._live = None
        self.mark_gap(*self._depth)

    def mark_gap(self, *symbols: str) -> None:
        """The next book of each of ``symbols`` follows a gap."""
        self._gaps.update(symbols)

    def symbol_of(self, ib: IB, req_id: int) -> str | None:
        ticker = ib.wrapper.reqId2Ticker.get(req_id)
        return ticker.contract.symbol if ticker is not None and ticker.contract is not None else None

    async def resubscribe(self, ib: IB) -> None:
        """Subscribe everything again on a new session (ib_async forgot the old ones), or on
        one whose market data the gateway dropped; nothing if ``ib`` carries them already
        (the gateway restored its upstream with the data kept, 1102)."""
        if ib is self._live:
            return
        self._live = ib
        self.mark_gap(*(symbol for symbol, handlers in self._depth.items() if handlers))
        for symbol in sorted(set(self._quotes) | set(self._trades)):
            if self._ticks_wanted(symbol):
                await self.qualify(symbol, ib)
                self._req_ticks(symbol, ib)
        for symbol, depth_handlers in self._depth.items():
            if depth_handlers:
                ib.reqMktDepth(await self.qualify(symbol, ib), self._rows[symbol])

    def on_rt_volume(self, ticker: Ticker, value: str) -> None:
        """One RTVolume tick (a trade) of the active session, as it arrives."""
        symbol = ticker.contract.symbol if ticker.contract is not None else ""
        handlers = self._trades.get(symbol)
        if not handlers:
            return
        trade = rt_volume_trade(symbol, value)
        if trade is None:
            if value.split(";", 1)[0]:
                log.warning("RTVolume of %s not understood: %r", symbol, value)
            return
        for handler in handlers:
            call_safely(handler, trade)

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
                gap = symbol in self._gaps
                self._gaps.discard(symbol)
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
                    gap=gap,
                )
                for dh in self._depth[symbol]:
                    call_safely(dh, snap)


def _levels(levels: Iterable[DOMLevel]) -> tuple[DepthLevel, ...]:
    return tuple(DepthLevel(cv.price(lv.price) or Decimal(0), cv.shares(lv.size)) for lv in levels)


def _size(value: float | None) -> int | None:
    if value is None or value != value or value < 0:
        return None
    return int(round(value))
