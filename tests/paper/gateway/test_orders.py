"""Every order type through ib_async -> gateway -> venue and back, to its end state."""

from __future__ import annotations

from decimal import Decimal

from ib_async import LimitOrder, MarketOrder, Order, StopLimitOrder, StopOrder, Trade

from tests.fixtures.paper import PaperStack
from tests.helpers import eventually
from tests.paper.gateway.conftest import connected, quote, status_of, stock

FAR = 0.5
"""A limit this far (as a fraction) from the market never fills in a test's lifetime."""


def _filled_qty(trade: Trade) -> float:
    return sum(f.execution.shares for f in trade.fills)


async def test_market_order_fills_with_execution_and_commission(private_paper: PaperStack) -> None:
    async with connected(private_paper.gateway_port, 1) as ib:
        contract = await stock(ib)
        trade = ib.placeOrder(contract, MarketOrder("BUY", 100))
        await status_of(trade, {"Filled"})
        assert trade.orderStatus.filled == 100 and trade.orderStatus.remaining == 0
        assert trade.order.permId > 0
        await eventually(lambda: trade.fills and all(f.commissionReport.commission > 0 for f in trade.fills))
        assert _filled_qty(trade) == 100
        assert all(f.execution.side == "BOT" and f.execution.clientId == 1 for f in trade.fills)
        avg = sum(f.execution.shares * f.execution.price for f in trade.fills) / 100
        assert abs(avg - trade.orderStatus.avgFillPrice) < 1e-6


async def test_limit_order_rests_is_modified_and_cancelled(private_paper: PaperStack) -> None:
    async with connected(private_paper.gateway_port, 2) as ib:
        contract = await stock(ib)
        bid, _ = await quote(ib, contract)
        price = round(bid * (1 - FAR), 2)
        trade = ib.placeOrder(contract, LimitOrder("BUY", 100, price))
        await status_of(trade, {"Submitted"})
        perm_id = trade.order.permId
        codes: list[tuple[int, int]] = []
        ib.errorEvent += lambda req_id, code, *_: codes.append((req_id, code))
        modified: list[Trade] = []
        ib.openOrderEvent += modified.append
        trade.order.lmtPrice = round(price + 0.05, 2)
        trade.order.totalQuantity = 150
        ib.placeOrder(contract, trade.order)
        await eventually(lambda: trade.orderStatus.remaining == 150)
        await eventually(lambda: modified)
        assert trade.order.lmtPrice == round(price + 0.05, 2)
        assert trade.order.permId == perm_id
        ib.cancelOrder(trade.order)
        await status_of(trade, {"Cancelled"})
        assert trade.orderStatus.filled == 0
        await eventually(lambda: (trade.order.orderId, 202) in codes)


async def test_marketable_limit_fills_at_or_better_than_its_limit(private_paper: PaperStack) -> None:
    async with connected(private_paper.gateway_port, 3) as ib:
        contract = await stock(ib)
        _, ask = await quote(ib, contract)
        limit = round(ask * 1.01, 2)
        trade = ib.placeOrder(contract, LimitOrder("BUY", 50, limit))
        await status_of(trade, {"Filled"})
        assert all(f.execution.price <= limit for f in trade.fills)


async def test_ioc_and_gtc_time_in_force(private_paper: PaperStack) -> None:
    async with connected(private_paper.gateway_port, 4) as ib:
        contract = await stock(ib)
        bid, ask = await quote(ib, contract)
        ioc_miss = ib.placeOrder(contract, LimitOrder("BUY", 100, round(bid * (1 - FAR), 2), tif="IOC"))
        await status_of(ioc_miss, {"Cancelled"})
        assert ioc_miss.orderStatus.filled == 0
        ioc_hit = ib.placeOrder(contract, LimitOrder("BUY", 10, round(ask * 1.01, 2), tif="IOC"))
        await status_of(ioc_hit, {"Filled"})
        day = ib.placeOrder(contract, LimitOrder("BUY", 100, round(bid * (1 - FAR), 2), tif="DAY"))
        gtc = ib.placeOrder(contract, LimitOrder("BUY", 100, round(bid * (1 - FAR), 2), tif="GTC"))
        await status_of(day, {"Submitted"})
        await status_of(gtc, {"Submitted"})
        await private_paper.acontrol("POST", "/session/close", {})
        await status_of(day, {"Cancelled"})
        assert gtc.orderStatus.status == "Submitted"
        open_trades = await ib.reqOpenOrdersAsync()
        assert [t.order.tif for t in open_trades if t.order.orderId == gtc.order.orderId] == ["GTC"]
        ib.cancelOrder(gtc.order)
        await status_of(gtc, {"Cancelled"})


async def test_stops_whose_trigger_has_passed_fill_at_once(private_paper: PaperStack) -> None:
    """BUY stops with the stop at or below the last trade trigger on arrival and fill."""
    async with connected(private_paper.gateway_port, 5) as ib:
        contract = await stock(ib, "NVDA")
        _, ask = await quote(ib, contract)
        low = round(ask * 0.9, 2)
        stp = ib.placeOrder(contract, StopOrder("BUY", 100, low))
        stp_lmt = ib.placeOrder(contract, StopLimitOrder("BUY", 100, round(ask * 1.02, 2), low))
        trail_amount = ib.placeOrder(
            contract,
            Order(action="BUY", totalQuantity=100, orderType="TRAIL", auxPrice=1.0, trailStopPrice=low),
        )
        trail_pct = ib.placeOrder(
            contract,
            Order(
                action="BUY", totalQuantity=100, orderType="TRAIL", trailingPercent=1.0, trailStopPrice=low
            ),
        )
        for trade in (stp, stp_lmt, trail_amount, trail_pct):
            await status_of(trade, {"Filled"})
            assert sum(f.execution.shares for f in trade.fills) == 100
            assert all(f.execution.side == "BOT" for f in trade.fills)
        assert all(f.execution.price <= round(ask * 1.02, 2) for f in stp_lmt.fills)


async def test_sell_stops_wait_then_trigger_on_a_fall(private_paper: PaperStack) -> None:
    async with connected(private_paper.gateway_port, 9) as ib:
        contract = await stock(ib, "NVDA")
        buy = ib.placeOrder(contract, MarketOrder("BUY", 400))
        await status_of(buy, {"Filled"})
        bid, _ = await quote(ib, contract)
        stop = round(bid * 0.995, 2)
        limit = round(bid * 0.9, 2)
        stp = ib.placeOrder(contract, StopOrder("SELL", 100, stop))
        stp_lmt = ib.placeOrder(contract, StopLimitOrder("SELL", 100, limit, stop))
        trail_amount = ib.placeOrder(
            contract,
            Order(action="SELL", totalQuantity=100, orderType="TRAIL", auxPrice=round(bid * 0.005, 2)),
        )
        trail_pct = ib.placeOrder(
            contract, Order(action="SELL", totalQuantity=100, orderType="TRAIL", trailingPercent=0.5)
        )
        stops = [stp, stp_lmt, trail_amount, trail_pct]
        for trade in stops:
            await status_of(trade, {"PreSubmitted"})
        triggered: set[int] = set()

        def on_status(t: Trade) -> None:
            if t.orderStatus.status == "Submitted":
                triggered.add(t.order.orderId)

        for trade in stops:
            trade.statusEvent += on_status
        await private_paper.acontrol("POST", "/symbols/NVDA/move", {"pct": -2, "ms": 1000})
        for trade in stops:
            await status_of(trade, {"Filled", "Cancelled"})
        # A stop triggered by the move sells into the re-quoted book, not the side it swept.
        assert [t.orderStatus.status for t in stops] == ["Filled"] * len(stops)
        # Each stop went live (Submitted) once the price fell through it, and sold no higher.
        assert triggered == {t.order.orderId for t in stops}
        assert all(f.execution.price <= stop for f in stp.fills)
        assert all(f.execution.price >= limit for f in stp_lmt.fills)
        assert stp_lmt.orderStatus.status == "Filled"


async def test_partial_fills_then_rest(private_paper: PaperStack) -> None:
    await private_paper.acontrol("POST", "/clock", {"paused": True})
    try:
        async with connected(private_paper.gateway_port, 6) as ib:
            contract = await stock(ib, "NVDA")
            ticker = ib.reqMktDepth(contract, numRows=1)
            await eventually(lambda: ticker.domAsks)
            best = ticker.domAsks[0]
            qty = int(best.size) + 100
            trade = ib.placeOrder(contract, LimitOrder("BUY", qty, best.price))
            status = trade.orderStatus
            await eventually(lambda: status.filled == best.size and status.remaining == 100)
            assert trade.orderStatus.status == "Submitted"
            assert _filled_qty(trade) == best.size
            assert Decimal(str(trade.orderStatus.avgFillPrice)) == Decimal(str(best.price))
            ib.cancelOrder(trade.order)
            await status_of(trade, {"Cancelled"})
            assert trade.orderStatus.filled == best.size
            ib.cancelMktDepth(contract)
    finally:
        await private_paper.acontrol("POST", "/clock", {"paused": False})


async def test_rejects_carry_ib_codes(private_paper: PaperStack) -> None:
    async with connected(private_paper.gateway_port, 7) as ib:
        contract = await stock(ib)
        codes: dict[int, int] = {}
        ib.errorEvent += lambda req_id, code, *_: codes.setdefault(req_id, code)
        fractional = ib.placeOrder(contract, LimitOrder("BUY", 0.5, 1.00))
        unsupported = ib.placeOrder(contract, Order(action="BUY", totalQuantity=1, orderType="MOC"))
        off_tick = ib.placeOrder(contract, LimitOrder("BUY", 1, 1.001))
        ids = {fractional.order.orderId, unsupported.order.orderId, off_tick.order.orderId}
        await eventually(lambda: ids <= set(codes))
        assert codes[fractional.order.orderId] == 201
        assert codes[unsupported.order.orderId] == 387
        assert codes[off_tick.order.orderId] == 110
        # A reused order id is refused with 103 and leaves the original alone.
        bid, _ = await quote(ib, contract)
        resting = ib.placeOrder(contract, LimitOrder("BUY", 1, round(bid * (1 - FAR), 2)))
        await status_of(resting, {"Submitted"})
        reused = fractional.order.orderId
        ib.client.placeOrder(reused, contract, LimitOrder("BUY", 1, round(bid * (1 - FAR), 2)))
        ib.cancelOrder(resting.order)
        await status_of(resting, {"Cancelled"})


async def test_cancel_of_unknown_order_gets_10147(private_paper: PaperStack) -> None:
    async with connected(private_paper.gateway_port, 8) as ib:
        codes: list[tuple[int, int]] = []
        ib.errorEvent += lambda req_id, code, *_: codes.append((req_id, code))
        ib.client.cancelOrder(987654, "")
        await eventually(lambda: (987654, 10147) in codes)


async def test_what_if_reports_margin_and_commission_without_placing(private_paper: PaperStack) -> None:
    async with connected(private_paper.gateway_port, 10) as ib:
        contract = await stock(ib, "MSFT")
        before = (await private_paper.acontrol("GET", "/status"))["open_orders"]
        bid, ask = await quote(ib, contract)
        state = await ib.whatIfOrderAsync(contract, LimitOrder("BUY", 1000, round(bid * 0.5, 2)))
        mid = (bid + ask) / 2
        # 25% initial margin on the new position at the mark; fixed-rate commission 0.005/share.
        assert abs(float(state.initMarginChange) - 0.25 * 1000 * mid) < 0.25 * 1000 * 0.05
        after = Decimal(state.initMarginBefore) + Decimal(state.initMarginChange)
        assert Decimal(state.initMarginAfter) == after
        assert state.commission == 5.0 and state.commissionCurrency == "USD"
        assert float(state.equityWithLoanChange) == -5.0
        assert (await private_paper.acontrol("GET", "/status"))["open_orders"] == before
        assert not [t for t in ib.openTrades() if t.order.totalQuantity == 1000]
