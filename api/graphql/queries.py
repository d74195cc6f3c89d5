"""The root query: orders (paged, filtered, only the caller's accounts), one order with its
history, ledger entry and iceberg progress, an order's trace, positions with P&L, the breaker,
the caller, and security events (ops only)."""

from __future__ import annotations

from decimal import Decimal

import strawberry

from api.graphql.context import Info
from api.graphql.errors import BAD_ARGUMENT, Refused
from api.graphql.floor_types import Me, Position, SecurityEvent
from api.graphql.market_types import BookSnapshot, Breaker
from api.graphql.order_types import Order, OrderState
from api.graphql.pagination import Connection, connection, decode_cursor, page_size
from api.graphql.positions import mid, position_book, visible
from api.graphql.sizing import SizingSuggestion, sizing_suggestion
from api.graphql.subscriptions import MAX_DEPTH, traded
from api.graphql.traces import OrderTrace, order_trace
from api.graphql.trading_mutations import OrderTicketInput, Staged
from api.hub_feeds import NEVER_TRIPPED
from api.principals import Principal
from api.staged_orders import open_staged
from ledger.db import Db
from ledger.iceberg_parents import load_parent, slice_states
from ledger.order_entries import entries_of
from ledger.order_pages import ListedOrder, OrderFilter, order_page, orders_by_id, orders_of_parent
from ledger.security_events import security_events_page
from trading.commands import CommandKind
from trading.iceberg_parents import parent_workflow_id
from trading.orders import OrderState as OrderStateEnum

ORDERS = "orders"
STAGED_SHOWN = 200
SECURITY_EVENTS = "security-events"


async def order_by_id(db: Db, principal: Principal, command_id: str) -> Order | None:
    listed = (await orders_by_id(db, [command_id])).get(command_id)
    if listed is not None:
        return Order.of(listed) if principal.sees(listed.first.account) else None
    entry = (await entries_of(db, [command_id])).get(command_id)
    if entry is None or entry.kind != CommandKind.ICEBERG.value or entry.account is None:
        return None
    if not principal.sees(entry.account):
        return None
    parent = await load_parent(db, command_id)
    if parent is None:
        return None
    workflow_id = parent_workflow_id(command_id)
    slices = await orders_of_parent(db, workflow_id)
    return Order.parent(parent, entry, slices, await slice_states(db, workflow_id))


@strawberry.type
class Query:
    @strawberry.field(description="Orders newest first, only of the accounts the caller sees.")
    async def orders(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        state: list[OrderState] | None = None,  # type: ignore[valid-type]
        symbol: str | None = None,
        agent: str | None = None,
        account: str | None = None,
    ) -> Connection[Order]:
        principal = info.context.caller()
        size = page_size(first)
        before = decode_cursor(ORDERS, after)
        flt = OrderFilter(
            visible=visible(principal),
            account=account,
            symbol=symbol,
            agent=agent,
            states=None if state is None else frozenset(OrderStateEnum(s) for s in state),
        )
        page, more = await order_page(info.context.services.db, flt, size, before)
        return connection(ORDERS, page, _key, Order.of, has_next=more, after=before)

    @strawberry.field(description="One order (null if unknown or on an account the caller does not see).")
    async def order(self, info: Info, id: strawberry.ID) -> Order | None:
        return await order_by_id(info.context.services.db, info.context.caller(), str(id))

    @strawberry.field(
        description="The spans of a command's trace (from the door or intake to each fill), as a tree"
        " with durations; null if the floor has none or the caller may not see the order."
    )
    async def order_trace(self, info: Info, command_id: str) -> OrderTrace | None:
        return await order_trace(info, command_id)

    @strawberry.field(description="Positions from the fills, with P&L at the book's mid.")
    async def positions(self, info: Info, account: str | None = None) -> list[Position]:
        services = info.context.services
        book, _ = await position_book(services.db, info.context.caller(), account)
        return [Position.of(book.positions[key], mid(services.hub, key[1])) for key in sorted(book.positions)]

    @strawberry.field(description="The top `depth` levels a side of a symbol's book (null: no book yet).")
    async def book(self, info: Info, symbol: str, depth: int = 10) -> BookSnapshot | None:
        info.context.caller()
        if not 1 <= depth <= MAX_DEPTH:
            raise Refused(BAD_ARGUMENT, f"depth must be between 1 and {MAX_DEPTH} levels a side, got {depth}")
        hub = info.context.services.hub
        snapshot = hub.book(traded(hub, symbol), depth)
        return None if snapshot is None else BookSnapshot.of(snapshot)

    @strawberry.field(description="The circuit breaker's state.")
    async def breaker(self, info: Info) -> Breaker:
        info.context.caller()
        return Breaker.of(info.context.services.hub.breaker() or NEVER_TRIPPED)

    @strawberry.field(description="The caller.")
    async def me(self, info: Info) -> Me:
        return Me.of(info.context.caller())

    @strawberry.field(
        description="The Kelly-sized quantity and the Max Trade Size for a ticket (nothing is staged): "
        "the account's risk profile, the net liquidation the hot path last had from the broker, and "
        "the book's touch. winProbability in (0, 1); payoff: average win / loss to the stop "
        "(default 1); the ticket's stopLoss is the edge's stop."
    )
    async def sizing_suggestion(
        self,
        info: Info,
        ticket: OrderTicketInput,
        win_probability: Decimal,
        payoff: Decimal | None = None,
    ) -> SizingSuggestion:
        return await sizing_suggestion(info, ticket, win_probability, payoff)

    @strawberry.field(
        description="The session's live staged orders (not executed, discarded or expired), newest"
        f" first (at most "
        f"{STAGED_SHOWN}); empty for a program."
    )
    async def staged_orders(self, info: Info) -> list[Staged]:
        principal = info.context.caller()
        session_id = principal.trader_session
        if session_id is None:
            return []
        services = info.context.services
        staged = await open_staged(
            services.db, principal.name, session_id, STAGED_SHOWN, services.settings.staged_ttl_s
        )
        return [Staged.of(s.staged_id, s.terms, s.order_hash, s.created_at) for s in staged]

    @strawberry.field(description="Security events newest first (ops role only).")
    async def security_events(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[SecurityEvent]:
        info.context.ops("securityEvents")
        size = page_size(first)
        before = decode_cursor(SECURITY_EVENTS, after)
        events, more = await security_events_page(info.context.services.db, first=size, before=before)
        return connection(
            SECURITY_EVENTS, events, lambda e: e.id or 0, SecurityEvent.of, has_next=more, after=before
        )


def _key(order: ListedOrder) -> int:
    return order.key
