"""Position Sizer: Kelly-criterion share quantity within an account's risk profile.

Kelly fraction of the bankroll for a bet won with probability ``p`` that pays ``b`` times the
stake lost::

    f* = p - (1 - p) / b

``f* <= 0`` means the claimed edge is not an edge: no trade.

Sizing (all arithmetic on exact rationals, :class:`fractions.Fraction`, so no intermediate is
ever rounded):

* The order fills somewhere in a range of prices ``[low, high]`` given the touch
  (:mod:`trading.fill_prices`, which also says why each end is the worst for its limit).
  ``P = high`` is the price notional is measured at.
* Kelly dollars ``K = f* x bankroll x kelly_fraction`` (``kelly_fraction`` defaults to 1: strict
  Kelly). ``bankroll`` is the account's net liquidation value as last reported by the broker.
* Loss per share ``L``: the worst over the range, ``high - stop`` for a BUY, ``stop - low`` for
  a SELL. The stop must be on the losing side of every price of the range (below ``low`` for a
  BUY, above ``high`` for a SELL), else no trade (:data:`STOP_WRONG_SIDE`).
* Quantity ``q = floor(min(K / P, max_trade_size / P, max_dollar_risk / L))``, further capped
  by an optional requested ``max_quantity``.

Rounding rules, written down because money depends on them:

1. The only rounding is the final ``floor`` to whole shares, toward zero. Hence
   ``q x P <= max_trade_size``, ``q x L <= max_dollar_risk`` and ``q x P <= K`` hold exactly
   at the worst price of the range, so at every price of it, and ``q`` is the largest integer
   for which all three hold.
2. A quantity below one share is no trade (reason :data:`NO_SHARE`), never rounded up.
3. :func:`kelly_fraction` returns ``f*`` as a :class:`~decimal.Decimal` for display and the
   ledger; when ``(1 - p) / b`` does not terminate it is rounded toward negative infinity at
   :data:`DISPLAY_DIGITS` significant digits (the displayed edge never overstates). Sizing
   itself uses the exact value from :func:`kelly_fraction_exact`.

Manual orders (an ``enter`` without an edge, a trader's own quantity) are not sized: there is no
claimed edge to size from, and a trader who asked for 100 shares must not get 37. The quantity is
sent exactly as signed or the order is refused by the risk gate (:func:`trading.risk.check_order`:
notional at the highest fill within Max Trade Size, dollar risk to the ``stop_loss``, or the
whole notional without one, within Max Dollar Risk). No rounding of any kind applies to them:
the quantity is already whole shares and every check is an exact Decimal comparison.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from math import floor
from typing import Any

from trading.circuit_breaker import BreakerRule, RuleInvalid
from trading.commands import Side

# One name for the rule, shared with the risk gate: a refusal reads the same wherever it is made.
from trading.fill_prices import STOP_WRONG_SIDE as STOP_WRONG_SIDE
from trading.fill_prices import FillRange

DISPLAY_DIGITS = 28

NO_EDGE = "sizing.no_edge"
"""f* <= 0: the claimed edge loses money."""
NO_SHARE = "sizing.below_one_share"
"""Every limit allows less than one whole share."""
NO_BANKROLL = "sizing.no_bankroll"
"""Net liquidation value is zero or negative."""

BINDING_KELLY = "kelly"
BINDING_MAX_TRADE_SIZE = "max_trade_size"
BINDING_MAX_DOLLAR_RISK = "max_dollar_risk"
BINDING_REQUESTED = "requested_quantity"


class ProfileInvalid(ValueError):
    """A risk profile field outside its domain; ``field`` names it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class RiskProfile:
    """Per-account limits. Dollar amounts are exact Decimals; counts are ints."""

    max_trade_size: Decimal
    """Largest notional (shares x entry price) of a single order, in dollars."""
    max_dollar_risk: Decimal
    """Largest loss to the stop (shares x |entry - stop|) of a single order, in dollars."""
    max_position: int
    """Largest absolute position in one symbol, in shares."""
    max_gross_exposure: Decimal
    """Largest sum over symbols of |position| x price, in dollars."""
    max_open_orders: int
    """Largest number of orders working at the broker at once."""
    staleness_ms: int
    """A price older than this many milliseconds is too stale to trade on."""
    kelly_fraction: Decimal = Decimal(1)
    """Multiplier on the Kelly fraction, in (0, 1]; 1 is strict Kelly."""
    breaker: BreakerRule | None = None
    """What counts as a flash crash for this account (None: the default, -10% within 60 s);
    see :mod:`trading.circuit_breaker`. Left out of the JSON when None, so a profile signed
    before the field existed reads (and verifies) the same."""

    def __post_init__(self) -> None:
        for name in ("max_trade_size", "max_dollar_risk", "max_gross_exposure", "kelly_fraction"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
                raise ProfileInvalid(name, f"must be a positive finite Decimal, got {value!r}")
        if self.kelly_fraction > 1:
            raise ProfileInvalid("kelly_fraction", f"must be at most 1, got {self.kelly_fraction}")
        for name in ("max_position", "max_open_orders", "staleness_ms"):
            value = getattr(self, name)
            if type(value) is not int or value <= 0:
                raise ProfileInvalid(name, f"must be a positive integer, got {value!r}")

    def to_json_dict(self) -> dict[str, Any]:
        """Decimals as plain strings, counts as integers (the form stored and ledgered)."""
        return {
            "max_trade_size": format(self.max_trade_size, "f"),
            "max_dollar_risk": format(self.max_dollar_risk, "f"),
            "max_position": self.max_position,
            "max_gross_exposure": format(self.max_gross_exposure, "f"),
            "max_open_orders": self.max_open_orders,
            "staleness_ms": self.staleness_ms,
            "kelly_fraction": format(self.kelly_fraction, "f"),
        } | ({} if self.breaker is None else {"breaker": self.breaker.to_json_dict()})

    @classmethod
    def from_json_dict(cls, data: Any) -> RiskProfile:
        if not isinstance(data, dict):
            raise ProfileInvalid("profile", "must be an object")
        known = {f for f in cls.__dataclass_fields__}
        for key in data:
            if key not in known:
                raise ProfileInvalid(str(key), "unknown risk profile field")
        values: dict[str, Any] = {}
        for name in ("max_trade_size", "max_dollar_risk", "max_gross_exposure", "kelly_fraction"):
            if name not in data:
                if name == "kelly_fraction":
                    continue
                raise ProfileInvalid(name, "required")
            raw = data[name]
            if not isinstance(raw, str):
                raise ProfileInvalid(name, f"must be a decimal string, got {raw!r}")
            try:
                values[name] = Decimal(raw)
            except decimal.InvalidOperation:
                raise ProfileInvalid(name, f"not a decimal: {raw!r}") from None
        for name in ("max_position", "max_open_orders", "staleness_ms"):
            if name not in data:
                raise ProfileInvalid(name, "required")
            values[name] = data[name]
        if "breaker" in data:
            try:
                values["breaker"] = BreakerRule.from_json_dict(data["breaker"])
            except RuleInvalid as exc:
                raise ProfileInvalid(f"breaker.{exc.field}", exc.reason) from None
        return cls(**values)


@dataclass(frozen=True)
class SizeDecision:
    quantity: int
    """Whole shares to trade; 0 means no trade and ``reason`` says why."""
    reason: str | None
    f_star: Fraction
    """The exact Kelly fraction of the claimed edge."""
    kelly_dollars: Fraction
    """f* x bankroll x kelly_fraction (0 when there is no edge)."""
    binding: str | None
    """Which limit set the quantity: kelly, max_trade_size, max_dollar_risk, requested_quantity."""


def kelly_fraction_exact(p: Decimal, b: Decimal) -> Fraction:
    """f* = p - (1 - p) / b as an exact rational. Requires 0 < p < 1 and b > 0."""
    if not 0 < p < 1:
        raise ValueError(f"p must be strictly between 0 and 1, got {p}")
    if b <= 0:
        raise ValueError(f"b must be positive, got {b}")
    fp = Fraction(p)
    return fp - (1 - fp) / Fraction(b)


def kelly_fraction(p: Decimal, b: Decimal) -> Decimal:
    """f* as a Decimal, rounded toward negative infinity at 28 significant digits if inexact."""
    exact = kelly_fraction_exact(p, b)
    with decimal.localcontext() as ctx:
        ctx.prec = DISPLAY_DIGITS
        ctx.rounding = decimal.ROUND_FLOOR
        return Decimal(exact.numerator) / Decimal(exact.denominator)


def size_order(
    profile: RiskProfile,
    *,
    bankroll: Decimal,
    side: Side,
    entry_price: Decimal | FillRange,
    stop_price: Decimal,
    p: Decimal,
    b: Decimal,
    max_quantity: int | None = None,
) -> SizeDecision:
    """Largest whole share quantity allowed by Kelly and the profile (see the module docstring).

    ``entry_price`` is every price the order can fill at (:func:`trading.fill_prices.fill_range`),
    or one price when there is only one.
    """
    fills = entry_price if isinstance(entry_price, FillRange) else FillRange.at(entry_price)
    if fills.low <= 0 or fills.low > fills.high or stop_price <= 0:
        raise ValueError("prices must be positive")
    f_star = kelly_fraction_exact(p, b)
    if f_star <= 0:
        return SizeDecision(0, NO_EDGE, f_star, Fraction(0), None)
    if bankroll <= 0:
        return SizeDecision(0, NO_BANKROLL, f_star, Fraction(0), None)
    if not fills.stop_on_losing_side(side, stop_price):
        return SizeDecision(0, STOP_WRONG_SIDE, f_star, Fraction(0), None)
    price = Fraction(fills.notional_price)
    loss_per_share = Fraction(fills.loss_per_share(side, stop_price))

    kelly_dollars = f_star * Fraction(bankroll) * Fraction(profile.kelly_fraction)
    limits = [
        (kelly_dollars / price, BINDING_KELLY),
        (Fraction(profile.max_trade_size) / price, BINDING_MAX_TRADE_SIZE),
        (Fraction(profile.max_dollar_risk) / loss_per_share, BINDING_MAX_DOLLAR_RISK),
    ]
    if max_quantity is not None:
        limits.append((Fraction(max_quantity), BINDING_REQUESTED))
    # min() keeps the first of equal limits, so Kelly is named binding when nothing tighter is.
    bound, binding = min(limits, key=lambda item: item[0])
    quantity = floor(bound)
    if quantity < 1:
        return SizeDecision(0, NO_SHARE, f_star, kelly_dollars, binding)
    return SizeDecision(quantity, None, f_star, kelly_dollars, binding)
