"""The Schwab login's end: a refresh token Schwab refuses stops the adapter with an error that
says how to log in again, and a notice the hot path records as ``schwab.login_required``."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import pytest

from brokers.base import BrokerNotice, BrokerOrderStatus, SessionChange, SessionChanged
from brokers.schwab import LoginRequired, SchwabBroker
from brokers.schwab_auth import LOGIN_REQUIRED
from tests.brokers.recorder import Recorder
from tests.brokers.schwab.conftest import Adapter, below, config_for
from tests.fixtures.paper import PaperStack
from tests.fixtures.schwab import SchwabApi
from tests.helpers import eventually

EIGHT_DAYS_S = 8 * 86400


async def test_connect_with_a_login_older_than_seven_days_raises_login_required(
    schwab_api: SchwabApi, tmp_path: Path
) -> None:
    token = schwab_api.new_token_file(tmp_path, login_time=time.time() - EIGHT_DAYS_S, access_ttl_s=0)
    broker = SchwabBroker(config_for(schwab_api, token))
    events = Recorder()
    broker.set_event_handler(events)
    with pytest.raises(LoginRequired) as raised:
        await broker.connect()
    await broker.close()
    message = str(raised.value)
    assert "schwab-generate-token.py" in message and str(token) in message
    notice = events.of(BrokerNotice, ops_kind=LOGIN_REQUIRED)
    assert len(notice) == 1 and notice[0].severity == "critical"
    assert not broker.connected


async def test_refresh_refused_while_running_stops_orders_and_says_so_once(
    private_schwab_api: SchwabApi, paper: PaperStack, tmp_path: Path
) -> None:
    api = private_schwab_api
    broker = SchwabBroker(config_for(api, api.new_token_file(tmp_path)))
    events = Recorder()
    broker.set_event_handler(events)
    await broker.connect()
    adapter = Adapter(broker, events, api.account_number)
    try:
        await api.expire_refresh_token()
        await api.expire_access_tokens()  # the next request refreshes, and is refused
        notice = await events.next(BrokerNotice, ops_kind=LOGIN_REQUIRED, timeout=10.0)
        assert "schwab-generate-token.py" in notice.message
        down = await events.next(SessionChanged, change=SessionChange.DISCONNECTED)
        assert down.cause.startswith(LOGIN_REQUIRED)
        assert not broker.connected
        bid, _ = await paper.quote("MSFT")
        order = adapter.limit(below(bid))
        placement = broker.place(order)
        assert not placement.sent  # held: nothing reaches Schwab without a login
        await eventually(lambda: len(events.of(BrokerNotice, ops_kind=LOGIN_REQUIRED)) == 1, timeout=1.5)
        assert broker.cancel(order.order_ref) == 0  # ended here, never sent
        assert broker.orders.last_write_ns(order.order_ref) == 0
        assert Decimal(0) == Decimal(len(await paper.orders_with_ref(order.order_ref)))
        assert broker.ctx.book.by_ref[order.order_ref].status is BrokerOrderStatus.CANCELLED
    finally:
        await broker.close()
