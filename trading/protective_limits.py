"""Protective limits: the price bound the floor puts on an entry that would otherwise fill at
whatever the book offers.

A market order, and a stop once triggered, take the touch and then walk the book behind it for
as long as they have shares left. Sized at the touch, such an entry can fill past Max Trade Size
or Max Dollar Risk by exactly that walk, and nothing the floor could check beforehand bounds it.
So the floor never sends an *entry* unbounded:

================  ==========================================================================
signed as         sent to the broker as
================  ==========================================================================
``MKT``           ``LMT`` at the touch moved by the collar (a marketable limit)
``STP`` at ``T``  ``STP LMT`` at ``T``, its limit the collar past the price the order goes live
                  at: the trigger, or the touch when the market is already through it
``TRAIL``         ``STP LMT`` at its initial stop (:mod:`hotpath.exit_manager` trails it), its
                  limit the collar past the stop (or past the touch, when through); the Exit
                  Manager moves the limit with the stop, keeping the distance between them
================  ==========================================================================

``LMT`` and ``STP_LMT`` entries carry their own limit and are sent as signed. The order is
sized and risk-checked at the protective limit (:mod:`trading.fill_prices`), so whatever the
book does, every share fills within the profile's limits; what the book cannot give within
the limit rests there (an entry unfilled is no loss).

The collar is a distance in basis points of the price (``FLOOR_MARKET_COLLAR_BPS``, default
:data:`DEFAULT_COLLAR_BPS`): wide enough to take the first levels of the book behind the touch,
narrow enough that the sizing it forces costs little (5 bps of a $140 stock is 7 cents; the
quantity is about 0.05% smaller than at the touch).

Rounding (on the symbol's tick grid, exact Decimals): the limit is rounded *away from the
touch*, up for a BUY and down for a SELL, so it is never inside the collar and an order at it
is always marketable (a collar of 0 gives the touch itself). A SELL's limit never goes below one
tick: a price of zero is no limit.

Exits are not bounded: a reduce-only order must get the position out, and a limit the market
has gapped through would leave it open. They are exempt from the limits a bound serves (Max
Trade Size and Max Dollar Risk, :mod:`trading.risk`). The Exit Manager's protective stops on a
position (a ``TRAIL`` exit) therefore stay stop-*market* orders for the same reason.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from trading.commands import OrderType, Side
from trading.fill_prices import FillRange, fill_range

DEFAULT_COLLAR_BPS = Decimal(5)
"""The default collar: 5 basis points of the price past the touch (or the trigger)."""

BOUNDED_TYPES = frozenset({OrderType.MKT, OrderType.STP, OrderType.TRAIL})
"""The order types an entry of which is sent with a protective limit."""

DETAIL_KEY = "protective_limit"
"""Where an accepted entry's ledger detail records the limit the broker got."""


class CollarInvalid(ValueError):
    """A collar outside ``[0, 10000)`` basis points (a SELL limit at or below zero)."""


def check_collar(collar_bps: Decimal) -> Decimal:
    """``collar_bps`` if it is a usable collar, else :class:`CollarInvalid`."""
    if not collar_bps.is_finite() or not 0 <= collar_bps < 10_000:
        raise CollarInvalid(f"the market collar must be in [0, 10000) basis points, got {collar_bps}")
    return collar_bps


def collar_price(side: Side, price: Decimal, collar_bps: Decimal, tick: Decimal) -> Decimal:
    """``price`` moved ``collar_bps`` basis points against the order (up for a BUY, down for a
    SELL), rounded on the ``tick`` grid away from ``price`` (see the module's rounding rule)."""
    check_collar(collar_bps)
    if tick <= 0:
        raise ValueError(f"tick must be positive, got {tick}")
    moved = price * (10_000 + side.sign * collar_bps) / 10_000
    rounding = ROUND_CEILING if side is Side.BUY else ROUND_FLOOR
    limit = (moved / tick).to_integral_value(rounding=rounding) * tick
    return max(limit, tick)


def protective_limit(
    side: Side,
    order_type: OrderType | None,
    *,
    stop: Decimal | None,
    touch: Decimal | None,
    collar_bps: Decimal,
    tick: Decimal,
) -> Decimal | None:
    """The limit an entry of ``order_type`` is sent with (see the module's table), or None when
    it needs none (a LMT, a STP_LMT) or has no price to take it from (a MKT without a quote, a
    TRAIL without a stop: the order is refused for having no price anyway). ``touch`` is the
    ask for a BUY, the bid for a SELL; ``stop`` the trigger (a TRAIL's initial stop)."""
    if order_type not in BOUNDED_TYPES:
        return None
    if order_type is OrderType.MKT:
        live = touch
    elif stop is None:
        return None
    elif touch is None:
        live = stop
    else:
        # The price the order goes live at: the trigger, or the market when already through it.
        live = max(stop, touch) if side is Side.BUY else min(stop, touch)
    return None if live is None else collar_price(side, live, collar_bps, tick)


def sent_type(order_type: OrderType | None, limit: Decimal | None) -> OrderType | None:
    """The type the broker gets for ``order_type`` sent with protective ``limit`` (None: as
    signed): a MKT becomes a LMT, a STP or a TRAIL a STP_LMT."""
    if limit is None or order_type not in BOUNDED_TYPES:
        return order_type
    return OrderType.LMT if order_type is OrderType.MKT else OrderType.STP_LMT


def limit_offset(initial_stop: Decimal, initial_limit: Decimal) -> Decimal:
    """How far a trailing entry's limit sits from its stop: the Exit Manager keeps the limit this
    far from the stop as the stop moves (positive for a BUY, negative for a SELL). A BUY entry's
    stop only falls and its limit with it; a SELL entry's only rises. Either way the loss to the
    edge's stop at the worst fill only shrinks, and so does a BUY's notional (a SELL's, at its
    stop, is held by the stop's bound, :func:`trading.trailing.entry_bound`): the sizing done
    at the initial limit still holds."""
    return initial_limit - initial_stop


def entry_fill_range(
    side: Side,
    order_type: OrderType | None,
    *,
    limit: Decimal | None,
    stop: Decimal | None,
    touch: Decimal | None,
    collar_bps: Decimal,
    tick: Decimal,
) -> FillRange | None:
    """Every price an *entry* can fill at as the floor sends it: with its protective limit when
    it gets one (:func:`trading.fill_prices.fill_range` of the LMT or STP_LMT it goes out as).
    What a ticket or a grant must be checked over to agree with the hot path."""
    bound = protective_limit(side, order_type, stop=stop, touch=touch, collar_bps=collar_bps, tick=tick)
    return fill_range(side, order_type, limit=limit, stop=stop, touch=touch, protective_limit=bound)
