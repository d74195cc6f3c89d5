"""Live streams over ``graphql-transport-ws``, each fed by the hub's mailbox for this subscriber:
the order book (a snapshot, then sequenced deltas), the tape (a snapshot of the session's
trades, then each trade), order events and the positions they move
(only the caller's accounts), the breaker's state, and security events (ops only).

When the hub ends a stream (the subscriber fell behind its bounded mailbox, or the API is
stopping) the subscriber is sent one last result whose error's ``extensions.code`` names the
reason (``resync.overflow``, ``resync.hub_stopped``), then ``complete``: it must refetch and
subscribe again. Leaving (``complete`` from the client, a closed socket) closes the mailbox.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import TypeVar

import strawberry

from api.graphql.context import Info
from api.graphql.errors import BAD_ARGUMENT, Refused
from api.graphql.floor_types import Position, SecurityEvent
from api.graphql.market_types import BookUpdate, Breaker, book_update
from api.graphql.order_types import OrderEventNode
from api.graphql.positions import mid, position_book
from api.graphql.trade_types import TradeUpdate, trade_update
from api.hub import Hub
from api.mailboxes import ResyncRequired
from api.mailboxes import Subscription as Mailbox
from trading.commands import Side
from trading.order_events import OrderEvent
from trading.orders import Fill
from trading.positions import PositionFill
from trading.symbols import UNKNOWN_SYMBOL, unknown_symbol_detail

T = TypeVar("T")

MAX_DEPTH = 50


async def drained(mailbox: Mailbox[T]) -> AsyncIterator[T]:
    """The mailbox's items; its end by the hub becomes the named error; closed when left."""
    try:
        async for item in mailbox:
            yield item
    except ResyncRequired as exc:
        raise Refused(exc.reason, f"{exc.detail}: fetch the current state and subscribe again") from None
    finally:
        mailbox.close()


def traded(hub: Hub, symbol: str) -> str:
    """``symbol`` if the floor trades it (only those have books); else the named refusal, so a
    typo is told, not answered with a book that never fills."""
    if symbol not in hub.symbols:
        raise Refused(UNKNOWN_SYMBOL, unknown_symbol_detail(symbol, hub.symbols))
    return symbol


def _fill(event: OrderEvent, fill: Fill) -> PositionFill:
    return PositionFill(event.account, event.symbol, Side(event.side), fill.qty, fill.price)


@strawberry.type
class Subscription:
    @strawberry.subscription(description="A snapshot of the top `depth` levels a side, then deltas.")
    async def order_book(self, info: Info, symbol: str, depth: int = 10) -> AsyncGenerator[BookUpdate, None]:
        info.context.caller()
        if not 1 <= depth <= MAX_DEPTH:
            raise Refused(BAD_ARGUMENT, f"depth must be between 1 and {MAX_DEPTH} levels a side, got {depth}")
        hub = info.context.services.hub
        async for item in drained(hub.subscribe_book(traded(hub, symbol), depth)):
            yield book_update(item)

    @strawberry.subscription(
        description="The symbol's trades this session: a TradeTape, then each Trade in the venue's "
        "order. A TradeTape comes again at a new session or if the client fell behind (it counts "
        "every trade missed): replace what is held with it."
    )
    async def trades(self, info: Info, symbol: str) -> AsyncGenerator[TradeUpdate, None]:
        info.context.caller()
        hub = info.context.services.hub
        async for item in drained(hub.subscribe_trades(traded(hub, symbol))):
            yield trade_update(item)

    @strawberry.subscription(description="Order events from now on, of the accounts the caller sees.")
    async def order_events(
        self, info: Info, account: str | None = None, symbol: str | None = None
    ) -> AsyncGenerator[OrderEventNode, None]:
        principal = info.context.caller()

        def accept(event: OrderEvent) -> bool:
            return (
                principal.sees(event.account)
                and (account is None or event.account == account)
                and (symbol is None or event.symbol == symbol)
            )

        async for event in drained(info.context.services.hub.subscribe_order_events(accept)):
            yield OrderEventNode.of(event)

    @strawberry.subscription(
        description="The caller's positions now, then each position again whenever a fill moves it "
        "(P&L at the book's mid as of that fill)."
    )
    async def positions(self, info: Info, account: str | None = None) -> AsyncGenerator[Position, None]:
        principal = info.context.caller()
        if account is not None and not principal.sees(account):
            return
        services = info.context.services

        def accept(event: OrderEvent) -> bool:
            return (
                event.last_fill is not None
                and principal.sees(event.account)
                and (account is None or event.account == account)
            )

        # Subscribe before reading the fills so no fill falls between the two (one counted
        # twice is harmless: a fill already in the book is recognised by its execution id).
        mailbox = services.hub.subscribe_order_events(accept)
        book, seen = await position_book(services.db, principal, account)
        for position in book.positions.values():
            yield Position.of(position, mid(services.hub, position.symbol))
        async for event in drained(mailbox):
            if event.last_fill is None or event.last_fill.exec_id in seen:
                continue  # no execution, or one counted already (a record read twice)
            seen.add(event.last_fill.exec_id)
            position = book.apply(_fill(event, event.last_fill))
            yield Position.of(position, mid(services.hub, position.symbol))

    @strawberry.subscription(description="The breaker's state now, then each change.")
    async def breaker_state(self, info: Info) -> AsyncGenerator[Breaker, None]:
        info.context.caller()
        async for status in drained(info.context.services.hub.subscribe_breaker()):
            yield Breaker.of(status)

    @strawberry.subscription(description="Security events from now on (ops role only).")
    async def security_events(self, info: Info) -> AsyncGenerator[SecurityEvent, None]:
        info.context.ops("securityEvents")
        async for event in drained(info.context.services.hub.subscribe_security_events()):
            yield SecurityEvent.of(event)
