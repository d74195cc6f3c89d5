"""The Schwab adapter's session against an emulator of the module's own: the streamer dropped
and logged in again (a new epoch, reconciled, held orders sent, books after a gap), an access
token refused early, and the breaker's cancel of every order, nearest the market first."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from brokers.base import (
    BrokerOrderStatus,
    DepthSnapshot,
    EpochReconciled,
    OrderAccepted,
    OrderStatusChanged,
    SessionChange,
    SessionChanged,
)
from brokers.schwab import SchwabBroker
from brokers.schwab_orders import RequestBudget
from tests.brokers.recorder import Recorder
from tests.brokers.schwab.conftest import Adapter, below, config_for
from tests.brokers.schwab.test_schwab_lost_answer import LosingAnswers
from tests.fixtures.paper import PaperStack
from tests.fixtures.schwab import SchwabApi
from tests.helpers import eventually


@pytest.fixture
async def own(private_schwab_api: SchwabApi, tmp_path: Path) -> AsyncIterator[Adapter]:
    api = private_schwab_api
    broker = SchwabBroker(config_for(api, api.new_token_file(tmp_path)))
    events = Recorder()
    broker.set_event_handler(events)
    await broker.connect()
    try:
        yield Adapter(broker, events, api.account_number)
    finally:
        await broker.close()


async def test_streamer_drop_holds_orders_and_relogin_reconciles_then_sends_them(
    own: Adapter, private_schwab_api: SchwabApi, paper: PaperStack
) -> None:
    books: list[DepthSnapshot] = []
    await own.broker.subscribe_depth("MSFT", books.append)
    await eventually(lambda: bool(books), timeout=5.0)
    seen = len(books)
    await private_schwab_api.stream_fault(refuse_logins_s=1.0, drop=True)
    down = await own.events.next(SessionChanged, change=SessionChange.DISCONNECTED)
    assert down.epoch == 1 and not own.broker.connected
    bid, _ = await paper.quote("MSFT")
    order = own.limit(below(bid))
    assert not own.broker.place(order).sent  # held while the session is down
    up = await own.events.next(SessionChanged, change=SessionChange.RECONNECTED, timeout=10.0)
    assert up.epoch == 2
    listing = await own.events.next(EpochReconciled, epoch=2)
    assert order.order_ref not in {o.order_ref for o in listing.open_orders}  # sent after it
    await own.events.next(OrderAccepted, order_ref=order.order_ref)
    await eventually(lambda: any(b.gap for b in books[seen:]), timeout=5.0)
    own.broker.cancel(order.order_ref)
    await own.events.next(OrderStatusChanged, order_ref=order.order_ref, status=BrokerOrderStatus.CANCELLED)


async def test_access_token_refused_early_is_refreshed_and_orders_go_on(
    own: Adapter, private_schwab_api: SchwabApi, paper: PaperStack
) -> None:
    await private_schwab_api.expire_access_tokens()
    bid, _ = await paper.quote("MSFT")
    order = own.limit(below(bid))
    own.broker.place(order)  # answered 401, held, sent again once the token is refreshed
    await own.events.next(OrderAccepted, order_ref=order.order_ref, timeout=10.0)
    assert own.broker.connected
    assert not own.events.of(SessionChanged, change=SessionChange.DISCONNECTED)
    own.broker.cancel(order.order_ref)
    await own.events.next(OrderStatusChanged, order_ref=order.order_ref, status=BrokerOrderStatus.CANCELLED)


async def test_cancel_all_cancels_each_order_nearest_the_market_first(
    own: Adapter, paper: PaperStack
) -> None:
    bid, _ = await paper.quote("MSFT")
    shares = ("0.70", "0.90", "0.80", "0.95", "0.75")
    orders = [own.limit(below(bid, share)) for share in shares]
    for order in orders:
        own.broker.place(order)
    for order in orders:
        await own.events.next(OrderAccepted, order_ref=order.order_ref)
    await own.broker.subscribe_quotes("MSFT", lambda _: None)
    await eventually(lambda: own.broker.market.mid("MSFT") is not None, timeout=5.0)
    assert own.broker.cancel_all() > 0
    for order in orders:
        await own.events.next(
            OrderStatusChanged, order_ref=order.order_ref, status=BrokerOrderStatus.CANCELLED
        )
    by_write = sorted(orders, key=lambda o: own.broker.last_write_ns(o.order_ref))
    assert [o.limit_price for o in by_write] == sorted((o.limit_price for o in orders), reverse=True)


def test_request_budget_holds_a_sliding_minute() -> None:
    now = [0.0]
    budget = RequestBudget(3, clock=lambda: now[0])
    assert [budget.try_take() for _ in range(4)] == [True, True, True, False]
    now[0] = 30.0
    assert not budget.try_take() and 30.0 < budget.wait_s() <= 30.25
    now[0] = 60.3
    assert budget.try_take() and budget.used() == 1
    budget.block(5.0)
    assert not budget.try_take() and budget.wait_s() == pytest.approx(5.0)
    assert Decimal(budget.per_min) == 3


async def test_an_epoch_whose_reconciliation_failed_is_ended_before_the_next_starts(
    private_schwab_api: SchwabApi, tmp_path: Path
) -> None:
    """The by-account broker passes one broker's epoch on whole, start to reconciliation or
    end, before another's: an epoch left open would hold every other broker's back."""
    api = private_schwab_api
    broker = SchwabBroker(config_for(api, api.new_token_file(tmp_path)))
    events = Recorder()
    broker.set_event_handler(events)
    await broker.connect()
    session = broker.ctx.client.session
    transport = LosingAnswers(session._transport)
    session._transport = transport
    try:
        transport.block_reads = True  # the listing of a new epoch fails
        await api.stream_fault(drop=True)
        opened = await events.next(SessionChanged, change=SessionChange.RECONNECTED, timeout=10.0)
        after = await events.next(
            SessionChanged, timeout=10.0, where=lambda e: e.time > opened.time and e is not opened
        )
        assert after.change is SessionChange.DISCONNECTED and after.epoch == opened.epoch
        transport.block_reads = False
        await events.next(EpochReconciled, timeout=15.0, where=lambda e: e.epoch > opened.epoch)
    finally:
        await broker.close()
