"""Every price an order can fill at, given the touch, and the worst of them for each limit.

The floor sizes and risk-checks an order before the venue sees it, so it bounds every fill the
order can get rather than guessing one. With ``A`` the ask and ``B`` the bid (the touch), an
order fills somewhere in a range ``[low, high]``:

===============================  ===================================  ===================================
order type (as sent)             BUY                                  SELL
===============================  ===================================  ===================================
MKT                              ``A``                                ``B``
LMT at ``L``                     ``[min(L, A), L]``                   ``[L, max(L, B)]``
STP at ``T``                     ``max(T, A)``                        ``min(T, B)``
STP_LMT at ``T``, ``L``          ``[min(L, max(T, A)), L]``           ``[L, max(L, min(T, B))]``
TRAIL                            a STP at the stop actually sent      a STP at the stop actually sent
MKT entry, protective ``P``      ``[A, P]``: a LMT at ``P``           ``[P, B]``: a LMT at ``P``
STP entry at ``T``, ``P``        a STP_LMT at ``T``, ``P``            a STP_LMT at ``T``, ``P``
TRAIL entry, protective ``P``    a STP_LMT at the stop sent, ``P``    a STP_LMT at the stop sent, ``P``
===============================  ===================================  ===================================

An *entry* of type MKT, STP or TRAIL never goes out unbounded: it is sent with a protective
limit ``P``, the collar past the price it goes live at (:mod:`trading.protective_limits`), and
takes the range of the LMT or STP_LMT it is sent as. The unbounded rows (MKT, STP, TRAIL) are
those of exits, which are sent as signed and are exempt from the limits a bound serves
(:func:`trading.risk.check_order`).

Why each:

* A limit *through* the market (a BUY at or above the ask, a SELL at or below the bid) takes the
  touch first and, when it is larger than the touch, the book behind it up to its limit: any
  price from the touch to the limit. A SELL LMT 10.00 with the bid at 200 fills at 200, not 10.
* A limit *away from* the market rests, and a resting order trades at its own price: ``L``.
* A stop becomes a market order when the market reaches its trigger: it fills at the trigger,
  or at the touch when the market is already through it (a BUY stop below the ask fills at
  the ask at once).
* A stop-limit becomes a limit at ``L`` at that same moment, so it fills like a LMT whose touch
  is ``max(T, A)`` (BUY) or ``min(T, B)`` (SELL).
* A TRAIL goes to the broker as a STP at its initial stop (``hotpath.exit_manager``): the
  command's ``stop_price``, else one trail from the touch on the tick grid away from it
  (:meth:`trading.trailing.TrailingStop.candidate`). It is sized at that very stop, computed
  before sizing; the Exit Manager only ever moves it toward the market, to a better fill. A
  TRAIL entry goes as a STP_LMT at that stop, and its limit moves with the stop.
* A market order, and a stop once triggered, walk the book beyond the touch for as long as they
  have shares left: the single price in their rows is only where they start. That is why an
  entry of these types is sent with a protective limit and sized at it (the last rows): every
  share then fills between the touch and the limit, whatever the book holds behind the touch.
  An exit keeps its type and its unbounded fill; only position and exposure speak about it,
  and they let a reducing order through.

Without a quote, a limit is taken at ``L``, a stop at ``T``, a stop-limit at
``[min(L, T), L]`` (BUY) or ``[L, max(L, T)]`` (SELL), and a market order (or a TRAIL with no
stop) has no price at all: :func:`fill_range` returns None and the order is refused.

Which end is worst, for each limit (written once here; the sizer and the risk gate read it):

* Notional (Max Trade Size, Kelly dollars, gross exposure) grows with the price: ``high``,
  whichever the side.
* Loss to the stop: a BUY loses ``fill - stop``, worst at ``high``; a SELL loses
  ``stop - fill``, worst at ``low``.
* The stop must lie on the losing side of *every* price in the range: below ``low`` for a BUY,
  above ``high`` for a SELL. Otherwise the order is refused as :data:`STOP_WRONG_SIDE`: at some
  fill the stop would sit in profit, and the loss it claims to bound is not bounded.

``q x price`` and ``q x |price - stop|`` are monotone in the price over a range the stop is
outside of, so a quantity within the limits at these ends is within them at every price of
the range.

Rounding: none here. Every price is the command's, the quote's, the trailing stop, which
:mod:`trading.trailing` has already put on the tick grid away from the price (so its distance
is never less than the trail), or the protective limit, which
:mod:`trading.protective_limits` puts on the grid away from the touch; ranges are exact
Decimals. The only rounding is the sizer's
floor to whole shares (:mod:`trading.sizing`), which keeps ``q x high <= Max Trade Size`` and
``q x worst loss <= Max Dollar Risk`` exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from trading.commands import OrderType, Side

STOP_WRONG_SIDE = "risk.stop_wrong_side"
"""The stop is not strictly on the losing side of every price the order can fill at."""


@dataclass(frozen=True)
class FillRange:
    """The prices an order can fill at: ``low <= high``, both positive."""

    low: Decimal
    high: Decimal

    @classmethod
    def at(cls, price: Decimal) -> FillRange:
        """A single price (a market order at the touch, a resting limit)."""
        return cls(price, price)

    @property
    def notional_price(self) -> Decimal:
        """The worst price for notional: the highest."""
        return self.high

    def loss_price(self, side: Side) -> Decimal:
        """The worst price for the loss to the stop: the highest for a BUY, the lowest for a SELL."""
        return self.high if side is Side.BUY else self.low

    def stop_on_losing_side(self, side: Side, stop: Decimal) -> bool:
        """True when ``stop`` is strictly below every fill of a BUY (above every fill of a SELL)."""
        return stop < self.low if side is Side.BUY else stop > self.high

    def loss_per_share(self, side: Side, stop: Decimal) -> Decimal:
        """The worst loss per share at ``stop`` (positive when the stop is on the losing side)."""
        return (self.loss_price(side) - stop) * side.sign


def fill_range(
    side: Side,
    order_type: OrderType | None,
    *,
    limit: Decimal | None,
    stop: Decimal | None,
    touch: Decimal | None,
    protective_limit: Decimal | None = None,
) -> FillRange | None:
    """The range of the module docstring. ``touch`` is the ask for a BUY, the bid for a SELL;
    ``stop`` is the trigger (for a TRAIL, the initial stop it is sent with). ``order_type``
    None (an iceberg parent) reads as LMT when ``limit`` is given, else MKT.
    ``protective_limit``: the limit a MKT, STP or TRAIL is sent with
    (:func:`trading.protective_limits.protective_limit`); the order is then the LMT or STP_LMT
    it goes out as."""
    if order_type is None:
        order_type = OrderType.LMT if limit is not None else OrderType.MKT
    if protective_limit is not None and order_type in (OrderType.MKT, OrderType.STP, OrderType.TRAIL):
        limit = protective_limit
        order_type = OrderType.LMT if order_type is OrderType.MKT else OrderType.STP_LMT
    if order_type in (OrderType.STP, OrderType.STP_LMT, OrderType.TRAIL):
        if stop is None:
            return None  # a TRAIL whose initial stop could not be computed: no quote
        # The touch the order meets once it is live: the trigger, or the market if already through.
        live = stop if touch is None else (max(stop, touch) if side is Side.BUY else min(stop, touch))
        if order_type is OrderType.STP_LMT:
            assert limit is not None
            return _limit_range(side, limit, live)
        return FillRange.at(live)
    if order_type is OrderType.LMT:
        assert limit is not None
        return FillRange.at(limit) if touch is None else _limit_range(side, limit, touch)
    return None if touch is None else FillRange.at(touch)


def _limit_range(side: Side, limit: Decimal, touch: Decimal) -> FillRange:
    """A limit meeting ``touch``: from the touch to the limit when through the market, else the
    limit (it rests)."""
    if side is Side.BUY:
        return FillRange(min(limit, touch), limit)
    return FillRange(limit, max(limit, touch))
