"""Account, order, execution and position queries, asked fresh from the active session."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from ib_async import ExecutionFilter

from brokers import ib_convert as cv
from brokers.base import Executed, NotConnected, OpenOrder, Position
from brokers.ib_event_translator import EventTranslator
from brokers.ib_router import Router


class Queries:
    def __init__(self, router: Router, translator: EventTranslator) -> None:
        self._router = router
        self._translator = translator

    async def net_liquidation(self, account: str) -> Decimal:
        net_liq = self._translator.net_liq
        if account in net_liq:
            return net_liq[account]
        ib = self._router.query_ib()
        for value in await ib.accountSummaryAsync(account):
            self._translator.on_account_value(value)
        if account not in net_liq:
            raise NotConnected(f"the broker has not reported NetLiquidation for {account}")
        return net_liq[account]

    async def open_orders(self) -> list[OpenOrder]:
        """Working orders of every client on the account."""
        return cv.working_orders(await self._router.query_ib().reqAllOpenOrdersAsync())

    async def executions(self, since: datetime | None = None) -> list[Executed]:
        fills = await self._router.query_ib().reqExecutionsAsync(ExecutionFilter())
        out = [cv.executed(f) for f in fills]
        return [e for e in out if since is None or e.time >= since]

    async def positions(self) -> list[Position]:
        ib = self._router.query_ib()
        # The request's own list also collects the streamed updates that arrive while it is
        # open (a fill's position push), so one symbol can appear twice; ib_async's position
        # map, refreshed by the request, holds exactly one entry per account and contract.
        await ib.reqPositionsAsync()
        return [
            Position(
                account=p.account,
                symbol=p.contract.symbol,
                quantity=cv.shares(p.position),
                avg_cost=cv.money(p.avgCost),
            )
            for p in ib.positions()
        ]
