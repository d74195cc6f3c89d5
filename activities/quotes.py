"""A :class:`activities.market.QuoteSource` fed by the broker's L1 stream.

The first request for a symbol subscribes (``reqMktData`` through :class:`brokers.ibkr.IbkrBroker`)
and waits for a two-sided quote; later requests read the latest one. A quote older than
``max_age`` is not used: the activity fails (retryably) instead of pricing off a stale book.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Protocol

from activities.market import NoQuote, QuoteResult
from brokers.base import Quote, Subscription


class QuoteFeed(Protocol):
    """What this module needs from :class:`brokers.base.Broker`."""

    async def subscribe_quotes(self, symbol: str, handler: Callable[[Quote], None]) -> Subscription: ...


@dataclass
class StreamingQuotes:
    broker: QuoteFeed
    tick: Decimal = Decimal("0.01")
    first_quote_timeout: float = 3.0
    max_age: float = 30.0
    _latest: dict[str, Quote] = field(default_factory=dict)
    _received_at: dict[str, float] = field(default_factory=dict)
    _subscribed: dict[str, asyncio.Event] = field(default_factory=dict)

    async def quote(self, symbol: str) -> QuoteResult:
        ready = self._subscribed.get(symbol)
        if ready is None:
            ready = self._subscribed[symbol] = asyncio.Event()
            await self.broker.subscribe_quotes(symbol, self._on_quote)
        try:
            await asyncio.wait_for(ready.wait(), self.first_quote_timeout)
        except TimeoutError:
            raise NoQuote(symbol, f"no two-sided quote within {self.first_quote_timeout} s") from None
        q = self._latest[symbol]
        age = time.monotonic() - self._received_at[symbol]
        if age > self.max_age:
            raise NoQuote(symbol, f"last quote is {age:.1f} s old")
        assert q.bid is not None and q.ask is not None
        return QuoteResult(symbol=symbol, bid=q.bid, ask=q.ask, tick=self.tick, ts=datetime.now(UTC))

    def _on_quote(self, q: Quote) -> None:
        if q.bid is None or q.ask is None:
            return
        self._latest[q.symbol] = q
        self._received_at[q.symbol] = time.monotonic()
        event = self._subscribed.get(q.symbol)
        if event is not None:
            event.set()
