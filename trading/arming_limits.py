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
* The notional is taken at the worst price the order can fill at (:mod:`trading.fill_prices`:
  the limit, or for a market or stop order the far side of the current book). When that price
  cannot be known (a market order and no book), a grant with a maximum notional cannot be
  shown to hold, so the order needs a step-up (:data:`NOTIONAL_UNKNOWN`).

A grant without a limit (None) does not limit that dimension.
"""

from __future__ import annotations

import enum
from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal

from trading.fill_prices import fill_range
from trading.step_up import OrderTerms

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


def worst_notional_price(terms: OrderTerms, touch: Decimal | None) -> Decimal | None:
    """The highest price ``terms`` can fill at given ``touch`` (the ask for a BUY, the bid for
    a SELL; None without a book), or None when no price bounds it."""
    fills = fill_range(
        terms.side, terms.order_type, limit=terms.limit_price, stop=terms.stop_price, touch=touch
    )
    return None if fills is None else fills.notional_price


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
                f"no price bounds this order's notional (no book for {terms.symbol}): "
                "confirm it with your authenticator",
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
