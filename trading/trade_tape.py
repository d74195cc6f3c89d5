"""The tape a subscriber sees: trades from ``market.trades`` in, per symbol the last trade, the
session's volume and the volume traded at each price (pure).

The hot path publishes every trade at the venue (``hotpath/trades.py``; several of a symbol
in one record under load, in order). :class:`SymbolTape` adds them up for the current
session, which is the UTC date of the trade's venue time (the venue's session open is not
known to the floor): the first trade of a new date starts a new session, and a trade of an
earlier date than the tape's is not counted (``stale``).

A trade is counted once however many records bring it: a second hot path publishing the same
venue, or a record read twice, repeats ``venue_volume`` (the symbol's session volume at the
venue after the trade, which grows with every trade), and a trade covers the venue's volume from
``venue_volume - size`` (exclusive) to ``venue_volume``. One above the highest counted is new.
One not above it, and whose time is not after the newest counted, is a repeat (``duplicate``)
unless it covers part of a hole (below); one with a lower volume but a later time means the
venue's count started again (a new session or a restarted venue) and is counted.

``venue_volume`` also reveals every hole: a counted trade whose volume is above the highest
counted by more than its own size (or, as the session's first or after the venue's count started
again, above its size) follows trades the tape never got (dropped under backpressure, traded
while the hot path had no broker session, refused by the producer, or before the hot path
subscribed). The tape is then ``complete = False``: its volume is the sum of what it counted,
the venue's own figure is ``venue_volume``. A hole may yet be filled. Hot paths of a group each
publish the venue's trades, and one that subscribes while another's record is still lingering
reaches the tape first with a later trade; the trades the other brings then fall inside the
hole and are counted when they arrive, out of the venue's order (their ``venue_volume`` says
where they belong; the tape's ``last`` stays the newest at the venue). The tape is complete
again once no hole is left. The newest :data:`MAX_GAPS` holes are remembered. A trade without
``venue_volume`` can be neither deduplicated nor checked for a hole before it; it is counted,
and the tape is not complete either. (The hot path sends the figure for every trade of the
paper venue and of IB's RTVolume; only a broker reporting none would lead here.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

MAX_SYMBOL_CHARS = 32
MAX_TRADES = 1000
"""Trades a record may carry (the hot path writes at most 500)."""
MAX_GAPS = 256
"""Holes a session's tape remembers for late trades to fill; past it the oldest is given up."""
MAX_SIZE = 2**31 - 1
"""A trade's size travels as a GraphQL ``Int``."""


class TradeRecordError(ValueError):
    """A ``market.trades`` record that cannot be read; the message names the field."""


@dataclass(frozen=True)
class TapeTrade:
    """One trade as a ``market.trades`` record carries it."""

    symbol: str
    price: Decimal
    size: int
    venue_ts: datetime
    venue_volume: int | None = None


@dataclass(frozen=True, eq=False)
class CountedTrade:
    """A trade the tape counted, with the session's volume after it. Compared by identity:
    every subscriber in step is handed this very object."""

    symbol: str
    price: Decimal
    size: int
    venue_ts: datetime
    session_volume: int
    complete: bool = True
    """Every trade of the session up to this one was counted (see the module docstring)."""
    venue_volume: int | None = None
    """The venue's own session volume after this trade, when it reported one."""


@dataclass(frozen=True, eq=False)
class TapeSnapshot:
    symbol: str
    session: date | None
    """The UTC date the figures are of (None: no trade counted yet)."""
    last: CountedTrade | None
    session_volume: int
    volume_at_price: tuple[tuple[Decimal, int], ...]
    """``(price, volume)``, highest price first (as a ladder reads)."""
    complete: bool = True
    """No hole is known in the session's tape: ``session_volume`` is every trade's."""
    venue_volume: int | None = None
    """The venue's own session volume as last reported (None: not reported)."""


def session_of(ts: datetime) -> date:
    """The session a trade at ``ts`` belongs to: its UTC date."""
    return ts.astimezone(UTC).date()


def session_start(now: datetime) -> datetime:
    """When the session ``now`` is in began (UTC midnight): where a reader rebuilds a tape from."""
    return datetime.combine(session_of(now), time(0), tzinfo=UTC)


def trades_record(data: Mapping[str, Any]) -> tuple[TapeTrade, ...]:
    """The trades of a decoded ``market.trades`` record, in order; :class:`TradeRecordError`
    otherwise. Keys it does not know (the ``proof``) are ignored."""
    if data.get("v") != 1:
        raise TradeRecordError(f"v must be 1, got {data.get('v')!r}")
    symbol = data.get("symbol")
    if not isinstance(symbol, str) or not 0 < len(symbol) <= MAX_SYMBOL_CHARS:
        raise TradeRecordError(f"symbol must be a string of 1 to {MAX_SYMBOL_CHARS} characters")
    raw = data.get("trades")
    if not isinstance(raw, list) or not 0 < len(raw) <= MAX_TRADES:
        raise TradeRecordError(f"trades must be a list of 1 to {MAX_TRADES} trades")
    return tuple(_trade(symbol, i, item) for i, item in enumerate(raw))


def _trade(symbol: str, i: int, item: Any) -> TapeTrade:
    if not isinstance(item, dict) or not isinstance(item.get("price"), str):
        raise TradeRecordError(f"trades[{i}].price must be a decimal string")
    try:
        price = Decimal(item["price"])
    except InvalidOperation:
        raise TradeRecordError(f"trades[{i}].price is not a decimal: {item['price']!r}") from None
    if not price.is_finite() or price <= 0:
        raise TradeRecordError(f"trades[{i}].price must be positive, got {item['price']!r}")
    size = item.get("size")
    if type(size) is not int or not 0 < size <= MAX_SIZE:
        raise TradeRecordError(f"trades[{i}].size must be a positive integer, got {size!r}")
    try:
        venue_ts = datetime.fromisoformat(item["ts"])
    except (KeyError, TypeError, ValueError):
        raise TradeRecordError(f"trades[{i}].ts must be ISO 8601, got {item.get('ts')!r}") from None
    if venue_ts.tzinfo is None:
        raise TradeRecordError(f"trades[{i}].ts must carry a timezone")
    volume = item.get("venue_volume")
    if volume is not None and (type(volume) is not int or volume < size):
        raise TradeRecordError(f"trades[{i}].venue_volume must be an integer >= size, got {volume!r}")
    return TapeTrade(symbol, price, size, venue_ts.astimezone(UTC), volume)


@dataclass
class SymbolTape:
    """One symbol's tape this session (see the module docstring)."""

    symbol: str
    session: date | None = None
    last: CountedTrade | None = None
    volume: int = 0
    at_price: dict[Decimal, int] = field(default_factory=dict)
    duplicates: int = 0
    stale: int = 0
    complete: bool = True
    """No hole is known this session (see the module docstring)."""
    holes: int = 0
    """Holes seen (every session), and records that could not be judged (:meth:`hole`)."""
    _high: int | None = None
    """The highest ``venue_volume`` counted this session."""
    _gaps: list[list[int]] = field(default_factory=list)
    """The holes a late trade may still fill: ``[low, high]`` of the venue's volume, traded
    after ``low`` up to ``high`` and not counted, lowest first."""
    _lost: bool = False
    """Trades are missing that no late trade can make up (see :meth:`hole`)."""
    _snapshot: TapeSnapshot | None = None

    def add(self, trade: TapeTrade) -> tuple[CountedTrade | None, bool]:
        """Count ``trade``: the counted trade (None if it is a repeat or of an earlier session),
        and whether it started a new session (everything counted before is gone)."""
        session = session_of(trade.venue_ts)
        new_session = False
        if self.session is None or session > self.session:
            new_session = self.session is not None
            self._start(session)
        elif session < self.session:
            self.stale += 1
            return None, False
        volume = trade.venue_volume
        late = False
        if volume is not None and self._high is not None and volume <= self._high:
            if self.last is not None and trade.venue_ts <= self.last.venue_ts:
                late = self._fill(volume - trade.size, volume)
                if not late:
                    self.duplicates += 1
                    return None, new_session
            elif self._gaps:  # the venue counts again: the old count's holes stay unfilled
                self._gaps.clear()
                self._lost = True
        if volume is None:
            self._lost = True  # a repeat or a hole could not be told
        elif not late:
            before = self._high if self._high is not None and volume > self._high else 0
            if volume - before > trade.size:
                self._gap(before, volume - trade.size)
            self._high = volume
        self.complete = not self._lost and not self._gaps
        self.volume += trade.size
        self.at_price[trade.price] = self.at_price.get(trade.price, 0) + trade.size
        counted = CountedTrade(
            trade.symbol, trade.price, trade.size, trade.venue_ts, self.volume, self.complete,
            volume if late else self._high,
        )  # fmt: skip
        if not late:
            self.last = counted
        self._snapshot = None
        return counted, new_session

    def hole(self) -> None:
        """Trades of this session are known to be missing and cannot be told apart (a record
        that could be neither believed nor refused): the tape stays incomplete."""
        self.holes += 1
        self._lost = True
        self._set_complete(False)

    def _gap(self, low: int, high: int) -> None:
        """The venue's volumes ``low`` (exclusive) to ``high`` were traded and not counted."""
        self.holes += 1
        self._gaps.append([low, high])
        if len(self._gaps) > MAX_GAPS:
            self._gaps.pop(0)
            self._lost = True

    def _fill(self, low: int, high: int) -> bool:
        """Whether a trade covering the venue's volumes ``low`` (exclusive) to ``high`` belongs
        in a hole (then the hole shrinks by it) rather than repeating a counted trade."""
        for i, (start, end) in enumerate(self._gaps):
            if start <= low and high <= end:
                self._gaps[i : i + 1] = [g for g in ([start, low], [high, end]) if g[0] < g[1]]
                return True
        return False

    def _set_complete(self, complete: bool) -> None:
        if self.complete != complete:
            self.complete = complete
            self._snapshot = None

    def _start(self, session: date) -> None:
        self.session = session
        self.last = None
        self.volume = 0
        self.at_price = {}
        self.complete = True
        self._high = None
        self._gaps = []
        self._lost = False
        self._snapshot = None

    def snapshot(self, today: date | None = None) -> TapeSnapshot:
        """The tape now; empty if ``today`` is given and the tape's session is an earlier one
        (nothing traded yet today). The same object until the tape changes."""
        if today is not None and self.session is not None and self.session < today:
            return TapeSnapshot(self.symbol, today, None, 0, ())
        if self._snapshot is None:
            self._snapshot = TapeSnapshot(
                self.symbol,
                self.session,
                self.last,
                self.volume,
                tuple(sorted(self.at_price.items(), reverse=True)),
                self.complete,
                self._high,
            )
        return self._snapshot
