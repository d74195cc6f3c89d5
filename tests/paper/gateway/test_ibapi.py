"""IB's official Python client (``ibapi``) against the same gateway: a second, independent
implementation of the protocol agreeing with ib_async is the evidence the wire format is right."""

from __future__ import annotations

import contextlib
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
        self.strings: list[tuple[int, int, str]] = []

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

    def tickString(self, reqId: int, tickType: int, value: str) -> None:
        self.strings.append((reqId, tickType, value))
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


@contextlib.contextmanager
def running(paper: PaperStack, client_id: int) -> Iterator[App]:
    client = App()
    client.connect(HOST, paper.gateway_port, clientId=client_id)
    reader = threading.Thread(target=client.run, daemon=True)
    reader.start()
    try:
        yield client
    finally:
        client.disconnect()
        reader.join(5)


@pytest.fixture
def app(paper: PaperStack) -> Iterator[App]:
    with running(paper, 95) as client:
        yield client


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


@pytest.fixture
def tape_app(paper: PaperStack) -> Iterator[App]:
    with running(paper, 96) as client:
        yield client


def test_official_client_gets_each_trade_as_an_rtvolume_tick_when_it_asks_for_generic_tick_233(
    tape_app: App, paper: PaperStack
) -> None:
    app = tape_app
    status = paper.control("GET", "/status")
    usual = next(row for row in status["symbols"] if row["symbol"] == "JPM")["event_rate"]
    contract = _aapl()
    contract.symbol = "JPM"
    paper.control("POST", "/symbols/JPM/rate", {"rate": 400})
    try:
        app.reqMktData(7001, contract, "", False, False, [])  # no 233: no RTVolume
        app.reqMktData(7002, contract, "233", False, False, [])
        app.wait_for(lambda: sum((r, t) == (7002, 48) for r, t, _ in app.strings) >= 8, "8 RTVolume ticks")
    finally:
        paper.control("POST", "/symbols/JPM/rate", {"rate": usual})
        app.cancelMktData(7001)
        app.cancelMktData(7002)
    # The ticks received so far, taken before the tape is read: each of them traded before the
    # read, so the tape holds it. The cancels are not awaited (the API has no reply to them), so a
    # busy gateway may still send ticks for trades that come after the read.
    values = [v for r, t, v in list(app.strings) if (r, t) == (7002, 48)]
    prints = {p["volume"]: p for p in paper.control("GET", "/symbols/JPM/tape")["prints"]}
    assert not [s for s in app.strings if s[0] == 7001 and s[1] == 48]
    assert len(values) >= 8
    previous = None
    for value in values:
        price, size, millis, volume, vwap, single = value.split(";")
        venue = prints[int(volume)]
        assert (price, int(size)) == (venue["price"], venue["size"])
        assert int(millis) == venue["time_ns"] // 1_000_000
        assert (vwap, single) == (venue["vwap"], "true")
        if previous is not None:
            assert int(volume) == previous + int(size), "each trade once, in order"
        previous = int(volume)
