"""The Kelly-sized quantity a trader is shown for an order ticket, and its Max Trade Size in
shares, by the very function the hot path sizes an ``enter`` with (:func:`trading.sizing.size_order`)
over the same prices (:func:`trading.fill_prices.fill_range`).

The ticket's ``stop_loss`` is the edge's stop (the loss Kelly and Max Dollar Risk are measured
to); the payoff ``b`` defaults to 1 (a win as large as the loss to the stop). The suggestion is
a number to type into the ticket: the order the trader then executes is a manual order of that
quantity, checked again by the hot path with its own bankroll and touch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction
from math import floor

from trading.fill_prices import FillRange
from trading.sizing import RiskProfile, kelly_fraction, size_order
from trading.step_up import OrderTerms

NO_PRICE = "risk.no_reference_price"
"""No fresh touch to price a market order (or the stop of a stop order already through) at."""
NO_STOP = "sizing.stop_required"
"""The ticket has no stop loss: Kelly sizes the loss to it."""
NO_BANKROLL_YET = "sizing.no_bankroll"
"""The hot path has not had the account's net liquidation from the broker yet."""
STALE_BANKROLL = "sizing.stale_bankroll"
"""The net liquidation was last confirmed longer than :data:`STALE_BANKROLL_S` ago (the broker
is disconnected or the hot path is down): a Kelly size from it could be hours out of date."""
STALE_BANKROLL_S = 10
"""Ten reporting intervals (:data:`hotpath.net_liquidation.INTERVAL_S`): a few missed writes
under load pass, a lost broker session does not."""
DEFAULT_PAYOFF = Decimal(1)


class EdgeInvalid(ValueError):
    """``p`` or ``b`` outside its domain; ``field`` names the argument."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class Suggestion:
    quantity: int
    """Whole shares Kelly and the profile allow (0: no trade; ``binding`` says why)."""
    max_trade_size: int
    """Whole shares whose notional at the highest fill stays within Max Trade Size."""
    binding: str
    """The limit that set ``quantity`` (kelly, max_trade_size, max_dollar_risk), or the reason
    there is none (sizing.no_edge, sizing.stop_required, ...)."""
    kelly_fraction: Decimal
    """f* = p - (1 - p) / b of the claimed edge, before the profile's multiplier."""
    detail: str


def suggest(
    profile: RiskProfile,
    terms: OrderTerms,
    fills: FillRange | None,
    *,
    bankroll: Decimal | None,
    p: Decimal,
    b: Decimal | None = None,
    bankroll_age: timedelta = timedelta(0),
) -> Suggestion:
    """``fills``: every price ``terms`` can fill at given the touch (None: it cannot be priced);
    ``bankroll_age``: how long ago the hot path last confirmed ``bankroll``."""
    payoff = DEFAULT_PAYOFF if b is None else b
    if not 0 < p < 1:
        raise EdgeInvalid("winProbability", f"must be strictly between 0 and 1, got {p}")
    if not payoff.is_finite() or payoff <= 0:
        raise EdgeInvalid("payoff", f"must be a positive decimal, got {payoff}")
    f_star = kelly_fraction(p, payoff)
    if fills is None:
        return Suggestion(0, 0, NO_PRICE, f_star, f"no fresh quote for {terms.symbol}: give a limit price")
    cap = floor(Fraction(profile.max_trade_size) / Fraction(fills.notional_price))
    cap_text = f"Max Trade Size {profile.max_trade_size} at {fills.notional_price} = {cap} shares"
    if terms.stop_loss is None:
        return Suggestion(0, cap, NO_STOP, f_star, f"set a stop loss: Kelly sizes the loss to it; {cap_text}")
    if bankroll is None:
        return Suggestion(
            0, cap, NO_BANKROLL_YET, f_star,
            f"the broker has not reported {terms.account}'s net liquidation yet; {cap_text}",
        )  # fmt: skip
    if bankroll_age > timedelta(seconds=STALE_BANKROLL_S):
        return Suggestion(
            0, cap, STALE_BANKROLL, f_star,
            f"{terms.account}'s net liquidation {bankroll} was last confirmed by the broker"
            f" {bankroll_age.total_seconds():.1f} s ago (more than {STALE_BANKROLL_S} s):"
            f" no Kelly size; {cap_text}",
        )  # fmt: skip
    decision = size_order(
        profile,
        bankroll=bankroll,
        side=terms.side,
        entry_price=fills,
        stop_price=terms.stop_loss,
        p=p,
        b=payoff,
    )
    binding = decision.binding if decision.quantity > 0 and decision.binding else decision.reason
    assert binding is not None
    kelly_dollars = Decimal(decision.kelly_dollars.numerator) / Decimal(decision.kelly_dollars.denominator)
    detail = (
        f"Kelly f* {f_star} x profile {profile.kelly_fraction} x net liquidation {bankroll}"
        f" = {kelly_dollars:.2f} at {fills.notional_price}; {cap_text}; bound by {binding}"
    )
    return Suggestion(decision.quantity, cap, binding, f_star, detail)
