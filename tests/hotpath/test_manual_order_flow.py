"""Manual orders through the real path (Kafka -> hot path -> ib_async -> paper gateway ->
venue): an ``enter`` without an edge is never Kelly-sized; the venue gets exactly the quantity
signed, or nothing, and a refusal beyond Max Dollar Risk (to the stop loss, or the whole notional
without one) is named in the ledger and on a signed ``rejected`` record."""

from __future__ import annotations

import dataclasses
import json
from decimal import ROUND_DOWN, Decimal
from typing import Any

import pytest

from bus.topics import ORDERS_EVENTS
from ledger.record_keys import writer_keys
from paper.venue.client import VenueClient
from tests.factories import Agent, authorization, cancel_command, manual_enter_command, new_trader
from tests.fixtures.hotpath import decoded, read_until, register
from tests.hotpath.conftest import MAIN_PROFILE
from tests.hotpath.live_floor import CENT, LiveFloor
from trading.authorization import Ceremony
from trading.order_events import EventKind
from trading.record_signing import HOTPATH_WRITER, verify_record
from trading.signing import SignedCommand

SYMBOL = "AAPL"


async def venue_orders(live: LiveFloor, order_ref: str) -> list[int]:
    """The quantities of every order (working or ended) the venue holds under ``order_ref``."""
    venue = await VenueClient.connect(live.paper.host, live.paper.venue_port, "manual-observer")
    try:
        orders = (*await venue.open_orders(), *await venue.completed_orders())
    finally:
        await venue.close()
    return [update.order.total_qty for update in orders if update.order.order_ref == order_ref]


async def signed_record(live: LiveFloor, command_id: str, kind: EventKind) -> dict[str, Any]:
    """The order's ``kind`` record on ``orders.events``, verified as the hot path's."""
    raw = (
        await read_until(
            live.bootstrap,
            ORDERS_EVENTS,
            lambda r: (e := decoded(r)) is not None and e.command_id == command_id and e.kind is kind,
        )
    )[-1]
    keys = await writer_keys(live.pool)
    record = verify_record(ORDERS_EVENTS, raw, keys)
    assert keys[record["proof"]["signer"]].agent_id == HOTPATH_WRITER
    return record


@pytest.fixture
async def trader(live: LiveFloor) -> Agent:
    """A trader's own key on the venue's account: only a trader's key sends manual orders."""
    alice = new_trader(accounts=frozenset({live.account}))
    await register(live.pool, alice, alice.role)
    return alice


def manual(
    trader: Agent, live: LiveFloor, limit: Decimal, quantity: int, stop_loss: Decimal | None = None
) -> SignedCommand:
    """The trader's manual order, authorised by its arming grant."""
    return trader.sign(
        manual_enter_command(
            trader.agent_id, account=live.account, symbol=SYMBOL, limit=limit, quantity=quantity,
            stop_loss=stop_loss, authorization=authorization(trader.trader),
        )
    )  # fmt: skip


async def test_a_manual_limit_order_reaches_the_venue_with_exactly_its_quantity(
    live: LiveFloor, trader: Agent
) -> None:
    resting = await live.below_bid(Decimal("0.8"), SYMBOL)
    # 7 shares with the stop loss 1 below: nothing Kelly or the limits would have made of it.
    env = manual(trader, live, resting, 7, stop_loss=resting - 1)
    await live.send(env)
    command_id = env.command.command_id
    try:
        accepted = await live.event(command_id, EventKind.ACCEPTED, EventKind.REJECTED)
        assert (accepted.kind, accepted.quantity) == (EventKind.ACCEPTED, 7), accepted.reason
        await live.event(command_id, EventKind.SUBMITTED)
        assert await venue_orders(live, command_id) == [7]
        entry = await live.entry(command_id)
        assert entry is not None and entry["decision"] == "accepted"
        detail = json.loads(entry["detail"])
        assert detail["quantity"] == 7 and detail["sizing"] == "manual"
        assert detail["stop_loss"] == str(resting - 1) and "binding" not in detail
    finally:
        cancel = cancel_command(trader.agent_id, command_id, account=live.account)
        signed_in = authorization(trader.trader, ceremony=Ceremony.SESSION)
        await live.send(trader.sign(dataclasses.replace(cancel, authorization=signed_in)))
    await live.event(command_id, EventKind.CANCELLED)


async def test_a_manual_order_over_max_dollar_risk_is_refused_never_resized(
    live: LiveFloor, trader: Agent
) -> None:
    resting = await live.below_bid(Decimal("0.8"), SYMBOL)
    risk = MAIN_PROFILE.max_dollar_risk
    # Without a stop loss the whole notional is at risk: one share more than it allows.
    unprotected = int(risk / resting) + 1
    # With one, the loss to it: a quarter of the price a share.
    distance = (resting / 4).quantize(CENT, ROUND_DOWN)
    stop_loss = resting - distance
    protected = int(risk / distance) + 1
    assert protected * resting <= MAIN_PROFILE.max_trade_size  # refused for its risk, not its size
    for env in (
        manual(trader, live, resting, unprotected),
        manual(trader, live, resting, protected, stop_loss),
    ):
        command, command_id = env.command, env.command.command_id
        await live.send(env)
        record = await signed_record(live, command_id, EventKind.REJECTED)
        assert record["reason"] == "risk.max_dollar_risk" and record["quantity"] == command.quantity
        entry = await live.entry(command_id)
        assert entry is not None and entry["authenticated"]
        assert (entry["decision"], entry["reason"]) == ("rejected", "risk.max_dollar_risk")
        assert json.loads(entry["detail"])["quantity"] == command.quantity
        assert await live.kinds(command_id) == ["rejected"]
        assert await venue_orders(live, command_id) == []
