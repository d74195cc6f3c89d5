"""Schwab's streamed market data as the broker interface's quotes, books and trades.

* ``LEVELONE_EQUITIES`` sends only the fields that changed ("Change" delivery): each symbol's
  quote is the merge of everything received since the subscription.
* ``NASDAQ_BOOK`` sends the whole book every time: one :class:`DepthSnapshot` per message, the
  first after every (re)login marked ``gap``.
* Schwab streams no time and sales (schwab-py has no such service): a trade is read off L1 as a
  rise of ``TOTAL_VOLUME``, at ``LAST_PRICE``, the rise being its size (several trades between
  two L1 messages arrive as one). This differs from IB's tick-by-tick tape.

Prices arrive as JSON doubles; ``Decimal(str(x))`` gives the shortest text that round-trips,
which for a cent-ticked price is the price itself.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from brokers.base import DepthLevel, DepthSnapshot, Quote, Subscription, Trade

SIZE_UNIT = 1
"""Shares per unit of L1 bid/ask size. Schwab's streamer document says lots of 100, captures
of the live feed show shares; the paper emulator sends shares. One constant to change."""


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _time(ms: Any) -> datetime:
    return (
        datetime.fromtimestamp(ms / 1000, UTC)
        if isinstance(ms, int | float) and ms > 0
        else datetime.now(UTC)
    )


class MarketData:
    def __init__(self) -> None:
        self._keys = itertools.count(1)
        self.quote_handlers: dict[str, dict[int, Callable[[Quote], None]]] = {}
        self.depth_handlers: dict[str, dict[int, Callable[[DepthSnapshot], None]]] = {}
        self.trade_handlers: dict[str, dict[int, Callable[[Trade], None]]] = {}
        self._l1: dict[str, dict[str, Any]] = {}
        self._gap: set[str] = set()

    # --- subscriptions --------------------------------------------------------------------

    def add(self, kind: str, symbol: str, handler: Callable[[Any], None]) -> Subscription:
        table = self._table(kind)
        key = next(self._keys)
        table.setdefault(symbol, {})[key] = handler
        if kind == "depth":
            self._gap.add(symbol)
        return Subscription(kind, symbol, key)

    def remove(self, subscription: Subscription) -> bool:
        """Forget the handler; True when nothing of that kind is left for the symbol."""
        table = self._table(subscription.kind)
        handlers = table.get(subscription.symbol, {})
        handlers.pop(subscription.key, None)
        if not handlers:
            table.pop(subscription.symbol, None)
            return True
        return False

    def _table(self, kind: str) -> dict[str, dict[int, Callable[[Any], None]]]:
        tables: dict[str, Any] = {
            "quotes": self.quote_handlers,
            "depth": self.depth_handlers,
            "trades": self.trade_handlers,
        }
        table: dict[str, dict[int, Callable[[Any], None]]] = tables[kind]
        return table

    def l1_symbols(self) -> list[str]:
        return sorted(set(self.quote_handlers) | set(self.trade_handlers))

    def book_symbols(self) -> list[str]:
        return sorted(self.depth_handlers)

    def relogged(self) -> None:
        """A new streamer session: every book's next message follows a gap, and L1 restarts
        from a full row."""
        self._gap = set(self.depth_handlers)
        self._l1.clear()

    def mid(self, symbol: str) -> Decimal | None:
        state = self._l1.get(symbol)
        if not state:
            return None
        bid, ask = _dec(state.get("BID_PRICE")), _dec(state.get("ASK_PRICE"))
        if bid is not None and ask is not None and bid > 0 and ask > 0:
            return (bid + ask) / 2
        return _dec(state.get("LAST_PRICE"))

    # --- stream handlers (schwab-py calls them with relabelled messages) -------------------

    def on_level_one(self, message: dict[str, Any]) -> None:
        recv_ns = time.perf_counter_ns()
        for row in message.get("content", ()):
            symbol = row.get("key")
            if not symbol:
                continue
            state = self._l1.setdefault(symbol, {})
            volume_before = state.get("TOTAL_VOLUME")
            state.update({k: v for k, v in row.items() if k.isupper()})
            for handler in list(self.quote_handlers.get(symbol, {}).values()):
                handler(self._quote(symbol, state, recv_ns))
            volume = state.get("TOTAL_VOLUME")
            if (
                volume_before is not None
                and volume is not None
                and volume > volume_before
                and state.get("LAST_PRICE") is not None
            ):
                trade = Trade(
                    symbol=symbol,
                    price=Decimal(str(state["LAST_PRICE"])),
                    size=int(volume - volume_before),
                    time=_time(state.get("TRADE_TIME_MILLIS")),
                    venue_volume=int(volume),
                )
                for trade_handler in list(self.trade_handlers.get(symbol, {}).values()):
                    trade_handler(trade)

    def _quote(self, symbol: str, state: dict[str, Any], recv_ns: int) -> Quote:
        sizes = [_int(state.get(k)) for k in ("BID_SIZE", "ASK_SIZE")]
        bid_size, ask_size = (None if s is None else s * SIZE_UNIT for s in sizes)
        return Quote(
            symbol=symbol,
            bid=_dec(state.get("BID_PRICE")),
            bid_size=bid_size,
            ask=_dec(state.get("ASK_PRICE")),
            ask_size=ask_size,
            last=_dec(state.get("LAST_PRICE")),
            last_size=_int(state.get("LAST_SIZE")),
            time=_time(state.get("QUOTE_TIME_MILLIS") or state.get("TRADE_TIME_MILLIS")),
            recv_ns=recv_ns,
        )

    def on_book(self, message: dict[str, Any]) -> None:
        recv_ns = time.perf_counter_ns()
        for row in message.get("content", ()):
            symbol = row.get("key")
            handlers = self.depth_handlers.get(symbol or "")
            if not handlers:
                continue
            bids = tuple(
                DepthLevel(Decimal(str(level["BID_PRICE"])), int(level.get("TOTAL_VOLUME", 0)))
                for level in row.get("BIDS", ())
            )
            asks = tuple(
                DepthLevel(Decimal(str(level["ASK_PRICE"])), int(level.get("TOTAL_VOLUME", 0)))
                for level in row.get("ASKS", ())
            )
            gap = symbol in self._gap
            self._gap.discard(symbol)
            snapshot = DepthSnapshot(symbol, bids, asks, _time(row.get("BOOK_TIME")), recv_ns, gap=gap)
            for handler in list(handlers.values()):
                handler(snapshot)
