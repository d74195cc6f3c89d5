"""The L2 book a subscriber sees: full snapshots from ``market.depth`` in, a snapshot and then
sequenced deltas out (pure).

The hot path publishes each symbol's whole top of book on every change (``hotpath/depth.py``;
prices are decimal strings, best level first). A subscriber is sent one
:class:`BookSnapshot`, then :class:`BookDelta` s carrying only the levels that changed, a level
that left the book sent with size 0. Every state of a symbol's book has a ``sequence`` (per
symbol, counting up from 1 in one process); a delta names the sequence it applies on top of
(``previous_sequence``) and the one it brings the book to, so a client that holds sequence
*s* applies a delta only when its ``previous_sequence`` is *s*, and resyncs otherwise
(:class:`PriceBook` does exactly that). A delta may span many states (a slow subscriber's
updates are merged): it is still gap-free for that subscriber.

A record that follows a gap in the broker's feed (``"gap": true``: a failover, a reconnect, the
gateway's market data lost) may differ from the book before it by any number of missed
updates: it takes a new sequence even if nothing changed, and every subscriber is sent a fresh
snapshot marked ``gap`` in place of a delta, so each reader learns that its stream had a hole.

A subscriber asks for ``depth`` levels a side; its book is the top ``depth`` levels of each
side, so a level pushed out of its top ``depth`` is sent as removed and one that moves in is
sent with its size.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

Level = tuple[Decimal, int]
"""``(price, size)``; in a delta, size 0 means the level is gone."""

BID = "bids"
ASK = "asks"
MAX_LEVELS = 100
"""Levels a side a record may carry (the hot path publishes the rows it subscribed, 10 by
default): a bound that holds whoever wrote the record."""
MAX_SYMBOL_CHARS = 32


class DepthRecordError(ValueError):
    """A ``market.depth`` record that cannot be read; the message names the field."""


class SequenceGap(ValueError):
    """A delta that does not follow the book's sequence: the client must resync."""


@dataclass(frozen=True)
class DepthUpdate:
    """One ``market.depth`` record: a symbol's whole top of book at the venue's time."""

    symbol: str
    venue_ts: datetime
    bids: tuple[Level, ...]
    """Best (highest) first."""
    asks: tuple[Level, ...]
    """Best (lowest) first."""
    gap: bool = False
    """The broker's feed had a gap before this book (``hotpath/depth.py``)."""


@dataclass(frozen=True)
class BookSnapshot:
    symbol: str
    sequence: int
    venue_ts: datetime
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    gap: bool = False
    """Sent in place of a delta because the feed had a gap: replace the book held."""


@dataclass(frozen=True)
class BookDelta:
    symbol: str
    sequence: int
    previous_sequence: int
    venue_ts: datetime
    """The venue's time of the newest update the delta includes."""
    bids: tuple[Level, ...]
    """Changed levels, best first; size 0: removed."""
    asks: tuple[Level, ...]


def parse_depth_record(raw: bytes | str) -> DepthUpdate:
    """A ``market.depth`` record (``hotpath/depth.py``); :class:`DepthRecordError` otherwise."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise DepthRecordError(f"not JSON: {type(exc).__name__}: {exc}") from None
    if not isinstance(data, dict):
        raise DepthRecordError("a depth record is a JSON object")
    return depth_update(data)


def depth_update(data: Mapping[str, Any]) -> DepthUpdate:
    """A decoded ``market.depth`` record (a verified one is already a dict: not parsed twice);
    :class:`DepthRecordError` otherwise. Keys it does not know (the ``proof``) are ignored."""
    if data.get("v") != 1:
        raise DepthRecordError(f"v must be 1, got {data.get('v')!r}")
    symbol = data.get("symbol")
    if not isinstance(symbol, str) or not 0 < len(symbol) <= MAX_SYMBOL_CHARS:
        raise DepthRecordError(f"symbol must be a string of 1 to {MAX_SYMBOL_CHARS} characters")
    try:
        venue_ts = datetime.fromisoformat(data["ts"])
    except (KeyError, TypeError, ValueError):
        raise DepthRecordError(f"ts must be ISO 8601, got {data.get('ts')!r}") from None
    if venue_ts.tzinfo is None:
        raise DepthRecordError("ts must carry a timezone")
    bids = _side(data, BID)
    asks = _side(data, ASK)
    if not _best_first(bids, highest=True):
        raise DepthRecordError("bids must be distinct prices, best (highest) first")
    if not _best_first(asks, highest=False):
        raise DepthRecordError("asks must be distinct prices, best (lowest) first")
    gap = data.get("gap", False)
    if not isinstance(gap, bool):
        raise DepthRecordError(f"gap must be true or false, got {gap!r}")
    return DepthUpdate(symbol, venue_ts, bids, asks, gap)


def _best_first(levels: Sequence[Level], *, highest: bool) -> bool:
    prices = [price for price, _ in levels]
    return all((a > b) if highest else (a < b) for a, b in zip(prices, prices[1:], strict=False))


def _side(data: Mapping[str, Any], side: str) -> tuple[Level, ...]:
    raw = data.get(side)
    if not isinstance(raw, list):
        raise DepthRecordError(f"{side} must be a list")
    if len(raw) > MAX_LEVELS:
        raise DepthRecordError(f"{side} holds {len(raw)} levels; at most {MAX_LEVELS}")
    levels: list[Level] = []
    for i, level in enumerate(raw):
        if not isinstance(level, dict) or not isinstance(level.get("price"), str):
            raise DepthRecordError(f"{side}[{i}].price must be a decimal string")
        try:
            price = Decimal(level["price"])
        except InvalidOperation:
            raise DepthRecordError(f"{side}[{i}].price is not a decimal: {level['price']!r}") from None
        size = level.get("size")
        if not price.is_finite() or price <= 0:
            raise DepthRecordError(f"{side}[{i}].price must be positive, got {level['price']!r}")
        if type(size) is not int or size <= 0:
            raise DepthRecordError(f"{side}[{i}].size must be a positive integer, got {size!r}")
        levels.append((price, size))
    return tuple(levels)


def changed_levels(old: Sequence[Level], new: Sequence[Level], *, bids: bool) -> tuple[Level, ...]:
    """The levels of ``new`` that differ from ``old``, and ``old``'s missing from ``new`` with
    size 0; best first (``bids``: highest price first)."""
    before = dict(old)
    after = dict(new)
    changes = [(p, s) for p, s in after.items() if before.get(p) != s]
    changes += [(p, 0) for p in before if p not in after]
    return tuple(sorted(changes, key=lambda level: level[0], reverse=bids))


class SymbolBook:
    """One symbol's current book and its sequence, as the hub holds it."""

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.sequence = 0
        self.venue_ts: datetime | None = None
        self.bids: tuple[Level, ...] = ()
        self.asks: tuple[Level, ...] = ()
        # Subscribers in step with each other ask for the same snapshot and the same delta:
        # computed once per state, not once per subscriber.
        self._snapshots: dict[int, BookSnapshot] = {}
        self._deltas: dict[tuple[int, int], BookDelta] = {}

    def update(self, depth: DepthUpdate) -> bool:
        """Take ``depth`` as the book's new state; True (and a new sequence) if anything changed
        or the record follows a gap. A record older than the book's (Kafka redelivery, a
        replayed tail) is ignored."""
        if depth.symbol != self.symbol:
            raise ValueError(f"a {depth.symbol} record for the {self.symbol} book")
        if self.venue_ts is not None and depth.venue_ts < self.venue_ts:
            return False
        self.venue_ts = depth.venue_ts
        if depth.bids == self.bids and depth.asks == self.asks and not depth.gap:
            return False
        self.bids, self.asks = depth.bids, depth.asks
        self.sequence += 1
        self._snapshots.clear()
        self._deltas.clear()
        return True

    def snapshot(self, depth: int) -> BookSnapshot | None:
        """The top ``depth`` levels a side; None before the first record."""
        if self.venue_ts is None:
            return None
        snapshot = self._snapshots.get(depth)
        if snapshot is None:
            snapshot = BookSnapshot(
                self.symbol, self.sequence, self.venue_ts, self.bids[:depth], self.asks[:depth]
            )
            self._snapshots[depth] = snapshot
        return snapshot

    def delta_since(self, sent: BookSnapshot, depth: int) -> BookDelta:
        """From ``sent`` (a snapshot of this book at ``depth``) to the book now, at ``depth``."""
        key = (sent.sequence, depth)
        delta = self._deltas.get(key)
        if delta is None:
            now = self.snapshot(depth)
            assert now is not None
            delta = self._deltas[key] = delta_between(sent, now)
        return delta


def delta_between(old: BookSnapshot, new: BookSnapshot) -> BookDelta:
    """What turns the client's book ``old`` into ``new`` (same symbol and depth)."""
    return BookDelta(
        symbol=new.symbol,
        sequence=new.sequence,
        previous_sequence=old.sequence,
        venue_ts=new.venue_ts,
        bids=changed_levels(old.bids, new.bids, bids=True),
        asks=changed_levels(old.asks, new.asks, bids=False),
    )


class PriceBook:
    """A client's price-keyed book: a snapshot, then deltas that must link by sequence."""

    def __init__(self, snapshot: BookSnapshot) -> None:
        self.symbol = snapshot.symbol
        self.sequence = snapshot.sequence
        self.venue_ts = snapshot.venue_ts
        self.bids = dict(snapshot.bids)
        self.asks = dict(snapshot.asks)

    def apply(self, delta: BookDelta) -> None:
        """Merge ``delta``; :class:`SequenceGap` (book unchanged) if it does not follow on."""
        if delta.symbol != self.symbol or delta.previous_sequence != self.sequence:
            raise SequenceGap(
                f"{delta.symbol} delta {delta.previous_sequence}->{delta.sequence} does not follow "
                f"{self.symbol} at {self.sequence}: resubscribe for a snapshot"
            )
        for side, changes in ((self.bids, delta.bids), (self.asks, delta.asks)):
            for price, size in changes:
                if size == 0:
                    side.pop(price, None)
                else:
                    side[price] = size
        self.sequence = delta.sequence
        self.venue_ts = delta.venue_ts

    def levels(self) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        """(bids, asks), best first."""
        return (
            tuple(sorted(self.bids.items(), reverse=True)),
            tuple(sorted(self.asks.items())),
        )
