"""L2 depth from the broker session to ``market.depth``, for the HUD.

The broker calls :meth:`DepthPublisher.on_depth` on the event loop for every book update; it
only keeps the newest snapshot per symbol and wakes the sender. The sender publishes whatever
is newest when it gets to run, at most one record a symbol every ``interval_s`` (the setting
``FLOOR_DEPTH_INTERVAL_MS``: 20 ms on a real Kafka, 100 ms on the embedded Tansu; books that
came meanwhile are merged into the newest, never a backlog), so the order path never waits for
Kafka and the topic grows at a bounded rate whatever the venue's.

Why bounded: every record stays on the topic, and the embedded Tansu's fetch work grows with
the records it holds. Unpaced, a venue changing a book 1,000 times a second made ~400 records
a second; within a minute the API's fetches of ``market.depth`` cost Tansu a whole core and
returned a record or two a second, and the HUD's book fell tens of seconds behind for good
(``python -m bench.hud_render --seconds 30``, its second phase). A book is a whole state and
the HUD paints at most 60 a second, so books faster than that were never shown anyway. Pacing
slows the growth, it does not end it: Tansu keeps every record of every topic and lists every
batch of a partition on each fetch that finds data, so a reader's cost grows with the rate
times the topic's length. At 50 books a second per symbol the HUD's API fell behind again after
about four minutes of trading, hence the embedded broker's slower default.

Record (key = symbol, UTF-8 JSON; prices are decimal strings)::

    {"v": 1, "symbol": "AAPL", "ts": "2026-11-24T05:00:00.123456+00:00",
     "bids": [{"price": "229.86", "size": 300}, ...], "asks": [...]}

Best level first on each side. The first book after a gap in the broker's feed (a failover, a
reconnect, the gateway's market data lost or its book reset) carries ``"gap": true``: readers
replace what they hold and tell their own readers (the API's book subscribers get a fresh
snapshot marked as following a gap). A gap is never conflated away: the book published next
carries it, whatever books came in between. The producer is the hot path's
:class:`~bus.signed_records.SigningProducer`: the record goes out with its ``proof``
(:mod:`trading.record_signing`), since the desk checks a trader's arming limits at these
prices and the API believes no book the hot path did not sign.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC
from typing import Any

from brokers.base import DepthSnapshot
from hotpath.ports import EventProducer

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
MIN_INTERVAL_S = 0.02
"""The default ``interval_s`` (a real Kafka's: 50 records a second per symbol at most)."""


def to_dict(snapshot: DepthSnapshot, gap: bool = False) -> dict[str, Any]:
    record: dict[str, Any] = {
        "v": SCHEMA_VERSION,
        "symbol": snapshot.symbol,
        "ts": snapshot.time.astimezone(UTC).isoformat(),
        "bids": [{"price": str(level.price), "size": level.size} for level in snapshot.bids],
        "asks": [{"price": str(level.price), "size": level.size} for level in snapshot.asks],
    }
    if gap or snapshot.gap:
        record["gap"] = True
    return record


def encode(snapshot: DepthSnapshot, gap: bool = False) -> bytes:
    return json.dumps(to_dict(snapshot, gap), separators=(",", ":")).encode()


class DepthPublisher:
    def __init__(self, producer: EventProducer, topic: str, interval_s: float = MIN_INTERVAL_S) -> None:
        self._producer = producer
        self._topic = topic
        self._interval_s = interval_s
        self._latest: dict[str, DepthSnapshot] = {}
        self._gaps: set[str] = set()
        """Symbols whose next record must say it follows a gap."""
        self._wake = asyncio.Event()
        self.published = 0

    def on_depth(self, snapshot: DepthSnapshot) -> None:
        self._latest[snapshot.symbol] = snapshot
        if snapshot.gap:
            self._gaps.add(snapshot.symbol)
        self._wake.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            began = loop.time()
            self._wake.clear()
            batch, self._latest = self._latest, {}
            for symbol, snapshot in batch.items():
                gap = symbol in self._gaps
                self._gaps.discard(symbol)
                try:
                    await self._producer.send(self._topic, encode(snapshot, gap), key=symbol.encode())
                    self.published += 1
                except Exception:
                    if gap:
                        self._gaps.add(symbol)  # the next book of the symbol carries it
                    log.exception("depth of %s not published", symbol)
            # Books that come meanwhile replace each other in _latest: the newest goes next.
            await asyncio.sleep(max(0.0, began + self._interval_s - loop.time()))
