"""The current touch of an instrument, for pricing iceberg slices.

The workflow asks for a quote just before each slice; the quote comes from the broker session's
market data (ib_async ``reqMktData`` against the gateway). A missing or crossed book is a
transient condition: the activity raises a retryable error. The activity's retry policy rides
out a short gap; past it the Iceberg waits on workflow timers and asks again, and ends the
parent with the reason once quotes have been gone for ``QUOTE_OUTAGE_LIMIT``
(:mod:`workflows.iceberg`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from temporalio import activity
from temporalio.exceptions import ApplicationError


@dataclass(frozen=True)
class QuoteRequest:
    symbol: str


@dataclass(frozen=True)
class QuoteResult:
    symbol: str
    bid: Decimal
    ask: Decimal
    tick: Decimal
    ts: datetime


class QuoteSource(Protocol):
    async def quote(self, symbol: str) -> QuoteResult: ...


class NoQuote(ApplicationError):
    def __init__(self, symbol: str, why: str) -> None:
        super().__init__(f"no usable quote for {symbol}: {why}", type="NoQuote")


class MarketActivities:
    def __init__(self, source: QuoteSource) -> None:
        self._source = source

    @activity.defn(name="get_quote")
    async def get_quote(self, req: QuoteRequest) -> QuoteResult:
        quote = await self._source.quote(req.symbol)
        if quote.bid <= 0 or quote.ask <= 0:
            raise NoQuote(req.symbol, "one side of the book is empty")
        if quote.bid >= quote.ask:
            raise NoQuote(req.symbol, f"book is locked or crossed ({quote.bid} / {quote.ask})")
        return quote
