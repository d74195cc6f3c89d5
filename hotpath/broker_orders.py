"""The order the broker is sent for a verified command: one mapping for intake, which sends it,
and for start-up recovery (:mod:`hotpath.recovery`), which sends it again from the ledger
entry, so a restart can never resend another order than the one intake sent.

Pure (no I/O); it lives here rather than in ``trading/`` because its result is the broker
interface's :class:`~brokers.base.BrokerOrder`, which ``trading/`` may not import.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from brokers.base import BrokerOrder
from trading import protective_limits
from trading.commands import Command, OrderType, TimeInForce


def broker_order(
    command: Command, quantity: int, trail_stop: Decimal | None, protective_limit: Decimal | None = None
) -> BrokerOrder:
    """The order the broker sees for ``command``, sized at ``quantity``. A TRAIL command goes out
    as a STP order at its initial stop ``trail_stop``; the Exit Manager trails it (see
    :mod:`hotpath.exit_manager`). Any other command keeps its own type (LMT when it names none).

    ``protective_limit`` (an entry's, :mod:`trading.protective_limits`; recorded in its ledger
    detail) bounds a MKT, STP or TRAIL: it goes out as a LMT, or a STP_LMT, at that limit."""
    assert command.symbol is not None and command.side is not None
    limit: Decimal | None
    stop: Decimal | None
    trail_amount: Decimal | None
    trail_percent: Decimal | None
    if trail_stop is not None:
        order_type, limit, stop, trail_amount, trail_percent = OrderType.STP, None, trail_stop, None, None
    else:
        order_type = command.order_type or OrderType.LMT
        limit, stop = command.limit_price, command.stop_price
        trail_amount, trail_percent = command.trail_amount, command.trail_percent
    bounded = protective_limits.sent_type(order_type, protective_limit)
    if bounded is not None and bounded is not order_type:
        order_type, limit = bounded, protective_limit
    return BrokerOrder(
        order_ref=command.command_id,
        account=command.account,
        symbol=command.symbol,
        side=command.side,
        quantity=quantity,
        order_type=order_type,
        tif=command.tif or TimeInForce.DAY,
        limit_price=limit,
        stop_price=stop,
        trailing_amount=trail_amount,
        trailing_percent=trail_percent,
    )


def ledgered_limit(command: Command, detail: Mapping[str, Any]) -> Decimal | None:
    """The protective limit an accepted entry's ledger ``detail`` records (None: the order went
    out as signed, as every order ledgered before protective limits did). Raises ValueError,
    ArithmeticError or TypeError when it is there but unreadable."""
    raw = detail.get(protective_limits.DETAIL_KEY)
    if raw is None or command.order_type not in protective_limits.BOUNDED_TYPES:
        return None
    if not isinstance(raw, str):
        raise TypeError(f"{protective_limits.DETAIL_KEY} {raw!r} is not a decimal string")
    limit = Decimal(raw)
    if not limit.is_finite() or limit <= 0:
        raise ValueError(f"{protective_limits.DETAIL_KEY} {raw!r} is not a positive price")
    return limit
