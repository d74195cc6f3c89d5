"""reqGlobalCancel with a thousand orders open across client ids."""

from __future__ import annotations

from ib_async import LimitOrder

from config.ports import free_port
from tests.fixtures.paper import PaperStack
from tests.helpers import eventually
from tests.paper.gateway.conftest import HOST, connected, quote, stock


async def test_global_cancel_cancels_1000_open_orders_of_every_client(private_paper: PaperStack) -> None:
    # Pacing off on this gateway and in the client: 1,000 orders at IB's 50/s would take 20 s.
    port = free_port(HOST)
    private_paper.start_gateway("bulk", port, pacing=False)
    async with (
        connected(port, 81, throttle=False) as ib,
        connected(port, 82, throttle=False) as other,
    ):
        contract = await stock(ib)
        bid, _ = await quote(ib, contract)
        price = round(bid * 0.5, 2)
        trades = [ib.placeOrder(contract, LimitOrder("BUY", 1, price)) for _ in range(900)]
        other_contract = await stock(other)
        trades += [other.placeOrder(other_contract, LimitOrder("BUY", 1, price)) for _ in range(100)]
        await eventually(lambda: all(t.orderStatus.status == "Submitted" for t in trades), timeout=60)
        assert len({t.order.permId for t in trades}) == 1000
        status = await private_paper.acontrol("GET", "/status")
        assert status["open_orders"] >= 1000
        ib.reqGlobalCancel()
        await eventually(lambda: all(t.orderStatus.status == "Cancelled" for t in trades), timeout=60)
        status = await private_paper.acontrol("GET", "/status")
        assert status["open_orders"] == 0
        assert await ib.reqAllOpenOrdersAsync() == []
