"""What a broker's market-data subscriptions stream: L1 quotes, L2 books and the tape's trades,
each passed to the handler given to the :class:`~brokers.base.Broker`'s ``subscribe_*`` call,
and the handle that ends a subscription.

``recv_ns`` is the ``time.perf_counter_ns()`` when the socket data arrived, comparable only
within one process; prices are :class:`~decimal.Decimal`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

__all__ = ["DepthLevel", "DepthSnapshot", "Quote", "Subscription", "Trade"]


@dataclass(frozen=True)
class Quote:
    """Level 1 after a tick batch. Missing sides are None. ``recv_ns`` is the
    ``time.perf_counter_ns()`` when the socket data carrying the tick arrived."""

    symbol: str
    bid: Decimal | None
    bid_size: int | None
    ask: Decimal | None
    ask_size: int | None
    last: Decimal | None
    last_size: int | None
    time: datetime
    recv_ns: int


@dataclass(frozen=True)
class DepthLevel:
    price: Decimal
    size: int


@dataclass(frozen=True)
class DepthSnapshot:
    """The whole L2 book of a symbol after a depth update batch, best level first."""

    symbol: str
    bids: tuple[DepthLevel, ...]
    asks: tuple[DepthLevel, ...]
    time: datetime
    recv_ns: int
    gap: bool = False
    """The feed had a gap before this book (the session carrying it changed, the gateway lost
    its market data, or reset the book): updates may have been missed, so whoever kept a copy
    replaces it with this one and tells its own readers."""


@dataclass(frozen=True)
class Trade:
    """One trade on the venue's tape (anyone's, not only ours), in the venue's order."""

    symbol: str
    price: Decimal
    size: int
    time: datetime
    """The venue's time of the trade."""
    venue_volume: int | None = None
    """The symbol's session volume at the venue after this trade, when the broker says
    (IB's RTVolume does): it grows with every trade, so it tells a trade seen twice from a
    new one, and a jump bigger than ``size`` tells trades were missed."""


@dataclass(frozen=True)
class Subscription:
    """Handle of a market-data subscription; pass it to :meth:`~brokers.base.Broker.unsubscribe`."""

    kind: str
    """``"quotes"``, ``"depth"`` or ``"trades"``."""
    symbol: str
    key: int = field(default=0)
