"""Trades from the broker session to ``market.trades``, for the HUD's tape and volume at price.

The broker calls :meth:`TradePublisher.on_trade` on the event loop for every trade; it only
appends it to its symbol's list and wakes the sender, so the order path never waits for Kafka.
Unlike depth nothing is conflated: each trade counts for the volume traded at its price. Once
woken, the sender lingers up to :data:`LINGER_S` (or until a symbol has :data:`MAX_BATCH`
trades waiting) and publishes the trades of a symbol as one record (in order, at most
:data:`MAX_BATCH` a record): a busy tape costs a signature per linger, not per trade, and a
hub that rebuilds the session's tape on start verifies that many fewer records.

Record (key = symbol, UTF-8 JSON; prices are decimal strings, times the venue's)::

    {"v": 1, "symbol": "AAPL",
     "trades": [{"price": "229.86", "size": 100, "ts": "2026-11-24T15:00:00.123000+00:00",
                 "venue_volume": 1250300}, ...]}

``venue_volume`` (the symbol's session volume at the venue after that trade) is present when
the broker reports it; readers use it to count a trade once however many writers or
redeliveries bring it. The producer is the hot path's
:class:`~bus.signed_records.SigningProducer`: the record carries its ``proof``
(:mod:`trading.record_signing`), and the API believes no trade the hot path did not sign.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from datetime import UTC
from typing import Any

from brokers.base import Trade
from hotpath.ports import EventProducer

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
MAX_BATCH = 500
"""Trades per record at most (a record stays well under Kafka's default size limit)."""
LINGER_S = 0.015
"""How long the first waiting trade may wait for others to share its record: short next to what
a trader reads off a tape, long enough that a busy symbol sends tens of trades a record."""
MAX_WAITING = 100_000
"""Trades of a symbol held while Kafka does not take them; beyond it the oldest are dropped
(counted in ``lost``), so an outage costs trades, never the hot path's memory."""


def trade_dict(trade: Trade) -> dict[str, Any]:
    out: dict[str, Any] = {
        "price": str(trade.price),
        "size": trade.size,
        "ts": trade.time.astimezone(UTC).isoformat(),
    }
    if trade.venue_volume is not None:
        out["venue_volume"] = trade.venue_volume
    return out


def encode(symbol: str, trades: list[Trade]) -> bytes:
    record = {"v": SCHEMA_VERSION, "symbol": symbol, "trades": [trade_dict(t) for t in trades]}
    return json.dumps(record, separators=(",", ":")).encode()


class TradePublisher:
    def __init__(self, producer: EventProducer, topic: str) -> None:
        self._producer = producer
        self._topic = topic
        self._pending: dict[str, deque[Trade]] = {}
        self._wake = asyncio.Event()
        self._full = asyncio.Event()
        """A symbol has a whole record waiting: the linger ends early."""
        self.published = 0
        """Trades handed to the producer."""
        self.lost = 0
        """Trades whose record the producer refused, or dropped while too many waited (logged)."""

    def on_trade(self, trade: Trade) -> None:
        waiting = self._pending.get(trade.symbol)
        if waiting is None:
            waiting = self._pending[trade.symbol] = deque(maxlen=MAX_WAITING)
        elif len(waiting) == MAX_WAITING:  # the append drops the oldest
            if not self.lost:
                log.error("%s is not taking trades; the oldest waiting are dropped", self._topic)
            self.lost += 1
        waiting.append(trade)
        if len(waiting) >= MAX_BATCH:
            self._full.set()
        self._wake.set()

    async def _linger(self) -> None:
        if not self._full.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), LINGER_S)
        self._full.clear()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            await self._linger()
            self._wake.clear()
            batch, self._pending = self._pending, {}
            for symbol, waiting in batch.items():
                trades = list(waiting)
                for start in range(0, len(trades), MAX_BATCH):
                    chunk = trades[start : start + MAX_BATCH]
                    try:
                        await self._producer.send(self._topic, encode(symbol, chunk), key=symbol.encode())
                        self.published += len(chunk)
                    except Exception:
                        self.lost += len(chunk)
                        log.exception("%d trades of %s not published", len(chunk), symbol)
