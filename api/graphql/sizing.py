"""``sizingSuggestion``: the Kelly-sized quantity and the Max Trade Size for an order ticket, as
the hot path would size it (:mod:`trading.sizing_suggestion`): the account's risk profile, the
net liquidation the hot path last had from the broker (``account_values``) and the touch of the
book the API holds, when it is fresh enough for the desk to price an order with."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import strawberry

from api.graphql.context import Info
from api.graphql.errors import BAD_ARGUMENT, Refused
from api.graphql.trading_mutations import OrderTicketInput, ticket_of
from ledger.account_values import net_liquidation
from ledger.risk_profiles import get_profile
from trading.arming_limits import fresh_touch, ticket_fill_range
from trading.order_ticket import TicketInvalid, parse_ticket
from trading.sizing_suggestion import EdgeInvalid, suggest
from trading.symbols import parse_symbols

NO_PROFILE = "risk.no_profile"


@strawberry.type(description="What Kelly and the risk profile allow for a ticket; nothing is staged.")
class SizingSuggestion:
    quantity: int = strawberry.field(description="Whole shares (0: no trade; binding says why).")
    max_trade_size: int = strawberry.field(
        description="Whole shares within Max Trade Size at the highest price the order can fill at."
    )
    binding: str = strawberry.field(
        description="kelly, max_trade_size or max_dollar_risk; else why no trade (sizing.no_edge, "
        "sizing.stop_required, sizing.no_bankroll, sizing.stale_bankroll, sizing.below_one_share, "
        "risk.stop_wrong_side, risk.no_reference_price)."
    )
    kelly_fraction: Decimal = strawberry.field(
        description="f* = p - (1 - p) / b of the claimed edge, before the profile's Kelly multiplier."
    )
    net_liquidation: Decimal | None = strawberry.field(
        description="The bankroll: the account's net liquidation as the hot path last had it (null: not yet);"
        " older than 10 s it is not sized with (binding sizing.stale_bankroll, its age in detail)."
    )
    detail: str = strawberry.field(description="How the figures were reached, in words.")


async def sizing_suggestion(
    info: Info, ticket: OrderTicketInput, win_probability: Decimal, payoff: Decimal | None
) -> SizingSuggestion:
    principal = info.context.caller()
    services = info.context.services
    terms = parse_ticket(
        ticket_of(ticket), symbols=parse_symbols(services.settings.hotpath_symbols), may_trade=principal.sees
    )
    if isinstance(terms, TicketInvalid):
        raise Refused(BAD_ARGUMENT, f"ticket.{terms.field}: {terms.reason}")
    profile = await get_profile(services.db, terms.account)
    if profile is None:
        raise Refused(
            NO_PROFILE, f"account {terms.account} has no risk profile: `floor risk set` gives it one"
        )
    bankroll = await net_liquidation(services.db, terms.account)
    now = datetime.now(UTC)
    touch = fresh_touch(
        services.hub.book(terms.symbol, 1),
        terms.side,
        now,
        timedelta(milliseconds=services.settings.desk_book_max_age_ms),
    )
    # Over the prices the hot path checks the manual order at: a market or stop order goes out
    # with a protective limit, and is sized at it.
    fills = ticket_fill_range(terms, touch, services.settings.market_collar_bps)
    try:
        suggestion = suggest(
            profile,
            terms,
            fills,
            bankroll=None if bankroll is None else bankroll.value,
            p=win_probability,
            b=payoff,
            bankroll_age=timedelta(0) if bankroll is None else now - bankroll.reported_at,
        )
    except EdgeInvalid as exc:
        raise Refused(BAD_ARGUMENT, f"{exc.field}: {exc.reason}") from None
    return SizingSuggestion(
        quantity=suggestion.quantity,
        max_trade_size=suggestion.max_trade_size,
        binding=suggestion.binding,
        kelly_fraction=suggestion.kelly_fraction,
        net_liquidation=None if bankroll is None else bankroll.value,
        detail=suggestion.detail,
    )
