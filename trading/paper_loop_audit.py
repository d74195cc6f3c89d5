"""The paper-trade loop's audit: every trade held against the risk profile from the venue's own
records and the ledger, never from the hot path's counters.

Pure: :func:`audit` takes :class:`AuditInput` (the ledger's accepted ``enter``/``exit`` entries
with their signed commands and the floor's detail, the ledger's risk profile changes, the
venue's orders and executions) and returns one :class:`TradeAudit` per entry, the violations
named by command id, and the :class:`Summary`.

A trade is one accepted ``enter``; the ``exit`` entries that follow it (by ledger sequence) for
the same account, agent and symbol on the other side close it, until that agent's next entry in
the symbol. The floor's protective stops on the position (``<entry id>.stop-…``, and a stop
placed again ``<lost stop's id>.restop<n>``: :func:`trading.round_trips.root_command_id`),
signed by the floor's control key, close the trade of the command they stand for.

What the venue filled is the sum of its executions under the command id (its ``orderRef``); the
average fill is their size-weighted mean.

Rules (each a violation of the trade's entry command):

* ``audit.no_profile``: no risk profile was in force for the account when the entry was ledgered.
* ``audit.dollar_risk_over_limit``: filled x |average fill - stop| exceeds Max Dollar Risk (the
  stop is the signed edge's, or the manual order's ``stop_loss``; without one the whole
  notional is at risk, as the risk gate counts it).
* ``audit.trade_size_over_limit``: filled x average fill exceeds Max Trade Size.
* ``audit.realized_loss_over_limit``: the loss realized by the exits exceeds Max Dollar Risk.
* ``audit.kelly_mismatch``: the quantity sent is not the one :func:`trading.sizing.size_order`
  gives for the signed edge, the bankroll and the touch ledgered with the entry, at the profile
  in force (which limit bound is reported either way).
* ``audit.overfilled``: the venue filled more shares than the floor sent.
* ``audit.venue_quantity_differs``: the venue holds an order under the command id for another
  quantity than the one ledgered (or more than one order).
* ``audit.detail_missing``: the entry's ledger detail lacks what the check needs.

Every limit is compared exactly (Decimal); P&L is before commissions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation, localcontext
from fractions import Fraction
from typing import Any

from trading.commands import Command, CommandKind, Side
from trading.fill_prices import FillRange
from trading.paper_loop_summary import Summary as Summary  # part of the result
from trading.paper_loop_summary import summarize
from trading.round_trips import root_command_id
from trading.sizing import RiskProfile, size_order

NO_PROFILE = "audit.no_profile"
DOLLAR_RISK_OVER = "audit.dollar_risk_over_limit"
TRADE_SIZE_OVER = "audit.trade_size_over_limit"
REALIZED_LOSS_OVER = "audit.realized_loss_over_limit"
KELLY_MISMATCH = "audit.kelly_mismatch"
OVERFILLED = "audit.overfilled"
VENUE_QUANTITY_DIFFERS = "audit.venue_quantity_differs"
DETAIL_MISSING = "audit.detail_missing"

PLACES = Decimal("0.000001")
"""Where a non-terminating average (or P&L from one) is rounded; never a limit's comparison."""

UNFILLED = "unfilled"
OPEN = "open"
PARTLY_CLOSED = "partly_closed"
CLOSED = "closed"
"""A trade's outcome: its entry never filled; filled with no exit fill; partly or wholly closed."""


@dataclass(frozen=True)
class ProfileChange:
    """One ``risk_profile_set`` ledger entry: ``profile`` is in force for ``account`` from ``seq``."""

    seq: int
    account: str
    profile: RiskProfile


@dataclass(frozen=True)
class LedgeredOrder:
    """One accepted ``enter`` or ``exit`` ledger entry."""

    seq: int
    command: Command
    """The signed command, as verified and ledgered."""
    detail: Mapping[str, Any]
    """What the floor worked out: quantity, entry_price, lowest_fill_price, bankroll, binding ..."""
    submitted_at: datetime | None = None
    """When the floor saw the broker acknowledge it (its ``submitted`` state row), if it did."""
    signal_mid: Decimal | None = None
    """The mid the agent saw when it signalled, if known (else slippage is against the best
    price of the range the floor sized at: the touch for a marketable order, the limit for a
    resting one)."""


@dataclass(frozen=True)
class VenueExecution:
    """One of the venue's executions (``GET /executions``); ``order_ref`` is the command id."""

    exec_id: str
    order_ref: str
    shares: int
    price: Decimal


@dataclass(frozen=True)
class VenueOrder:
    """The venue's own record of one order (``GET /orders``)."""

    order_ref: str
    perm_id: int
    total_qty: int
    filled: int
    status: str


@dataclass(frozen=True)
class AuditInput:
    orders: Sequence[LedgeredOrder]
    profiles: Sequence[ProfileChange]
    executions: Sequence[VenueExecution]
    venue_orders: Sequence[VenueOrder] = ()


@dataclass(frozen=True)
class Violation:
    command_id: str
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.command_id}: {self.rule}: {self.detail}"


@dataclass(frozen=True)
class TradeAudit:
    command_id: str
    account: str
    agent_id: str
    symbol: str
    side: Side
    order_type: str
    seq: int
    issued_at: datetime
    sized: bool
    """True for an entry sized from a signed edge; False for a manual quantity."""
    quantity_sent: int
    filled: int
    avg_fill: Decimal | None
    stop: Decimal | None
    max_dollar_risk: Decimal | None
    max_trade_size: Decimal | None
    dollar_risk: Decimal
    """filled x |avg fill - stop| (the whole notional without a stop)."""
    notional: Decimal
    """filled x avg fill."""
    kelly_quantity: int | None
    """What the floor's sizer gives for this entry's edge, bankroll and touch."""
    binding: str | None
    """Which limit set that quantity: kelly, max_trade_size, max_dollar_risk, requested_quantity."""
    exits: tuple[str, ...]
    exit_filled: int
    realized_pnl: Decimal
    outcome: str
    slippage: Decimal | None
    """Per share, against the trader (positive: paid more / sold for less than the reference)."""
    slippage_dollars: Decimal | None
    """slippage x filled."""
    latency_ms: float | None
    """Signed ``issued_at`` to the broker's acknowledgement."""
    violations: tuple[Violation, ...] = field(default=())

    @property
    def realized_loss(self) -> Decimal:
        return max(Decimal(0), -self.realized_pnl)


@dataclass(frozen=True)
class AuditResult:
    trades: tuple[TradeAudit, ...]
    violations: tuple[Violation, ...]
    summary: Summary

    @property
    def ok(self) -> bool:
        return not self.violations


@dataclass
class _Fills:
    shares: int = 0
    cost: Decimal = Decimal(0)
    """Sum of price x shares over the executions: exact."""

    @property
    def avg(self) -> Fraction | None:
        return None if not self.shares else Fraction(self.cost) / self.shares


def exact(value: Fraction) -> Decimal:
    """``value`` as a Decimal: exact when its decimal expansion ends (any sum of cent prices
    does), else rounded half-even at :data:`PLACES` places (an average over 3 shares)."""
    denominator = value.denominator
    for prime in (2, 5):
        while denominator % prime == 0:
            denominator //= prime
    with localcontext() as ctx:
        ctx.prec = 100  # enough for any terminating quotient of prices and share counts
        quotient = Decimal(value.numerator) / Decimal(value.denominator)
    return quotient if denominator == 1 else quotient.quantize(PLACES, rounding=ROUND_HALF_EVEN)


def audit(records: AuditInput) -> AuditResult:
    """Every trade of ``records`` checked against the profile in force when it was ledgered."""
    fills: defaultdict[str, _Fills] = defaultdict(_Fills)
    seen: set[str] = set()
    for e in records.executions:
        if e.exec_id in seen:  # one execution, however often it is listed
            continue
        seen.add(e.exec_id)
        fills[e.order_ref].shares += e.shares
        fills[e.order_ref].cost += e.price * e.shares
    at_venue: defaultdict[str, list[VenueOrder]] = defaultdict(list)
    for o in records.venue_orders:
        at_venue[o.order_ref].append(o)
    profiles = sorted(records.profiles, key=lambda p: p.seq)
    orders = sorted(records.orders, key=lambda o: o.seq)
    exits: defaultdict[str, list[LedgeredOrder]] = defaultdict(list)
    current: dict[tuple[str, str, str | None], LedgeredOrder] = {}
    opened_by: dict[str, LedgeredOrder] = {}
    """command id (an entry's, or an exit's) -> the entry whose trade it belongs to."""
    entries: list[LedgeredOrder] = []
    for order in orders:
        c = order.command
        key = (c.account, c.agent_id, c.symbol)
        if c.kind is CommandKind.ENTER:
            entries.append(order)
            current[key] = order
            opened_by[c.command_id] = order
            continue
        if c.kind is not CommandKind.EXIT:
            continue
        root = root_command_id(c.command_id)
        # The floor's own stop on the position closes the trade of the command it stands for.
        opened = opened_by.get(root) if root != c.command_id else current.get(key)
        if opened is not None and c.side is not opened.command.side:
            exits[opened.command.command_id].append(order)
            opened_by[c.command_id] = opened
    trades = tuple(
        _trade(e, _in_force(profiles, e), exits.get(e.command.command_id, []), fills, at_venue)
        for e in entries
    )
    violations = tuple(v for t in trades for v in t.violations)
    return AuditResult(trades, violations, summarize(trades, violations))


def _in_force(profiles: Sequence[ProfileChange], order: LedgeredOrder) -> RiskProfile | None:
    found = None
    for change in profiles:
        if change.seq > order.seq:
            break
        if change.account == order.command.account:
            found = change.profile
    return found


def _decimal(detail: Mapping[str, Any], key: str) -> Decimal | None:
    raw = detail.get(key)
    if raw is None:
        return None
    try:
        return Decimal(str(raw))
    except InvalidOperation:
        return None


def _trade(
    entry: LedgeredOrder,
    profile: RiskProfile | None,
    exits: Sequence[LedgeredOrder],
    fills: Mapping[str, _Fills],
    at_venue: Mapping[str, Sequence[VenueOrder]],
) -> TradeAudit:
    c = entry.command
    assert c.side is not None and c.symbol is not None
    cid = c.command_id
    found: list[Violation] = []
    sent = entry.detail.get("quantity")
    if not isinstance(sent, int):
        found.append(Violation(cid, DETAIL_MISSING, "the ledger detail has no quantity"))
        sent = c.quantity or 0
    for order in (entry, *exits):
        found += _as_ledgered(order, at_venue.get(order.command.command_id, ()))
    mine = fills.get(cid, _Fills())
    avg = mine.avg
    stop = c.edge.stop_price if c.edge is not None else c.stop_loss
    # Both exact: filled x avg fill is the executions' own sum, and filled x |avg - stop| is
    # |that sum - filled x stop|.
    notional = mine.cost
    risk = notional if stop is None else abs(mine.cost - stop * mine.shares)
    if mine.shares > sent:
        found.append(Violation(cid, OVERFILLED, f"the venue filled {mine.shares} of {sent} shares sent"))

    pnl = Fraction(0)
    exit_filled = 0
    remaining = mine.shares
    for ex in exits:
        got = fills.get(ex.command.command_id)
        if got is None or got.avg is None or avg is None:
            continue  # an exit that did not fill (or an entry that did not)
        matched = min(got.shares, remaining)
        remaining -= matched
        exit_filled += matched
        pnl += (got.avg - avg) * matched * c.side.sign

    kelly_quantity: int | None = None
    binding: str | None = None
    if profile is None:
        found.append(
            Violation(cid, NO_PROFILE, f"no risk profile in force for {c.account} at seq {entry.seq}")
        )
    else:
        found += _limits(cid, profile, risk, notional, pnl, stop, mine)
        if c.edge is not None:
            sized = _kelly(entry, profile, sent)
            if isinstance(sized, Violation):
                found.append(sized)
            else:
                kelly_quantity, binding, problem = sized
                if problem is not None:
                    found.append(problem)

    if mine.shares == 0:
        outcome = UNFILLED
    elif exit_filled == 0:
        outcome = OPEN
    elif exit_filled < mine.shares:
        outcome = PARTLY_CLOSED
    else:
        outcome = CLOSED
    reference = entry.signal_mid if entry.signal_mid is not None else _touch(entry)
    slippage = None if avg is None or reference is None else (avg - Fraction(reference)) * c.side.sign
    latency = None
    if entry.submitted_at is not None:
        latency = (entry.submitted_at - c.issued_at).total_seconds() * 1000
    return TradeAudit(
        command_id=cid,
        account=c.account,
        agent_id=c.agent_id,
        symbol=c.symbol,
        side=c.side,
        order_type=str(c.order_type),
        seq=entry.seq,
        issued_at=c.issued_at,
        sized=c.edge is not None,
        quantity_sent=sent,
        filled=mine.shares,
        avg_fill=None if avg is None else exact(avg),
        stop=stop,
        max_dollar_risk=None if profile is None else profile.max_dollar_risk,
        max_trade_size=None if profile is None else profile.max_trade_size,
        dollar_risk=risk,
        notional=notional,
        kelly_quantity=kelly_quantity,
        binding=binding,
        exits=tuple(e.command.command_id for e in exits),
        exit_filled=exit_filled,
        realized_pnl=exact(pnl),
        outcome=outcome,
        slippage=None if slippage is None else exact(slippage),
        slippage_dollars=None if slippage is None else exact(slippage * mine.shares),
        latency_ms=latency,
        violations=tuple(found),
    )


def _as_ledgered(order: LedgeredOrder, venue: Sequence[VenueOrder]) -> list[Violation]:
    """The venue got the quantity ledgered, once (or nothing at all: an order the floor ended
    before sending it)."""
    ledgered = order.detail.get("quantity")
    if len(venue) > 1:
        perm_ids = ", ".join(str(o.perm_id) for o in venue)
        return [
            Violation(
                order.command.command_id, VENUE_QUANTITY_DIFFERS, f"{len(venue)} venue orders ({perm_ids})"
            )
        ]
    if venue and venue[0].total_qty != ledgered:
        detail = f"the venue's order is for {venue[0].total_qty} shares, the ledger's for {ledgered}"
        return [Violation(order.command.command_id, VENUE_QUANTITY_DIFFERS, detail)]
    return []


def _limits(
    cid: str,
    profile: RiskProfile,
    risk: Decimal,
    notional: Decimal,
    pnl: Fraction,
    stop: Decimal | None,
    mine: _Fills,
) -> list[Violation]:
    found = []
    at = f"{mine.shares} filled at {None if mine.avg is None else exact(mine.avg)}"
    if risk > profile.max_dollar_risk:
        to = f"stop {stop}" if stop is not None else "no stop (the whole notional)"
        found.append(
            Violation(
                cid, DOLLAR_RISK_OVER, f"{at} to {to}: ${risk} > Max Dollar Risk ${profile.max_dollar_risk}"
            )
        )
    if notional > profile.max_trade_size:
        found.append(
            Violation(cid, TRADE_SIZE_OVER, f"{at}: ${notional} > Max Trade Size ${profile.max_trade_size}")
        )
    if -pnl > Fraction(profile.max_dollar_risk):
        found.append(
            Violation(
                cid,
                REALIZED_LOSS_OVER,
                f"realized ${exact(-pnl)} lost > Max Dollar Risk ${profile.max_dollar_risk}",
            )
        )
    return found


def _kelly(
    entry: LedgeredOrder, profile: RiskProfile, sent: int
) -> tuple[int, str | None, Violation | None] | Violation:
    """The floor's sizer run again on what was ledgered with the entry."""
    c = entry.command
    assert c.edge is not None and c.side is not None
    cid = c.command_id
    high = _decimal(entry.detail, "entry_price")
    bankroll = _decimal(entry.detail, "bankroll")
    if high is None or bankroll is None:
        return Violation(cid, DETAIL_MISSING, "the ledger detail lacks entry_price or bankroll")
    low = _decimal(entry.detail, "lowest_fill_price") or high
    try:
        size = size_order(
            profile,
            bankroll=bankroll,
            side=c.side,
            entry_price=FillRange(low, high),
            stop_price=c.edge.stop_price,
            p=c.edge.p,
            b=c.edge.b,
            max_quantity=c.quantity,
        )
    except ValueError as exc:
        return Violation(cid, KELLY_MISMATCH, f"the sizer refuses what was ledgered: {exc}")
    problem = None
    if size.quantity != sent:
        problem = Violation(
            cid,
            KELLY_MISMATCH,
            f"sent {sent} shares; the sizer gives {size.quantity} ({size.binding or size.reason} binding)",
        )
    return size.quantity, size.binding, problem


def _touch(entry: LedgeredOrder) -> Decimal | None:
    """The best end of the fill range ledgered with the entry (its other end is the worst)."""
    high = _decimal(entry.detail, "entry_price")
    if entry.command.side is Side.SELL:
        return high
    return _decimal(entry.detail, "lowest_fill_price") or high
