"""A trader's own key through the running hot path (Kafka -> hot path -> ib_async -> venue): its
commands count only with the trader's WebAuthn authorization, which the ledger keeps; with it
the trader may trade its accounts and trip and re-arm the floor-wide breaker."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal

import asyncpg

from bus.topics import AGENT_COMMANDS
from floor.breaker_cmd import breaker_command
from tests.factories import Agent, authorization, manual_enter_command, new_trader
from tests.fixtures.hotpath import register
from tests.helpers import eventually
from tests.hotpath.conftest import VENUE_ACCOUNT
from tests.hotpath.live_floor import LiveFloor
from tests.hotpath.test_circuit_breaker_flow import applied, rearm, security_reasons
from tests.hotpath.test_manual_order_flow import venue_orders
from trading import sentry
from trading.authorization import Ceremony
from trading.commands import CommandKind
from trading.order_events import EventKind


async def test_a_traders_key_trades_and_trips_only_with_the_traders_authorization(
    live: LiveFloor, operator: Agent
) -> None:
    alice = new_trader(accounts=frozenset({VENUE_ACCOUNT}))  # not '*': the breaker is floor-wide anyway
    await register(live.pool, alice, alice.role)
    resting = await live.below_bid(Decimal("0.8"))

    step_up = authorization(alice.trader, ceremony=Ceremony.STEP_UP, sign_count=11)
    order = manual_enter_command(
        alice.agent_id, account=VENUE_ACCOUNT, limit=resting, quantity=6, authorization=step_up
    )
    await live.send(alice.sign(order))
    accepted = await live.event(order.command_id, EventKind.ACCEPTED, EventKind.REJECTED)
    assert (accepted.kind, accepted.quantity, accepted.agent_id) == (EventKind.ACCEPTED, 6, alice.agent_id)
    await live.event(order.command_id, EventKind.SUBMITTED)
    assert await venue_orders(live, order.command_id) == [6]
    entry = await live.entry(order.command_id)
    assert entry is not None and entry["signer"] == alice.key_id
    assert order.authorization is not None and order.authorization.sign_count == step_up.sign_count
    assert json.loads(entry["payload"])["authorization"] == order.authorization.to_json_dict()

    # The same key without the trader's authorization: a security event, nothing at the venue.
    bare = manual_enter_command(alice.agent_id, account=VENUE_ACCOUNT, limit=resting, quantity=6)
    await live.send(alice.sign(bare))
    await eventually(
        lambda: _reasons_are(live.pool, bare.command_id, [sentry.TRADER_UNAUTHORISED]), timeout=10.0
    )
    assert await live.kinds(bare.command_id) == [] and await venue_orders(live, bare.command_id) == []

    # The sign-in assertion takes risk off, never on: an order that claims only it is refused.
    sign_in = authorization(alice.trader, ceremony=Ceremony.SESSION, sign_count=10)
    signed_in_only = manual_enter_command(
        alice.agent_id, account=VENUE_ACCOUNT, limit=resting, quantity=6, authorization=sign_in
    )
    await live.send(alice.sign(signed_in_only))
    await eventually(
        lambda: _reasons_are(live.pool, signed_in_only.command_id, [sentry.TRADER_UNAUTHORISED]), timeout=10.0
    )
    assert await live.kinds(signed_in_only.command_id) == []
    assert await venue_orders(live, signed_in_only.command_id) == []

    trip = dataclasses.replace(
        breaker_command(CommandKind.BREAKER_TRIP, alice.agent_id),
        authorization=authorization(alice.trader, sign_count=12),
    )
    arm = dataclasses.replace(
        breaker_command(CommandKind.BREAKER_ARM, alice.agent_id),
        authorization=authorization(alice.trader, sign_count=13),
    )
    try:
        await live.producer.send_and_wait(AGENT_COMMANDS, alice.sign(trip).to_wire(), key=b"*/")
        await eventually(lambda: applied(live.hotpath, trip.command_id), timeout=20.0)
        assert (await live.hotpath.health())["trading_state"] == "HALTED"
        await live.event(order.command_id, EventKind.CANCELLED)  # the trip cancels every open order

        await live.producer.send_and_wait(AGENT_COMMANDS, alice.sign(arm).to_wire(), key=b"*/")
        await eventually(lambda: applied(live.hotpath, arm.command_id), timeout=20.0)
        assert (await live.hotpath.health())["trading_state"] == "ACTIVE"
    finally:
        await rearm(live.hotpath, live.producer, operator)
    armed = await live.entry(arm.command_id)
    assert armed is not None and (armed["kind"], armed["decision"]) == ("breaker_arm", "accepted")
    assert armed["agent_id"] == alice.agent_id


async def _reasons_are(pool: asyncpg.Pool, command_id: str, reasons: list[str]) -> bool:
    return await security_reasons(pool, command_id) == reasons
