"""Whether an order is within a trader's arming grant, and what it needs when it is not.

Arming is one WebAuthn ceremony for many orders, within limits the trader chose: the
instruments, a maximum quantity and a maximum notional. The rule, checked on every execution:

* **An instrument outside the grant is refused outright** (:data:`SYMBOL_NOT_ARMED`, the
  ``GrantExceeded`` result). The trader narrowed the grant to these instruments on purpose;
  an order in another one is not a larger order of the kind they armed for, and a step-up
  would let one fingerprint widen what the trader said this session trades. Arm again with
  the instrument to trade it.
* **A larger order than the grant allows needs its own ceremony** (``StepUpRequired``): a
  quantity above the grant's maximum (:data:`OVER_QUANTITY`), or a notional above its maximum
  (:data:`OVER_NOTIONAL`). The trader confirms that very order with a step-up assertion over
  its bytes (:mod:`trading.step_up`).
* The notional is taken at a price that bounds every fill (:func:`worst_notional_price`). A
  BUY with a limit (LMT, STP_LMT) never pays more than its limit, book or no book. Every other
  order's worst fill is set by the market: a SELL limit below the bid fills at the bid (a SELL
  LMT at 0.01 is not a 0.01 order), a BUY stop at the ask once the market is through it, a
  market order at the far side. So those are priced at the far side of a *fresh* book
  (:func:`fresh_touch`: younger than the desk's maximum age, by its venue timestamp) with the
  floor's worst-price rule (:mod:`trading.fill_prices`). Without one the notional is unknown and
  a grant with a maximum notional cannot be shown to hold, so the order needs a step-up
  (:data:`NOTIONAL_UNKNOWN`): the trader confirms that very order, which is what arming could
  not vouch for. (Not ``GrantExceeded``: the order may well be within the grant, and a missing
  or stale book is no reason to forbid what the trader can confirm.)

A grant without a limit (None) does not limit that dimension.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from trading.commands import OrderType, Side
from trading.fill_prices import FillRange
from trading.protective_limits import DEFAULT_COLLAR_BPS, entry_fill_range
from trading.step_up import OrderTerms
from trading.symbols import tick_size

SYMBOL_NOT_ARMED = "grant.symbol_not_armed"
OVER_QUANTITY = "grant.max_quantity"
OVER_NOTIONAL = "grant.max_notional"
NOTIONAL_UNKNOWN = "grant.notional_unknown"


class GrantFit(enum.Enum):
    WITHIN = "within"
    STEP_UP = "step_up"
    FORBIDDEN = "forbidden"


@dataclass(frozen=True)
class GrantVerdict:
    fit: GrantFit
    reason: str | None = None
    detail: str = ""


WITHIN = GrantVerdict(GrantFit.WITHIN)

_BUY_BOUNDED_BY_LIMIT = frozenset({OrderType.LMT, OrderType.STP_LMT})


class TopOfBook(Protocol):
    """What :func:`fresh_touch` reads of a book (:class:`trading.depth_book.BookSnapshot`)."""

    @property
    def venue_ts(self) -> datetime: ...

    @property
    def bids(self) -> Sequence[tuple[Decimal, int]]: ...

    @property
    def asks(self) -> Sequence[tuple[Decimal, int]]: ...


def worst_notional_price(
    terms: OrderTerms, touch: Decimal | None, collar_bps: Decimal = DEFAULT_COLLAR_BPS
) -> Decimal | None:
    """The highest price ``terms`` can fill at given ``touch`` (the ask for a BUY, the bid for
    a SELL, from a fresh book; None without one), or None when nothing bounds it: a BUY with a
    limit is bounded by it, every other order only by the touch. A market or stop order (a
    manual entry) goes out with a protective limit ``collar_bps`` past the touch or its trigger
    (:mod:`trading.protective_limits`; the floor's ``FLOOR_MARKET_COLLAR_BPS``), so a BUY is
    taken at that limit."""
    if terms.side is Side.BUY and terms.order_type in _BUY_BOUNDED_BY_LIMIT:
        assert terms.limit_price is not None
        return terms.limit_price
    if touch is None:
        return None
    fills = ticket_fill_range(terms, touch, collar_bps)
    return None if fills is None else fills.notional_price


def ticket_fill_range(terms: OrderTerms, touch: Decimal | None, collar_bps: Decimal) -> FillRange | None:
    """Every price the order of ``terms`` (a manual entry) can fill at given ``touch``, as the
    hot path sends it: a market or stop order with its protective limit ``collar_bps`` past the
    touch or its trigger (:func:`trading.protective_limits.entry_fill_range`)."""
    return entry_fill_range(
        terms.side,
        terms.order_type,
        limit=terms.limit_price,
        stop=terms.stop_price,
        touch=touch,
        collar_bps=collar_bps,
        tick=tick_size(terms.symbol),
    )


def fresh_touch(book: TopOfBook | None, side: Side, now: datetime, max_age: timedelta) -> Decimal | None:
    """The far side of ``book`` (its best ask for a BUY, best bid for a SELL) when the book's
    venue timestamp is at most ``max_age`` before ``now``; None without a book, with an empty
    side, or when the book is older (or stamped in the future beyond the same margin: a clock
    that cannot be trusted prices nothing)."""
    if book is None or abs(now - book.venue_ts) > max_age:
        return None
    levels = book.asks if side is Side.BUY else book.bids
    return levels[0][0] if levels else None


def check_grant(
    terms: OrderTerms,
    *,
    symbols: Collection[str] | None,
    max_quantity: int | None,
    max_notional: Decimal | None,
    notional_price: Decimal | None,
) -> GrantVerdict:
    """The module docstring's rule for ``terms`` against a grant's limits; ``notional_price``
    from :func:`worst_notional_price`."""
    if symbols is not None and terms.symbol not in symbols:
        armed = ", ".join(sorted(symbols)) or "no instrument"
        return GrantVerdict(
            GrantFit.FORBIDDEN,
            SYMBOL_NOT_ARMED,
            f"your arming grant covers {armed}, not {terms.symbol}: arm again including {terms.symbol}",
        )
    if max_quantity is not None and terms.quantity > max_quantity:
        return GrantVerdict(
            GrantFit.STEP_UP,
            OVER_QUANTITY,
            f"{terms.quantity} shares is above your grant's {max_quantity}: "
            "confirm this order with your authenticator",
        )
    if max_notional is not None:
        if notional_price is None:
            return GrantVerdict(
                GrantFit.STEP_UP,
                NOTIONAL_UNKNOWN,
                f"nothing bounds this order's notional but the market, and there is no fresh book"
                f" for {terms.symbol}: confirm it with your authenticator",
            )
        notional = notional_price * terms.quantity
        if notional > max_notional:
            return GrantVerdict(
                GrantFit.STEP_UP,
                OVER_NOTIONAL,
                f"notional {format(notional, 'f')} at the worst fill {format(notional_price, 'f')} "
                f"is above your grant's {format(max_notional, 'f')}: "
                "confirm this order with your authenticator",
            )
    return WITHIN
