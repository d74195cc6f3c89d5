"""A trader's order ticket, as typed into the HUD or sent to ``stageOrder``, checked and turned
into the :class:`~trading.step_up.OrderTerms` that a staged order will execute.

Every field travels as text (prices as decimal strings, never floats). The ticket is checked by
the same rules as the command it becomes (:class:`trading.commands.Command` validates the
prices each order type needs), plus what only the desk knows: the symbols the floor trades and
the accounts this trader may trade. Trailing stops are not staged from the desk: the stop they
would be sized at is computed by the hot path from the tick, so the trader could not see the
order they confirm.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from trading.commands import (
    Command,
    CommandInvalid,
    CommandKind,
    OrderType,
    Side,
    TimeInForce,
)
from trading.step_up import OrderTerms

DESK_ORDER_TYPES = (OrderType.MKT, OrderType.LMT, OrderType.STP, OrderType.STP_LMT)


@dataclass(frozen=True)
class Ticket:
    account: str
    symbol: str
    side: str
    order_type: str
    quantity: int
    tif: str = "DAY"
    limit_price: str | None = None
    stop_price: str | None = None
    stop_loss: str | None = None
    """The protective stop the risk gate measures the dollar risk to (optional)."""


@dataclass(frozen=True)
class TicketInvalid:
    field: str
    reason: str


def parse_ticket(
    ticket: Ticket, *, symbols: Collection[str], may_trade: Callable[[str], bool]
) -> OrderTerms | TicketInvalid:
    """The ticket's terms, or the first field that is wrong and what to send instead."""
    if ticket.symbol not in symbols:
        return TicketInvalid(
            "symbol",
            f"the floor trades {', '.join(sorted(symbols))}; {ticket.symbol!r} is not one of them",
        )
    if not may_trade(ticket.account):
        return TicketInvalid("account", f"you are not allowed on account {ticket.account!r}")
    try:
        side = Side(ticket.side)
    except ValueError:
        return TicketInvalid("side", "must be BUY or SELL")
    try:
        order_type = OrderType(ticket.order_type)
    except ValueError:
        order_type = None
    if order_type not in DESK_ORDER_TYPES:
        return TicketInvalid("order_type", f"must be one of {', '.join(t.value for t in DESK_ORDER_TYPES)}")
    try:
        tif = TimeInForce(ticket.tif)
    except ValueError:
        return TicketInvalid("tif", f"must be one of {', '.join(t.value for t in TimeInForce)}")
    if type(ticket.quantity) is not int or ticket.quantity <= 0:
        return TicketInvalid("quantity", "must be a whole number of shares above 0")
    prices: dict[str, Decimal | None] = {}
    for name in ("limit_price", "stop_price", "stop_loss"):
        raw = getattr(ticket, name)
        parsed = None if raw is None else _plain_decimal(raw)
        if raw is not None and parsed is None:
            return TicketInvalid(name, f"must be a positive decimal string like '187.25', got {raw!r}")
        prices[name] = parsed
    try:
        # The manual order this ticket becomes checks the rest: which prices the order type
        # needs, the number of decimals, the symbol's and account's form, the quantity's range.
        Command(
            kind=CommandKind.ENTER,
            command_id="ticket",
            agent_id="ticket",
            account=ticket.account,
            nonce="ticket",
            issued_at=datetime(2000, 1, 1, tzinfo=UTC),
            symbol=ticket.symbol,
            side=side,
            order_type=order_type,
            limit_price=prices["limit_price"],
            stop_price=prices["stop_price"],
            tif=tif,
            quantity=ticket.quantity,
            stop_loss=prices["stop_loss"],
        )
    except CommandInvalid as exc:
        return TicketInvalid(exc.field, exc.reason)
    return OrderTerms(
        account=ticket.account,
        symbol=ticket.symbol,
        side=side,
        order_type=order_type,
        quantity=ticket.quantity,
        tif=tif,
        limit_price=prices["limit_price"],
        stop_price=prices["stop_price"],
        stop_loss=prices["stop_loss"],
    )


def _plain_decimal(text: str) -> Decimal | None:
    """A positive decimal written in plain notation exactly as the floor writes it back
    (``"187.25"``; not ``"1e3"``, ``"+5"``, ``".5"`` or ``"05"``), else None."""
    try:
        value = Decimal(text)
    except (InvalidOperation, TypeError, ValueError):
        return None
    if not value.is_finite() or value <= 0 or format(value, "f") != text:
        return None
    return value
