"""One broker over IBKR and Schwab, routing by account: each order goes to its account's broker,
cancels follow the order, a cancel-all reaches both, and the epochs the hot path sees are
numbered across both and reported one at a time, each naming its accounts."""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from brokers.base import (
    BrokerNotice,
    BrokerOrder,
    BrokerOrderStatus,
    EpochReconciled,
    OrderAccepted,
    OrderStatusChanged,
    OrderType,
    ReadOnlySession,
    SessionChanged,
    Side,
)
from brokers.by_account import ByAccountBroker
from brokers.ibkr import IbkrBroker, IbkrConfig
from brokers.schwab import SchwabBroker
from brokers.schwab_auth import LOGIN_REQUIRED
from tests.brokers.conftest import HOST
from tests.brokers.recorder import Recorder
from tests.brokers.schwab.conftest import below, config_for, ref
from tests.fixtures.paper import PaperStack
from tests.fixtures.schwab import SchwabApi

IB_ACCOUNT = "DU1234567"
_client_ids = itertools.count(1900)  # apart from every other suite's ids


@dataclass
class Routed:
    broker: ByAccountBroker
    events: Recorder
    schwab_account: str
    ib: IbkrBroker
    schwab: SchwabBroker


@contextlib.asynccontextmanager
async def routed_over(
    paper: PaperStack, schwab_api: SchwabApi, token_file: Path, *, ib_readonly: bool = False
) -> AsyncIterator[Routed]:
    """The venue's IB account through the paper gateway and the emulator's Schwab account, on
    the Schwab login ``token_file`` holds, behind one connected by-account broker."""
    ib = IbkrBroker(IbkrConfig(HOST, paper.gateway_port, client_id=next(_client_ids), readonly=ib_readonly))
    schwab = SchwabBroker(config_for(schwab_api, token_file))
    broker = ByAccountBroker(
        {"ibkr": ib, "schwab": schwab}, {IB_ACCOUNT: "ibkr", schwab_api.account_number: "schwab"}
    )
    events = Recorder()
    broker.set_event_handler(events)
    await broker.connect()
    try:
        yield Routed(broker, events, schwab_api.account_number, ib, schwab)
    finally:
        await broker.close()


@pytest.fixture
async def routed(paper: PaperStack, schwab_api: SchwabApi, tmp_path: Path) -> AsyncIterator[Routed]:
    async with routed_over(paper, schwab_api, schwab_api.new_token_file(tmp_path)) as routed:
        yield routed


def resting(account: str, price: object) -> BrokerOrder:
    return BrokerOrder(ref(), account, "MSFT", Side.BUY, 2, OrderType.LMT, limit_price=price)  # type: ignore[arg-type]


async def test_epochs_are_numbered_across_brokers_and_name_their_accounts(routed: Routed) -> None:
    await routed.events.next(EpochReconciled, epoch=2)
    changes = routed.events.of(SessionChanged)
    assert sorted(c.epoch for c in changes) == [1, 2]
    assert {c.accounts for c in changes} == {(IB_ACCOUNT,), (routed.schwab_account,)}
    # One epoch at a time: each broker's change is followed by its own listing before the next.
    sequence = [e for e in routed.events.events if isinstance(e, SessionChanged | EpochReconciled)]
    assert [type(e).__name__ for e in sequence] == ["SessionChanged", "EpochReconciled"] * 2
    assert sequence[0].accounts == sequence[1].accounts and sequence[2].accounts == sequence[3].accounts


async def test_orders_go_to_their_accounts_broker_and_cancel_all_reaches_both(
    routed: Routed, paper: PaperStack
) -> None:
    bid, _ = await paper.quote("MSFT")
    at_ib = resting(IB_ACCOUNT, below(bid))
    at_schwab = resting(routed.schwab_account, below(bid, "0.85"))
    ib_placement = routed.broker.place(at_ib)
    schwab_placement = routed.broker.place(at_schwab)
    assert ib_placement.session.startswith("primary") and schwab_placement.session == "schwab"
    await routed.events.next(OrderAccepted, order_ref=at_ib.order_ref)
    await routed.events.next(OrderAccepted, order_ref=at_schwab.order_ref)
    assert routed.broker.cancel_all() > 0
    for order in (at_ib, at_schwab):
        await routed.events.next(
            OrderStatusChanged, order_ref=order.order_ref, status=BrokerOrderStatus.CANCELLED
        )


async def test_cancel_all_reaches_every_broker_though_one_refuses(
    paper: PaperStack, schwab_api: SchwabApi, tmp_path: Path
) -> None:
    """The breaker's kill switch: an IB connection that may not write (market data only) raises
    on cancel_all, and Schwab's orders are cancelled all the same before the error is raised."""
    token_file = schwab_api.new_token_file(tmp_path)
    async with routed_over(paper, schwab_api, token_file, ib_readonly=True) as routed:
        bid, _ = await paper.quote("MSFT")
        at_schwab = resting(routed.schwab_account, below(bid, "0.85"))
        routed.broker.place(at_schwab)
        await routed.events.next(OrderAccepted, order_ref=at_schwab.order_ref)
        with pytest.raises(ReadOnlySession):
            routed.broker.cancel_all()
        await routed.events.next(
            OrderStatusChanged, order_ref=at_schwab.order_ref, status=BrokerOrderStatus.CANCELLED
        )


async def test_an_expired_schwab_login_holds_schwab_orders_and_ib_trades_on(
    paper: PaperStack, schwab_api: SchwabApi, tmp_path: Path
) -> None:
    expired = schwab_api.new_token_file(tmp_path, login_time=time.time() - 8 * 86400, access_ttl_s=0)
    async with routed_over(paper, schwab_api, expired) as routed:
        broker, events = routed.broker, routed.events
        notice = await events.next(BrokerNotice, ops_kind=LOGIN_REQUIRED)
        assert "schwab-generate-token.py" in notice.message
        assert routed.ib.connected and not routed.schwab.connected and not broker.connected
        bid, _ = await paper.quote("MSFT")
        held = resting(routed.schwab_account, below(bid))
        assert not broker.place(held).sent
        at_ib = resting(IB_ACCOUNT, below(bid))
        assert broker.place(at_ib).sent
        await events.next(OrderAccepted, order_ref=at_ib.order_ref)
        broker.cancel(at_ib.order_ref)
        await events.next(OrderStatusChanged, order_ref=at_ib.order_ref, status=BrokerOrderStatus.CANCELLED)
        assert broker.cancel(held.order_ref) == 0  # never sent: ended here
        await events.next(OrderStatusChanged, order_ref=held.order_ref, status=BrokerOrderStatus.CANCELLED)
