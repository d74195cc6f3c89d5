"""The demo brain's rules: when a stand-in agent enters, what it claims, and how it gets out.

These are demonstration rules, not strategies anyone should trade. Each is named for what it
does on the venue's mid price and nothing more:

* ``mean_reversion``: the mid strayed more than ``threshold`` from the mean of the last
  ``window`` mids; bet on the way back (sell above the mean, buy below).
* ``momentum``: the mid moved more than ``threshold`` over the last ``window`` mids; bet on it
  going on (buy after a rise, sell after a fall).
* ``breakout``: the mid left the range of the previous ``window`` mids; bet on it going on.

The edge an entry claims (``p``, ``b``) is made up: a small one, so that the Kelly sizer sizes
the order, or, on a configurable share of entries, a large one, so that Kelly asks for more than
Max Trade Size or Max Dollar Risk allows and a cap binds. The sizer never takes the agent's word
for more than the profile allows; these entries are there to show that.

Entries cycle through every order type the floor takes (MKT, LMT, STP, STP_LMT, TRAIL), each
priced from the touch so it fills soon; a position is closed either by a TRAIL exit (the Exit
Manager's trailing stop) or by the agent's own exit signal (a marketable exit), chosen at entry.

Pure: no I/O, no clock, no global randomness (the caller hands in a seeded ``random.Random``).
"""

from __future__ import annotations

import enum
import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from trading.commands import Edge, OrderType, Side, TimeInForce

CENT = Decimal("0.01")
ENTRY_ORDER_TYPES: tuple[OrderType, ...] = (
    OrderType.MKT,
    OrderType.LMT,
    OrderType.STP,
    OrderType.STP_LMT,
    OrderType.TRAIL,
)

MEAN_REVERSION = "mean_reversion"
MOMENTUM = "momentum"
BREAKOUT = "breakout"
RULES = (MEAN_REVERSION, MOMENTUM, BREAKOUT)

DEFAULT_WINDOW = 10
DEFAULT_THRESHOLD = Decimal("0.0001")
"""One basis point of the mid: the simulated prices cross it every few seconds."""


@dataclass(frozen=True)
class Quote:
    """The touch of one symbol, from a verified ``market.depth`` record."""

    symbol: str
    bid: Decimal
    ask: Decimal

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2


class PriceWindow:
    """The last ``size`` mids of one symbol, oldest first."""

    def __init__(self, size: int = DEFAULT_WINDOW) -> None:
        if size < 2:
            raise ValueError("a window needs at least two prices")
        self.size = size
        self._mids: deque[Decimal] = deque(maxlen=size + 1)

    def add(self, mid: Decimal) -> None:
        self._mids.append(mid)

    @property
    def full(self) -> bool:
        return len(self._mids) > self.size

    @property
    def mids(self) -> tuple[Decimal, ...]:
        return tuple(self._mids)


def signal(rule: str, window: PriceWindow, threshold: Decimal = DEFAULT_THRESHOLD) -> Side | None:
    """The side ``rule`` would enter on now (the newest mid against the ``size`` before it), or
    None: no signal, or not enough prices yet."""
    if not window.full:
        return None
    *before, now = window.mids
    if rule == MEAN_REVERSION:
        mean = sum(before, Decimal(0)) / len(before)
        deviation = (now - mean) / mean
        if deviation > threshold:
            return Side.SELL
        if deviation < -threshold:
            return Side.BUY
        return None
    if rule == MOMENTUM:
        change = (now - before[0]) / before[0]
        if change > threshold:
            return Side.BUY
        if change < -threshold:
            return Side.SELL
        return None
    if rule == BREAKOUT:
        if now > max(before):
            return Side.BUY
        if now < min(before):
            return Side.SELL
        return None
    raise ValueError(f"unknown rule {rule!r}: one of {', '.join(RULES)}")


def exit_signal(rule: str, side: Side, window: PriceWindow, threshold: Decimal = DEFAULT_THRESHOLD) -> bool:
    """The agent's own reason to close a position opened on ``side``: its rule now points the
    other way."""
    opposite = signal(rule, window, threshold)
    return opposite is not None and opposite is not side


# --- entries ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EntryPlan:
    """What one entry command carries beyond the ids: priced from the touch it was decided on."""

    symbol: str
    side: Side
    order_type: OrderType
    edge: Edge
    tif: TimeInForce
    limit_price: Decimal | None
    stop_price: Decimal | None
    trail_amount: Decimal | None
    caps_binding: bool
    """The claimed edge is one Kelly would size past the profile's caps."""
    trail_exit: bool
    """The position is to be closed by a TRAIL exit (the Exit Manager); else by the agent's signal."""
    mid: Decimal
    """The mid the decision was made at (slippage is measured against it)."""


def price_unit(quote: Quote) -> Decimal:
    """The distance the rules price in: a tenth of a percent of the mid, at least five cents."""
    return max((quote.mid / 1000).quantize(CENT, ROUND_CEILING), Decimal("0.05"))


def trail_distance(quote: Quote) -> Decimal:
    """How far a TRAIL (entry or exit) trails the touch: twice the spread, at least three cents;
    close enough that the simulated prices trigger it within seconds."""
    return max(2 * (quote.ask - quote.bid), 3 * CENT)


def claimed_edge(rng: random.Random, caps_binding: bool) -> tuple[Decimal, Decimal]:
    """(p, b): a Kelly fraction of 0.2 % to 1 % of the bankroll, or (``caps_binding``) one of
    60 % to 80 %, which no sensible profile lets through."""
    b = rng.choice((Decimal("1"), Decimal("1.25"), Decimal("1.5"), Decimal("2")))
    if caps_binding:
        f = Decimal(rng.randint(60, 80)) / 100
    else:
        f = Decimal(rng.randint(2, 10)) / 1000
    # f* = p - (1 - p) / b  =>  p = (f b + 1) / (b + 1); rounded down, the claim only shrinks.
    p = ((f * b + 1) / (b + 1)).quantize(Decimal("0.0001"), ROUND_FLOOR)
    return p, b


def plan_entry(
    quote: Quote,
    side: Side,
    order_type: OrderType,
    *,
    rng: random.Random,
    caps_binding: bool,
    trail_exit: bool,
) -> EntryPlan:
    """An entry on ``side`` of ``order_type``, priced to fill soon, with its edge's stop three
    price units beyond the far side of the touch (on the losing side of every price the order can
    fill at: :mod:`trading.fill_prices`)."""
    unit = price_unit(quote)
    limit = stop = trail = None
    sign = side.sign
    near = quote.ask if side is Side.BUY else quote.bid
    if order_type is OrderType.LMT:
        limit = near + sign * unit  # through the touch: fills at once
    elif order_type is OrderType.STP:
        stop = near + sign * CENT  # triggers on the next tick that way
    elif order_type is OrderType.STP_LMT:
        stop = near + sign * CENT
        limit = stop + sign * unit
    elif order_type is OrderType.TRAIL:
        trail = trail_distance(quote)  # the entry's stop trails just beyond the touch
    far = quote.bid if side is Side.BUY else quote.ask
    protective = far - sign * 3 * unit
    if protective <= 0:
        raise ValueError(f"{quote.symbol} is priced too low for a stop three units away")
    p, b = claimed_edge(rng, caps_binding)
    return EntryPlan(
        symbol=quote.symbol,
        side=side,
        order_type=order_type,
        edge=Edge(p=p, b=b, stop_price=protective),
        tif=TimeInForce.DAY,
        limit_price=limit,
        stop_price=stop,
        trail_amount=trail,
        caps_binding=caps_binding,
        trail_exit=trail_exit,
        mid=quote.mid,
    )


class EntryChooser:
    """Which order type, edge and exit each entry gets: a seeded shuffle of ``order_types`` (all
    of them by default, so every type occurs within each five entries), a caps-binding edge on
    ``caps_binding_share`` of entries (the running share never falls below it, and exceeds it by
    less than one entry), and a TRAIL exit on about half."""

    def __init__(
        self,
        rng: random.Random,
        caps_binding_share: Decimal,
        order_types: Sequence[OrderType] = ENTRY_ORDER_TYPES,
    ) -> None:
        if not 0 <= caps_binding_share <= 1:
            raise ValueError("caps_binding_share is a share: between 0 and 1")
        if not order_types:
            raise ValueError("order_types names at least one order type")
        self._order_types = tuple(order_types)
        self._rng = rng
        self._share = caps_binding_share
        self._types: list[OrderType] = []
        self._entries = 0
        self._binding = 0

    def next_order_type(self) -> OrderType:
        if not self._types:
            self._types = list(self._order_types)
            self._rng.shuffle(self._types)
        return self._types.pop()

    def next_caps_binding(self) -> bool:
        """Keeps the running share of caps-binding entries at ``caps_binding_share``: binding
        whenever the count so far is below the share of the entries including this one."""
        self._entries += 1
        binding = self._binding < self._share * self._entries
        if binding:
            self._binding += 1
        return binding

    def plan(self, quote: Quote, side: Side) -> EntryPlan:
        return plan_entry(
            quote,
            side,
            self.next_order_type(),
            rng=self._rng,
            caps_binding=self.next_caps_binding(),
            trail_exit=self._rng.random() < 0.5,
        )


# --- a position's life ------------------------------------------------------------------------


class Phase(enum.StrEnum):
    FLAT = "flat"
    ENTERING = "entering"
    """The entry is sent and has not ended."""
    IN = "in"
    """The entry filled (wholly or in part and then ended); nothing closes it yet."""
    EXITING = "exiting"
    """An exit is sent for the whole position."""


@dataclass
class Position:
    """One agent's position in one symbol, as the agent believes it from its orders' events."""

    symbol: str
    phase: Phase = Phase.FLAT
    side: Side | None = None
    quantity: int = 0
    """Shares held (always positive; ``side`` says which way)."""
    entry: EntryPlan | None = None
    entry_id: str | None = None
    exit_id: str | None = None
    exit_filled: int = 0
    since: float = 0.0
    """When the current phase began (the caller's monotonic clock)."""

    def entering(self, plan: EntryPlan, command_id: str, now: float) -> None:
        self.phase, self.entry, self.entry_id, self.side, self.since = (
            Phase.ENTERING,
            plan,
            command_id,
            plan.side,
            now,
        )
        self.quantity = 0

    def entry_filled(self, filled_qty: int) -> None:
        """The entry's cumulative fill (from any fill or terminal event)."""
        self.quantity = max(self.quantity, filled_qty)

    def entry_ended(self, now: float) -> None:
        """The entry is done (filled, cancelled, rejected, expired): in with what filled, or
        flat if nothing did."""
        if self.quantity > 0:
            self.phase, self.since = Phase.IN, now
        else:
            self.reset()

    def adopt(self, side: Side, quantity: int, now: float) -> None:
        """Hold ``quantity`` on ``side`` that no entry of this position accounts for (what an
        exit the floor refused left behind), so that it is exited like any other."""
        self.reset()
        self.phase, self.side, self.quantity, self.since = Phase.IN, side, quantity, now

    def exiting(self, command_id: str, now: float) -> None:
        self.phase, self.exit_id, self.exit_filled, self.since = Phase.EXITING, command_id, 0, now

    def exit_filled_to(self, filled_qty: int) -> None:
        self.exit_filled = max(self.exit_filled, filled_qty)

    def exit_ended(self, now: float) -> bool:
        """The exit is done; True when the position is closed (a round trip), else the rest is
        held and needs another exit."""
        self.quantity -= self.exit_filled
        if self.quantity <= 0:
            self.reset()
            return True
        self.phase, self.exit_id, self.exit_filled, self.since = Phase.IN, None, 0, now
        return False

    def stopped_out(self, shares: int) -> bool:
        """The floor's protective stop on this position filled ``shares``: True when that closed
        a position held (a round trip). While the agent's own exit is working the position stays
        EXITING, and :meth:`exit_ended` closes it once that exit has ended."""
        if self.phase not in (Phase.IN, Phase.EXITING):
            return False
        self.quantity -= shares
        if self.phase is Phase.IN and self.quantity <= 0:
            self.reset()
            return True
        return False

    @property
    def exit_side(self) -> Side:
        assert self.side is not None
        return Side.SELL if self.side is Side.BUY else Side.BUY

    def reset(self) -> None:
        self.phase, self.side, self.quantity, self.entry = Phase.FLAT, None, 0, None
        self.entry_id = self.exit_id = None
        self.exit_filled = 0
