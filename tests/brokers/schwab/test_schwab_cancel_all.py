"""The breaker's cancel-all at Schwab reaches every open order of the account, also the ones
the adapter did not place, through the order limit's 429s."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from brokers.base import BrokerNotice, OrderAccepted
from brokers.schwab import LoginRequired, SchwabBroker
from brokers.schwab_requests import CANCEL_FAILED
from tests.brokers.recorder import Recorder
from tests.brokers.schwab.conftest import Adapter, below, config_for
from tests.fixtures.paper import PaperStack
from tests.fixtures.schwab import SchwabApi
from tests.helpers import eventually


@pytest.fixture
async def limit_restored(schwab_api: SchwabApi) -> AsyncIterator[None]:
    try:
        yield
    finally:
        await schwab_api.set_order_limit(schwab_api.settings.schwab_order_rate_per_min)


async def test_a_foreign_orders_cancel_refused_with_429_is_sent_again_not_dropped(
    schwab_api: SchwabApi, paper: PaperStack, tmp_path: Path, limit_restored: None
) -> None:
    bid, _ = await paper.quote("MSFT")
    earlier = SchwabBroker(config_for(schwab_api, schwab_api.new_token_file(tmp_path)))
    earlier_events = Recorder()
    earlier.set_event_handler(earlier_events)
    await earlier.connect()
    placing = Adapter(earlier, earlier_events, schwab_api.account_number)
    orders = [placing.limit(below(bid, share), qty=2) for share in ("0.52", "0.53", "0.54")]
    for order in orders:
        earlier.place(order)
    ids = [(await earlier_events.next(OrderAccepted, order_ref=o.order_ref)).order_id for o in orders]
    await earlier.close()  # a process that stopped: its orders work on, unknown to the next one

    later = SchwabBroker(config_for(schwab_api, schwab_api.new_token_file(tmp_path)))
    events = Recorder()
    later.set_event_handler(events)
    await later.connect()
    try:
        await schwab_api.set_order_limit(2)  # Schwab's limit is lower than the adapter was told
        later.cancel_all()
        await events.next(BrokerNotice, code=429)
        # The app's limit is raised: the cancel that met the 429 goes again.
        await schwab_api.set_order_limit(0)
        later.set_order_limit(0)

        async def all_cancelled() -> bool:
            still_open = {o.order_id for o in await later.open_orders()}
            return not still_open & set(ids)

        assert await eventually(all_cancelled, timeout=10.0, interval=0.2)
    finally:
        await later.close()


async def test_a_cancel_all_without_a_login_says_schwabs_orders_are_not_cancelled(
    schwab_api: SchwabApi, tmp_path: Path
) -> None:
    token = schwab_api.new_token_file(tmp_path, login_time=time.time() - 8 * 86400, access_ttl_s=0)
    broker = SchwabBroker(config_for(schwab_api, token))
    events = Recorder()
    broker.set_event_handler(events)
    with pytest.raises(LoginRequired):
        await broker.connect()
    try:
        broker.cancel_all()  # the breaker trips while Schwab wants a person to log in
        failed = events.of(BrokerNotice, ops_kind=CANCEL_FAILED)
        assert len(failed) == 1 and failed[0].severity == "critical"
        assert "log in" in failed[0].message
    finally:
        await broker.close()
