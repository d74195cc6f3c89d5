"""Start-up recovery against real Postgres and the paper venue: an order the ledger accepted
but the broker never got is sent on start; a state row the ledger does not back never is."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal

import asyncpg

from brokers.ibkr import IbkrBroker, IbkrConfig
from config.settings import FloorSettings
from hotpath.account import AccountBook
from hotpath.floor_orders import FloorOrder
from hotpath.recovery import NOT_LEDGERED, NOT_VERIFIED, connect_and_resend, restore_orders
from ledger.append import Decision, append_command
from ledger.keys import revoke_agent
from ledger.order_events import order_state, record_order_event
from tests.factories import Agent, enter_command
from tests.fixtures.hotpath import plant_entry
from tests.fixtures.paper import PaperStack
from tests.helpers import eventually
from tests.hotpath.conftest import VENUE_ACCOUNT
from tests.hotpath.live_floor import CENT
from tests.hotpath.test_iceberg_parents import iceberg
from trading.commands import Command, CommandKind, OrderType, Side, TimeInForce, utc_now_ms
from trading.order_events import EventKind


async def test_an_accepted_unsent_order_is_sent_on_start_and_an_unledgered_one_is_refused(
    floor_settings: FloorSettings,
    paper: PaperStack,
    agent: Agent,
    ledger_pool: asyncpg.Pool,
    risk_profiles: None,
) -> None:
    bid, _ = await paper.quote("AAPL")
    resting = (bid * Decimal("0.8")).quantize(CENT, ROUND_DOWN)
    # As the hot path leaves it when it stops between the ledger commit and the socket write.
    ledgered = agent.sign(
        enter_command(agent.agent_id, account=VENUE_ACCOUNT, limit=resting, stop=resting - 5)
    )
    await append_command(
        ledger_pool, ledgered, decision=Decision.ACCEPTED, detail={"quantity": 3, "entry_price": str(resting)}
    )
    orphan = enter_command(agent.agent_id, account=VENUE_ACCOUNT, limit=resting, stop=resting - 5)
    await record_order_event(ledger_pool, FloorOrder.from_command(orphan, 4).event(EventKind.ACCEPTED))

    orders: dict[str, FloorOrder] = {}
    book = AccountBook()
    restored = await restore_orders(ledger_pool, orders, book)

    [again] = [r for r in restored.to_send if r.order.order_ref == ledgered.command.command_id]
    resend = again.order
    assert (resend.quantity, resend.limit_price, resend.account) == (3, resting, VENUE_ACCOUNT)
    assert orphan.command_id in restored.refused
    assert orphan.command_id not in {r.order.order_ref for r in restored.to_send}
    # The resent order is visible as accepted from now on, like any other.
    accepted = await order_state(ledger_pool, ledgered.command.command_id)
    assert accepted is not None and (accepted.kind, accepted.quantity) == (EventKind.ACCEPTED, 3)
    state = await order_state(ledger_pool, orphan.command_id)
    assert state is not None and (state.kind, state.reason) == (EventKind.REJECTED, NOT_LEDGERED)
    assert ledgered.command.command_id in orders and book.open_orders(VENUE_ACCOUNT) >= 1

    broker = IbkrBroker(IbkrConfig.from_settings(floor_settings, client_id=70 + uuid.uuid4().int % 20))
    before = (await paper.acontrol("GET", "/status"))["open_orders"]
    await broker.connect()
    try:
        placement = broker.place(resend)
        assert placement.sent and not placement.duplicate
        await eventually(lambda: _open_orders_are(paper, before + 1), timeout=10.0)
        # Sending again (a second restart before any callback) writes nothing new.
        assert broker.place(resend).duplicate
        broker.cancel(resend.order_ref)
        await eventually(lambda: _open_orders_are(paper, before), timeout=10.0)
    finally:
        await broker.close()


async def _open_orders_are(paper: PaperStack, expected: int) -> bool:
    return bool((await paper.acontrol("GET", "/status"))["open_orders"] == expected)


async def test_an_order_the_broker_got_before_a_restart_is_adopted_not_sent_again(
    floor_settings: FloorSettings,
    paper: PaperStack,
    agent: Agent,
    ledger_pool: asyncpg.Pool,
    risk_profiles: None,
) -> None:
    """The process stopped after the socket write but before any broker callback was stored:
    the ledger entry has no state row, so recovery lists the order to send. The broker has it."""
    bid, _ = await paper.quote("AAPL")
    resting = (bid * Decimal("0.8")).quantize(CENT, ROUND_DOWN)
    ledgered = agent.sign(
        enter_command(agent.agent_id, account=VENUE_ACCOUNT, limit=resting, stop=resting - 5)
    )
    await append_command(
        ledger_pool, ledgered, decision=Decision.ACCEPTED, detail={"quantity": 2, "entry_price": str(resting)}
    )
    restored = await restore_orders(ledger_pool, {}, AccountBook())
    [again] = [r for r in restored.to_send if r.order.order_ref == ledgered.command.command_id]
    config = IbkrConfig.from_settings(floor_settings, client_id=70 + uuid.uuid4().int % 20)
    before = (await paper.acontrol("GET", "/status"))["open_orders"]

    first_life = IbkrBroker(config)
    await first_life.connect()
    assert first_life.place(again.order).sent
    await eventually(lambda: _open_orders_are(paper, before + 1), timeout=10.0)
    await first_life.close()  # the process dies; the order rests at the broker

    second_life = IbkrBroker(config)
    await connect_and_resend(second_life, [again])
    try:
        # A later order proves every write of the reconnect reached the venue before counting.
        sentinel = dataclasses.replace(again.order, order_ref=f"sentinel-{uuid.uuid4().hex}", quantity=1)
        assert second_life.place(sentinel).sent
        await eventually(lambda: _open_orders_are(paper, before + 2), timeout=10.0)
        assert (await paper.acontrol("GET", "/status"))["open_orders"] == before + 2  # not sent twice
        assert second_life.place(again.order).duplicate  # adopted: the broker's order is this one
    finally:
        second_life.cancel(again.order.order_ref)
        second_life.cancel(sentinel.order_ref)
        await eventually(lambda: _open_orders_are(paper, before), timeout=10.0)
        await second_life.close()


async def test_a_planted_accepted_entry_is_not_sent_at_restart_and_is_reported(
    floor_settings: FloorSettings, ledger_pool: asyncpg.Pool, risk_profiles: None
) -> None:
    evil = Command(
        kind=CommandKind.EXIT,
        command_id=f"evil-exit-{uuid.uuid4().hex[:8]}",
        agent_id="nobody",
        account=VENUE_ACCOUNT,
        nonce=uuid.uuid4().hex,
        issued_at=utc_now_ms(),
        symbol="AAPL",
        side=Side.SELL,
        order_type=OrderType.MKT,
        tif=TimeInForce.DAY,
        quantity=100000,
    )
    await plant_entry(floor_settings.role_url("hotpath"), evil, {"quantity": 100000})

    restored = await restore_orders(ledger_pool, {}, AccountBook())

    assert evil.command_id not in {r.order.order_ref for r in restored.to_send}
    [skipped] = [s for s in restored.skipped if s.command_id == evil.command_id]
    assert "not a registered key" in skipped.problem


async def test_a_held_order_whose_key_was_revoked_since_is_not_sent_at_restart(
    ledger_pool: asyncpg.Pool, agent: Agent, risk_profiles: None
) -> None:
    held = agent.sign(enter_command(agent.agent_id, account=VENUE_ACCOUNT, quantity=3))
    await append_command(ledger_pool, held, decision=Decision.ACCEPTED, detail={"quantity": 3})
    await record_order_event(ledger_pool, FloorOrder.from_command(held.command, 3).event(EventKind.ACCEPTED))
    await revoke_agent(ledger_pool, agent.agent_id)

    orders: dict[str, FloorOrder] = {}
    restored = await restore_orders(ledger_pool, orders, AccountBook())

    assert held.command.command_id not in {r.order.order_ref for r in restored.to_send}
    [skipped] = [s for s in restored.skipped if s.command_id == held.command.command_id]
    assert "revoked" in skipped.problem
    # It may rest at the broker: parked (adopted unacknowledged), ended only once the broker
    # is asked (hotpath.startup.settle_parked).
    [parked] = [p for p in restored.parked if p.order.order_ref == held.command.command_id]
    assert parked.reason == NOT_VERIFIED and "revoked" in parked.problem
    state = await order_state(ledger_pool, held.command.command_id)
    assert state is not None and state.kind is EventKind.ACCEPTED


async def test_a_genuine_entry_with_a_sized_quantity_beyond_its_command_is_not_sent_at_restart(
    ledger_pool: asyncpg.Pool, agent: Agent, risk_profiles: None
) -> None:
    """The sized quantity sits in the entry's unsigned detail: it is held to the signed command."""
    held = agent.sign(enter_command(agent.agent_id, account=VENUE_ACCOUNT, quantity=3))
    await append_command(ledger_pool, held, decision=Decision.ACCEPTED, detail={"quantity": 3000})

    restored = await restore_orders(ledger_pool, {}, AccountBook())

    assert held.command.command_id not in {r.order.order_ref for r in restored.to_send}
    [skipped] = [s for s in restored.skipped if s.command_id == held.command.command_id]
    assert "exceeds the signed command's 3" in skipped.problem


async def test_an_iceberg_parents_accepted_row_is_not_parked_at_restart(
    ledger_pool: asyncpg.Pool, agent: Agent, risk_profiles: None
) -> None:
    """Only orders the broker was sent (an enter/exit entry) are parked for it to be asked about:
    an iceberg parent has no order of its own at the broker, and its row stays open."""
    parent = dataclasses.replace(iceberg(agent.agent_id), account=VENUE_ACCOUNT, tif=TimeInForce.GTC)
    await append_command(ledger_pool, agent.sign(parent), decision=Decision.ACCEPTED)
    await record_order_event(ledger_pool, FloorOrder.from_command(parent, 300).event(EventKind.ACCEPTED))

    orders: dict[str, FloorOrder] = {}
    restored = await restore_orders(ledger_pool, orders, AccountBook())

    assert parent.command_id not in {p.order.order_ref for p in restored.parked}
    assert not orders[parent.command_id].done


async def test_a_gtc_order_older_than_the_horizon_whose_key_was_revoked_is_parked_unverified(
    ledger_pool: asyncpg.Pool, agent: Agent, risk_profiles: None
) -> None:
    """Parked, so it is cancelled if the broker has it (not kept working as a too-old order)."""
    issued = (datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0)
    old = dataclasses.replace(
        enter_command(agent.agent_id, account=VENUE_ACCOUNT, quantity=1, issued_at=issued),
        tif=TimeInForce.GTC,
    )
    await append_command(ledger_pool, agent.sign(old), decision=Decision.ACCEPTED, detail={"quantity": 1})
    await record_order_event(ledger_pool, FloorOrder.from_command(old, 1).event(EventKind.ACCEPTED))
    await revoke_agent(ledger_pool, agent.agent_id)

    restored = await restore_orders(ledger_pool, {}, AccountBook())

    [parked] = [p for p in restored.parked if p.order.order_ref == old.command_id]
    assert parked.reason == NOT_VERIFIED and "revoked" in parked.problem
