"""State lives at the venue: later clients, other client ids and the master client see it."""

from __future__ import annotations

from ib_async import IB, ExecutionFilter, LimitOrder, MarketOrder

from tests.fixtures.paper import PaperStack
from tests.helpers import eventually
from tests.paper.gateway.conftest import connected, quote, status_of, stock


async def test_executions_and_positions_recovered_by_a_later_connection(paper: PaperStack) -> None:
    # AMZN: a symbol the other suites sharing this stack leave alone, so the position moves
    # only with these fills.
    async with connected(paper.gateway_port, 41) as ib:
        contract = await stock(ib, "AMZN")
        before = {p.contract.symbol: p.position for p in await ib.reqPositionsAsync()}
        buys = [ib.placeOrder(contract, MarketOrder("BUY", 30)) for _ in range(2)]
        for trade in buys:
            await status_of(trade, {"Filled"})
        exec_ids = {f.execution.execId for t in buys for f in t.fills}
        sell = ib.placeOrder(contract, MarketOrder("SELL", 10))
        await status_of(sell, {"Filled"})
        sell_ids = {f.execution.execId for f in sell.fills}
    # A new session of the same client id gets them back during connect (startup sync) ...
    async with connected(paper.standby_port, 41) as ib:
        recovered = {f.execution.execId for f in ib.fills()}
        assert exec_ids | sell_ids <= recovered
        positions = {p.contract.symbol: p.position for p in ib.positions()}
        assert positions["AMZN"] == before.get("AMZN", 0) + 50
        # ... and filtered on request.
        sells = await ib.reqExecutionsAsync(ExecutionFilter(side="SELL", symbol="AMZN"))
        assert sell_ids <= {f.execution.execId for f in sells}
        assert not exec_ids & {f.execution.execId for f in sells}
        later = await ib.reqExecutionsAsync(ExecutionFilter(time="20991231 00:00:00"))
        assert later == []
    # The master client sees every client's executions; another client sees none of these.
    async with connected(paper.gateway_port, 0) as master, connected(paper.gateway_port, 42) as other:
        assert exec_ids <= {f.execution.execId for f in await master.reqExecutionsAsync()}
        assert not exec_ids & {f.execution.execId for f in await other.reqExecutionsAsync()}


async def test_open_orders_visible_to_owner_and_master_only(paper: PaperStack) -> None:
    async with (
        connected(paper.gateway_port, 43) as owner,
        connected(paper.gateway_port, 0) as master,
        connected(paper.gateway_port, 44) as other,
    ):
        contract = await stock(owner)
        bid, _ = await quote(owner, contract)
        trade = owner.placeOrder(contract, LimitOrder("BUY", 5, round(bid * 0.5, 2)))
        await status_of(trade, {"Submitted"})
        key = (43, trade.order.orderId)
        # The master client is told about it as it happens, like at IB.
        await eventually(lambda: any((t.order.clientId, t.order.orderId) == key for t in master.trades()))
        all_open = await other.reqAllOpenOrdersAsync()
        assert key in {(t.order.clientId, t.order.orderId) for t in all_open}
        own_open = await other.reqOpenOrdersAsync()
        assert key not in {(t.order.clientId, t.order.orderId) for t in own_open}
        owner.cancelOrder(trade.order)
        await status_of(trade, {"Cancelled"})
        await eventually(
            lambda: any(
                (t.order.clientId, t.order.orderId) == key and t.orderStatus.status == "Cancelled"
                for t in master.trades()
            )
        )


def _cash(ib: IB) -> str:
    return next(v.value for v in ib.accountValues() if v.tag == "TotalCashValue" and v.currency == "USD")


async def test_account_values_and_summary(paper: PaperStack) -> None:
    async with connected(paper.gateway_port, 45) as ib:
        values = {v.tag for v in ib.accountValues()}
        assert {"NetLiquidation", "TotalCashValue", "BuyingPower"} <= values
        summary = await ib.accountSummaryAsync()
        tags = {v.tag: v.value for v in summary}
        assert float(tags["NetLiquidation"]) > 0
        contract = await stock(ib)
        before = _cash(ib)
        trade = ib.placeOrder(contract, MarketOrder("BUY", 10))
        await status_of(trade, {"Filled"})
        # Cash moves with the fill, pushed to the reqAccountUpdates subscriber.
        await eventually(lambda: _cash(ib) != before)
        await eventually(lambda: any(p.contract.symbol == "AAPL" for p in ib.portfolio()))


async def test_completed_orders_recovered_after_reconnect(paper: PaperStack) -> None:
    async with connected(paper.gateway_port, 46) as ib:
        contract = await stock(ib)
        bid, _ = await quote(ib, contract)
        cancelled = ib.placeOrder(contract, LimitOrder("BUY", 3, round(bid * 0.5, 2), orderRef="cx-46"))
        filled = ib.placeOrder(contract, MarketOrder("BUY", 4, orderRef="fx-46"))
        await status_of(cancelled, {"Submitted"})
        ib.cancelOrder(cancelled.order)
        await status_of(cancelled, {"Cancelled"})
        await status_of(filled, {"Filled"})
    async with connected(paper.standby_port, 46) as ib:
        done = {t.order.orderRef: t for t in await ib.reqCompletedOrdersAsync(apiOnly=True)}
        assert done["cx-46"].orderStatus.status == "Cancelled"
        assert done["fx-46"].orderStatus.status == "Filled"
        assert done["fx-46"].order.permId == filled.order.permId
        assert done["fx-46"].order.filledQuantity == 4
        assert done["cx-46"].order.lmtPrice == round(bid * 0.5, 2)
