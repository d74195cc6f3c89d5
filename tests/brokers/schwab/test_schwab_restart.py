"""A hot path restarted on Schwab, which keeps no client order id: an order ledgered but never
heard of is looked for among the orders entered since it was ledgered, not among the day's."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path

import pytest

from brokers.base import BrokerOrder, EpochReconciled, Executed, OrderAccepted, OrderStatusChanged
from brokers.schwab import SchwabBroker
from hotpath.recovery import Resend, connect_and_resend
from tests.brokers.recorder import Recorder
from tests.brokers.schwab.conftest import config_for
from tests.factories import enter_command
from tests.fixtures.paper import PaperStack
from tests.fixtures.schwab import SchwabApi
from trading.commands import OrderType, Side


@pytest.mark.long  # waits out the clock slack between the two orders (about 12 s)
async def test_an_unacknowledged_order_is_not_taken_for_an_identical_one_filled_before_it(
    schwab_api: SchwabApi, paper: PaperStack, tmp_path: Path
) -> None:
    _, ask = await paper.quote("MSFT")
    limit = (ask * Decimal("1.02")).quantize(Decimal("0.01"))  # marketable: fills at once
    account = schwab_api.account_number

    def order(ref: str) -> BrokerOrder:
        return BrokerOrder(ref, account, "MSFT", Side.BUY, 3, OrderType.LMT, limit_price=limit)

    earlier = SchwabBroker(config_for(schwab_api, schwab_api.new_token_file(tmp_path)))
    earlier_events = Recorder()
    earlier.set_event_handler(earlier_events)
    await earlier.connect()
    filled = order("cmd-filled-earlier")
    try:
        earlier.place(filled)
        await earlier_events.next(
            OrderStatusChanged, order_ref=filled.order_ref, where=lambda e: e.filled == 3
        )
    finally:
        await earlier.close()
    filled_at = time.monotonic()

    # The same order again, a little later (past the sentry's 5 s of clock skew and Schwab's
    # whole-second entered times: no event marks that, only the clock), ledgered, and the
    # process stopped before it reached Schwab.
    await asyncio.sleep(max(0.0, filled_at + 12 - time.monotonic()))
    command = enter_command("agent-x", account=account, symbol="MSFT", limit=limit, quantity=3)
    unsent = order(command.command_id)
    later = SchwabBroker(config_for(schwab_api, schwab_api.new_token_file(tmp_path)))
    events = Recorder()
    later.set_event_handler(events)
    await connect_and_resend(later, [Resend(unsent, command, None)])
    try:
        await events.next(EpochReconciled)
        assert not events.of(OrderAccepted, order_ref=unsent.order_ref)
        assert not events.of(Executed, order_ref=unsent.order_ref)  # the earlier order's fills
        assert later.orders.held() == 1  # left for the floor to place (or end) after its checks
    finally:
        await later.close()
