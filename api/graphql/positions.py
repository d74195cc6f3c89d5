"""Positions for a caller: its accounts' fills folded by average cost, marked at the book's mid."""

from __future__ import annotations

from decimal import Decimal

from api.hub import Hub
from api.principals import Principal
from ledger.db import Db
from ledger.fills import fills_of
from trading.positions import PositionBook


def visible(principal: Principal) -> frozenset[str] | None:
    """The accounts ``principal`` may see; None for every account."""
    return None if "*" in principal.accounts else principal.accounts


async def position_book(db: Db, principal: Principal, account: str | None) -> tuple[PositionBook, set[str]]:
    """The caller's positions (of ``account`` only, if given) and the execution ids counted."""
    book = PositionBook()
    accounts = visible(principal) if account is None else frozenset({account})
    if account is not None and not principal.sees(account):
        return book, set()
    seen: set[str] = set()
    for exec_id, fill in await fills_of(db, accounts):
        seen.add(exec_id)
        book.apply(fill)
    return book, seen


def mid(hub: Hub, symbol: str) -> Decimal | None:
    """Halfway between the best bid and the best ask; None without both."""
    book = hub.book(symbol, 1)
    if book is None or not book.bids or not book.asks:
        return None
    return (book.bids[0][0] + book.asks[0][0]) / 2
