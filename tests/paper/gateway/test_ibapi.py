"""IB's official Python client (``ibapi``) against the same gateway: a second, independent
implementation of the protocol agreeing with ib_async is the evidence the wire format is right."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from ibapi.client import EClient
from ibapi.contract import Contract
from ibapi.execution import Execution, ExecutionFilter
from ibapi.order import Order
from ibapi.order_state import OrderState
from ibapi.wrapper import EWrapper

from tests.fixtures.paper import PaperStack
from tests.paper.gateway.conftest import HOST

WAIT = 10.0


class App(EWrapper, EClient):
    def __init__(self) -> None:
        EWrapper.__init__(self)
        EClient.__init__(self, self)
        self.lock = threading.Condition()
        self.next_id: int | None = None
        self.statuses: dict[int, list[tuple[str, Decimal, Decimal]]] = {}
        self.open_orders: dict[int, tuple[Order, OrderState]] = {}
        self.executions: dict[int, list[Execution]] = {}
        self.ended: set[int] = set()
        self.errors: list[tuple[int, int, str]] = []
        self.completed: list[tuple[Order, OrderState]] = []
        self.completed_end = False

    def wait_for(self, predicate: Callable[[], Any], what: str) -> Any:
        with self.lock:
            if not self.lock.wait_for(predicate, WAIT):
                raise AssertionError(f"timed out waiting for {what}; errors: {self.errors[-5:]}")
            return predicate()

    def _changed(self) -> None:
        with self.lock:
            self.lock.notify_all()

    def nextValidId(self, orderId: int) -> None:
        self.next_id = orderId
        self._changed()

    def orderStatus(self, orderId: int, status: str, filled: Decimal, remaining: Decimal, *rest: Any) -> None:
        self.statuses.setdefault(orderId, []).append((status, Decimal(filled), Decimal(remaining)))
        self._changed()

    def openOrder(self, orderId: int, contract: Contract, order: Order, orderState: OrderState) -> None:
        self.open_orders[orderId] = (order, orderState)
        self._changed()

    def execDetails(self, reqId: int, contract: Contract, execution: Execution) -> None:
        self.executions.setdefault(reqId, []).append(execution)
        self._changed()

    def completedOrder(self, contract: Contract, order: Order, orderState: OrderState) -> None:
        self.completed.append((order, orderState))
        self._changed()

    def completedOrdersEnd(self) -> None:
        self.completed_end = True
        self._changed()

    def execDetailsEnd(self, reqId: int) -> None:
        self.ended.add(reqId)
        self._changed()

    def error(self, reqId: int, errorTime: int, errorCode: int, errorString: str, *rest: Any) -> None:
        self.errors.append((reqId, errorCode, errorString))
        self._changed()

    def last_status(self, order_id: int) -> str | None:
        history = self.statuses.get(order_id)
        return history[-1][0] if history else None


@pytest.fixture
def app(paper: PaperStack) -> Iterator[App]:
    client = App()
    client.connect(HOST, paper.gateway_port, clientId=95)
    reader = threading.Thread(target=client.run, daemon=True)
    reader.start()
    yield client
    client.disconnect()
    reader.join(5)


def _aapl() -> Contract:
    contract = Contract()
    contract.symbol, contract.secType, contract.exchange, contract.currency = "AAPL", "STK", "SMART", "USD"
    return contract


def _order(action: str, qty: int, order_type: str, limit: float | None = None) -> Order:
    order = Order()
    order.action, order.totalQuantity, order.orderType = action, Decimal(qty), order_type
    if limit is not None:
        order.lmtPrice = limit
    # ibapi defaults these to True; real TWS refuses both (10268/10269), so clients clear them.
    order.eTradeOnly = False
    order.firmQuoteOnly = False
    return order


def test_official_client_places_modifies_cancels_and_reads_executions(app: App) -> None:
    first_id = app.wait_for(lambda: app.next_id, "nextValidId")
    assert app.serverVersion() == 178
    farm = {code for _, code, _ in app.errors}
    assert {2104, 2106, 2158} <= farm

    resting = first_id
    app.placeOrder(resting, _aapl(), _order("BUY", 100, "LMT", 100.00))
    app.wait_for(lambda: app.last_status(resting) == "Submitted", "resting order Submitted")
    order, state = app.open_orders[resting]
    assert order.lmtPrice == 100.0 and state.status == "Submitted" and order.permId > 0

    app.placeOrder(resting, _aapl(), _order("BUY", 200, "LMT", 100.05))
    app.wait_for(lambda: app.open_orders[resting][0].totalQuantity == Decimal(200), "modified quantity")
    assert app.open_orders[resting][0].lmtPrice == 100.05

    app.cancelOrder(resting, _cancel_args())
    app.wait_for(lambda: app.last_status(resting) == "Cancelled", "Cancelled")
    app.wait_for(lambda: (resting, 202) in {(r, c) for r, c, _ in app.errors}, "error 202")

    market = first_id + 1
    app.placeOrder(market, _aapl(), _order("BUY", 25, "MKT"))
    app.wait_for(lambda: app.last_status(market) == "Filled", "market order Filled")
    live = app.executions.get(-1, [])
    assert sum(e.shares for e in live if e.orderId == market) == Decimal(25)

    flt = ExecutionFilter()
    flt.symbol = "AAPL"
    app.reqExecutions(7001, flt)
    app.wait_for(lambda: 7001 in app.ended, "execDetailsEnd")
    queried = {e.execId for e in app.executions.get(7001, [])}
    assert {e.execId for e in live if e.orderId == market} <= queried

    app.reqCompletedOrders(True)
    app.wait_for(lambda: app.completed_end, "completedOrdersEnd")
    ended = {order.permId: state.status for order, state in app.completed}
    assert ended[app.open_orders[resting][0].permId] == "Cancelled"
    assert ended[app.open_orders[market][0].permId] == "Filled"


def _cancel_args() -> Any:
    from ibapi.order_cancel import OrderCancel

    return OrderCancel()
