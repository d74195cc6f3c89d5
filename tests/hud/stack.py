"""What the HUD's browser tests run against besides the browser: a trader as ``floor traders add``
makes one (its enrolment link and its signing key), and a handle on the paper venue that moves
its market. Plain functions and classes, no pytest fixtures (``bench.hud_render`` uses them too)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import asyncpg

from config.settings import FloorSettings
from tests.fixtures.desk import give_signing_key
from tests.fixtures.identity import new_trader
from tests.fixtures.paper import PaperStack
from trading.authorization import trader_agent_id

VENUE_ACCOUNT = "DU1234567"
"""The paper venue's account: the one with a net liquidation the sizer and risk gate read."""
HUD_SYMBOLS = ("AAPL", "MSFT")
"""What the tests' hot path streams and trades (its ``SYMBOLS``), and so what the API allows."""
DEPTH_ROWS = 10
"""Levels a side the hot path's depth subscription asks the gateway for (TWS's usual 10): the
venue's book beyond them never reaches ``market.depth``, so the ladder cannot draw it."""

Levels = list[tuple[Decimal, int]]


@dataclass(frozen=True)
class HudTrader:
    name: str
    accounts: tuple[str, ...]
    enrolment_token: str

    @property
    def agent_id(self) -> str:
        """The trader's signing key's agent id: the ledger names it on the trader's orders."""
        return trader_agent_id(self.name)

    @property
    def account(self) -> str:
        return self.accounts[0]


async def new_hud_trader(
    cli_pool: asyncpg.Pool,
    ledger_pool: asyncpg.Pool,
    settings: FloorSettings,
    *,
    accounts: tuple[str, ...] = (VENUE_ACCOUNT,),
    step_up_every_order: bool = False,
) -> HudTrader:
    """What ``floor traders add NAME --accounts ...`` makes: the trader, a one-time enrolment
    link's token (the browser registers the passkey) and its signing key."""
    trader = await new_trader(cli_pool, accounts=accounts, step_up_every_order=step_up_every_order)
    await give_signing_key(ledger_pool, settings, trader.name, accounts)
    return HudTrader(trader.name, accounts, trader.enrolment_token)


@dataclass
class Venue:
    """The paper venue the HUD's hot path trades, driven through its control API (as ``floor
    paper`` drives it): crash or move a price, change the rate of depth updates, read the quote.
    ``restore()`` puts every price it moved back where it was first seen."""

    paper: PaperStack
    _start_mid: dict[str, Decimal] = field(default_factory=dict)

    async def status(self) -> dict[str, Any]:
        status: dict[str, Any] = await self.paper.acontrol("GET", "/status")
        return status

    async def symbol(self, symbol: str) -> dict[str, Any]:
        """``bid``, ``ask``, ``mid``, ``last`` (decimal strings), ``volume``, ``seq`` of one symbol."""
        row: dict[str, Any] = next(s for s in (await self.status())["symbols"] if s["symbol"] == symbol)
        return row

    async def quote(self, symbol: str) -> tuple[Decimal, Decimal]:
        """The best bid and ask now."""
        return await self.paper.quote(symbol)

    async def depth(self, symbol: str) -> tuple[Levels, Levels]:
        """The venue's own book now, every level, best first: (bids, asks) of (price, size)."""
        book = await self.paper.acontrol("GET", f"/symbols/{symbol}/depth")
        return (
            [(Decimal(level["price"]), level["size"]) for level in book["bids"]],
            [(Decimal(level["price"]), level["size"]) for level in book["asks"]],
        )

    @asynccontextmanager
    async def frozen(self) -> AsyncIterator[None]:
        """The market clock paused inside the block: no order flow, the book holds still."""
        await self.paper.acontrol("POST", "/clock", {"paused": True})
        try:
            yield
        finally:
            await self.paper.acontrol("POST", "/clock", {"paused": False})

    async def mid(self, symbol: str) -> Decimal:
        return Decimal((await self.symbol(symbol))["mid"])

    async def open_orders(self) -> int:
        """Orders working at the venue, every account's."""
        return await self.paper.open_orders()

    async def _remember(self, symbol: str) -> None:
        if symbol not in self._start_mid:
            self._start_mid[symbol] = await self.mid(symbol)

    async def move(self, symbol: str, pct: Decimal | str | float, ms: float = 0) -> None:
        """Move the price by ``pct`` percent over ``ms`` (the order flow follows it, and takes
        resting orders the move crosses)."""
        await self._remember(symbol)
        await self.paper.acontrol("POST", f"/symbols/{symbol}/move", {"pct": str(pct), "ms": ms})

    async def flash_crash(self, symbol: str, pct: Decimal | str | float = 15, ms: float = 300) -> None:
        """Drop the price by ``pct`` percent over ``ms``: beyond the breaker's threshold (10 %)
        the hot path trips, cancels every open order and halts."""
        await self._remember(symbol)
        await self.paper.acontrol("POST", f"/symbols/{symbol}/flash-crash", {"pct": str(pct), "ms": ms})

    async def set_rate(self, symbol: str | None, rate: float) -> None:
        """Model events (depth updates) a second for ``symbol``, or every symbol if None."""
        path = "/rate" if symbol is None else f"/symbols/{symbol}/rate"
        await self.paper.acontrol("POST", path, {"rate": rate})

    async def restore(self) -> None:
        """Move every price this handle moved back to its first-seen mid, at once."""
        for symbol, mid in self._start_mid.items():
            now = await self.mid(symbol)
            if now != mid:
                pct = ((mid / now - 1) * 100).quantize(Decimal("0.0001"))
                await self.paper.acontrol("POST", f"/symbols/{symbol}/move", {"pct": str(pct), "ms": 0})
        self._start_mid.clear()
