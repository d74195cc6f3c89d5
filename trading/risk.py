"""Pre-trade risk gate: a pure function of the account's profile, its trading state and one
proposed order. It never touches the network; the hot path feeds it a snapshot.

Trading state is also the kill switch:

* ``ACTIVE`` — every check below applies.
* ``REDUCING`` — only orders that shrink the symbol's absolute position pass.
* ``HALTED`` — nothing new passes (the circuit breaker tripped or a trader halted the floor);
  cancels are not orders and are never gated.

Refusal reasons are dotted names, recorded verbatim in ``orders.events`` and the ledger.
Checks run in a fixed order and the first failure is the reason, so the same inputs always
name the same rule.

Prices: an order is checked over every price it can fill at given the touch
(:mod:`trading.fill_prices`): notional and exposure at the highest, the loss to the stop at
the worst end for its side, and a stop that is not on the losing side of every one of them is
refused (``risk.stop_wrong_side``).

A manual order (an ``enter`` without an edge: the quantity is the trader's) is checked like any
other, at the same worst prices, and refused, never resized, when a limit is exceeded. Its
dollar risk is ``quantity x |worst fill - stop_loss|`` when it carries a ``stop_loss``, else the
whole notional ``quantity x highest fill`` (nothing bounds the loss, so all of it is at risk):
:attr:`ProposedOrder.unprotected`. No rounding: exact Decimal products of whole shares.

An exit (``reduce_only``) that passes :func:`exit_reduces`, i.e. only shrinks the position even
if every working exit on its side fills first, is exempt from Max Trade Size and Max Dollar
Risk: a desk must always be able to get out, and a position whose notional grew past Max Trade
Size (the price rose, or entries added up) would otherwise be stuck. Neither limit speaks about
it: Max Trade Size bounds the new exposure one order opens, and an exit opens none; Max Dollar
Risk bounds the loss to a stop, and an exit has no stop of its own (its loss was taken when the
entry was). Position and gross exposure already let a reducing order through; open orders still
count it, and a halted floor refuses it like any order. An exit that would open or flip a
position is refused (``risk.exit_exceeds_position``) before any of this.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal

from trading.commands import Side
from trading.fill_prices import STOP_WRONG_SIDE, FillRange
from trading.sizing import RiskProfile


class TradingState(enum.StrEnum):
    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


class Refusal(enum.StrEnum):
    HALTED = "breaker.halted"
    REDUCING_ONLY = "risk.reducing_only"
    STALE_PRICE = "risk.stale_price"
    MAX_TRADE_SIZE = "risk.max_trade_size"
    MAX_DOLLAR_RISK = "risk.max_dollar_risk"
    MAX_POSITION = "risk.max_position"
    MAX_GROSS_EXPOSURE = "risk.max_gross_exposure"
    MAX_OPEN_ORDERS = "risk.max_open_orders"
    EXIT_EXCEEDS_POSITION = "risk.exit_exceeds_position"
    STOP_WRONG_SIDE = STOP_WRONG_SIDE


@dataclass(frozen=True)
class ProposedOrder:
    symbol: str
    side: Side
    quantity: int
    price: Decimal
    """The highest price the order can fill at (:attr:`FillRange.high`): notional and exposure."""
    stop_price: Decimal | None = None
    """Where the loss is measured to; None for an exit, which has no new risk to the stop."""
    reduce_only: bool = False
    """An exit: it may only shrink the position (see :func:`exit_reduces`), never open or flip it."""
    lowest_price: Decimal | None = None
    """The lowest price it can fill at (:attr:`FillRange.low`); None: ``price`` is the only one."""
    unprotected: bool = False
    """An entry with no stop at all (a manual order without ``stop_loss``): its whole notional,
    ``quantity x price``, is the loss Max Dollar Risk is checked against."""

    @classmethod
    def over(
        cls,
        symbol: str,
        side: Side,
        quantity: int,
        fills: FillRange,
        stop_price: Decimal | None = None,
        *,
        reduce_only: bool = False,
        unprotected: bool = False,
    ) -> ProposedOrder:
        """The order over every price it can fill at."""
        return cls(symbol, side, quantity, fills.high, stop_price, reduce_only, fills.low, unprotected)

    @property
    def fills(self) -> FillRange:
        return FillRange(self.price if self.lowest_price is None else self.lowest_price, self.price)


@dataclass(frozen=True)
class AccountSnapshot:
    trading_state: TradingState
    position: int
    """Signed shares held in the order's symbol (negative: short)."""
    gross_exposure: Decimal
    """Sum over all symbols of |position| x price, in dollars, including this symbol."""
    open_orders: int
    """Orders working at the broker now."""
    price_age_ms: int
    """Milliseconds since the reference price was observed."""
    working_buy_qty: int = 0
    """Shares still to fill on the account's working buy orders in the order's symbol."""
    working_sell_qty: int = 0
    """Shares still to fill on the account's working sell orders in the order's symbol."""
    exiting_buy_qty: int = 0
    """Of ``working_buy_qty``, the shares on working exits."""
    exiting_sell_qty: int = 0
    """Of ``working_sell_qty``, the shares on working exits."""

    def working(self, side: Side) -> int:
        """Shares still to fill on working ``side`` orders."""
        return self.working_sell_qty if side is Side.SELL else self.working_buy_qty

    def exiting(self, side: Side) -> int:
        """Shares still to fill on working ``side`` exits."""
        return self.exiting_sell_qty if side is Side.SELL else self.exiting_buy_qty


@dataclass(frozen=True)
class RiskDecision:
    approved: bool
    reason: Refusal | None = None

    @classmethod
    def approve(cls) -> RiskDecision:
        return cls(True, None)

    @classmethod
    def refuse(cls, reason: Refusal) -> RiskDecision:
        return cls(False, reason)


def reduces_position(position: int, side: Side, quantity: int) -> bool:
    """True when the order moves the position toward zero without crossing past it."""
    after = position + side.sign * quantity
    return abs(after) < abs(position) and (after == 0 or (after > 0) == (position > 0))


def reduces(order: ProposedOrder, account: AccountSnapshot) -> bool:
    """True when the order shrinks the position even if every working order on its side fills
    first: three 100-share sells against a long 100 reduce once, not three times."""
    return reduces_position(account.position, order.side, account.working(order.side) + order.quantity)


def exit_reduces(order: ProposedOrder, account: AccountSnapshot) -> bool:
    """An exit's own rule: it shrinks the position even if every working *exit* on its side
    fills first. Working entries do not count against it: a resting buy below the market, an
    order to open, must not stop a short from being closed (the position limit sees them)."""
    return reduces_position(account.position, order.side, account.exiting(order.side) + order.quantity)


def check_order(profile: RiskProfile, order: ProposedOrder, account: AccountSnapshot) -> RiskDecision:
    """Approve or refuse one order. Order of checks: state, staleness, an exit that would not
    reduce, a stop on the wrong side, trade size, dollar risk, position, gross exposure, open
    orders. Position and exposure limits do not block an order that reduces the position
    (getting smaller is always allowed unless halted); "reduces" counts the working orders on
    the order's side (:func:`reduces`). An exit that reduces skips trade size and dollar risk
    (see the module's notes)."""
    refusal = _state_refusal(profile, order, account)
    if refusal is not None:
        return RiskDecision.refuse(refusal)
    if order.reduce_only and not exit_reduces(order, account):
        return RiskDecision.refuse(Refusal.EXIT_EXCEEDS_POSITION)
    fills = order.fills
    if order.stop_price is not None and not fills.stop_on_losing_side(order.side, order.stop_price):
        return RiskDecision.refuse(Refusal.STOP_WRONG_SIDE)
    if not order.reduce_only:
        refusal = _size_refusal(profile, order, fills)
        if refusal is not None:
            return RiskDecision.refuse(refusal)
    refusal = _position_refusal(profile, order, account)
    if refusal is not None:
        return RiskDecision.refuse(refusal)
    if account.open_orders + 1 > profile.max_open_orders:
        return RiskDecision.refuse(Refusal.MAX_OPEN_ORDERS)
    return RiskDecision.approve()


def _size_refusal(profile: RiskProfile, order: ProposedOrder, fills: FillRange) -> Refusal | None:
    """Max Trade Size (notional at the highest fill), then Max Dollar Risk (the loss to the stop
    at the worst fill, or the whole notional of an unprotected order)."""
    notional = order.quantity * fills.notional_price
    if notional > profile.max_trade_size:
        return Refusal.MAX_TRADE_SIZE
    loss = None
    if order.stop_price is not None:
        loss = order.quantity * fills.loss_per_share(order.side, order.stop_price)
    elif order.unprotected:
        loss = notional
    if loss is not None and loss > profile.max_dollar_risk:
        return Refusal.MAX_DOLLAR_RISK
    return None


def check_parent(profile: RiskProfile, order: ProposedOrder, account: AccountSnapshot) -> RiskDecision:
    """Approve or refuse an iceberg parent: the whole quantity, worked later as slices.

    The parent is never an order at the broker, so only the limits that speak about where the
    account ends up apply to its total: state, price staleness, position and gross exposure
    (as in :func:`check_order`, a parent that only shrinks the position passes both). The
    per-order limits (trade size, dollar risk to the stop, open orders) are about one order
    at the broker; each slice meets them at intake like any other order, so checking them on
    the total would refuse every parent larger than one order may be, which is the very case
    an iceberg exists for. ``order.stop_price`` is not used here."""
    refusal = _state_refusal(profile, order, account) or _position_refusal(profile, order, account)
    return RiskDecision.approve() if refusal is None else RiskDecision.refuse(refusal)


def _state_refusal(profile: RiskProfile, order: ProposedOrder, account: AccountSnapshot) -> Refusal | None:
    """Trading state (halted; reducing-only unless the order reduces), then price staleness."""
    if account.trading_state is TradingState.HALTED:
        return Refusal.HALTED
    if account.trading_state is TradingState.REDUCING and not reduces(order, account):
        return Refusal.REDUCING_ONLY
    if account.price_age_ms > profile.staleness_ms:
        return Refusal.STALE_PRICE
    return None


def _position_refusal(profile: RiskProfile, order: ProposedOrder, account: AccountSnapshot) -> Refusal | None:
    """Where the account ends up if this order and the working orders on its side fill:
    position, then gross exposure; an order that only reduces the position passes both."""
    if reduces(order, account):
        return None
    # Where the position ends if this order and every working order on its side fill.
    after = account.position + order.side.sign * (account.working(order.side) + order.quantity)
    if abs(after) > profile.max_position:
        return Refusal.MAX_POSITION
    exposure_after = account.gross_exposure + (abs(after) - abs(account.position)) * order.price
    if exposure_after > profile.max_gross_exposure:
        return Refusal.MAX_GROSS_EXPOSURE
    return None
