"""Orders the broker works that a restarted hot path will not send, with only an ``accepted``
state row (their broker-state rows lost with the process killed), are still reached: one whose
key was revoked while the floor was down is cancelled at the venue (ops event
``recovery.unverified_at_broker``); a GTC order accepted longer ago than the resend horizon is
kept, and a signed cancel takes it off the venue.

One kill and restart serves the module."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from brokers.ibkr import IbkrBroker
from hotpath.broker_orders import broker_order
from hotpath.floor_orders import FloorOrder
from hotpath.recovery import NOT_VERIFIED
from hotpath.startup import UNVERIFIED_AT_BROKER
from ledger.append import Decision, append_command
from ledger.keys import revoke_agent
from ledger.order_events import order_state, record_order_event
from tests.factories import cancel_command, enter_command
from tests.fixtures.hotpath import fresh_agent
from tests.fixtures.paper import PaperStack
from tests.helpers import eventually
from tests.hotpath.conftest import (
    VENUE_ACCOUNT,
    HotPathProcess,
    the_dead_hotpaths_client,
    working_are,
    working_at_venue,
)
from tests.hotpath.live_floor import LiveFloor
from trading import sentry
from trading.commands import TimeInForce
from trading.order_events import EventKind, OrderEvent


@dataclass(frozen=True)
class Before:
    live: LiveFloor
    revoked: str
    """Working at the venue, only its ``accepted`` row written, its key revoked while down."""
    stale: str
    """GTC, ledgered two days ago, working at the venue, only its ``accepted`` row written."""
    revoked_unsent: str
    """As ``revoked``, never written to the venue."""
    stale_unsent: str
    """As ``stale``, never written to the venue."""
    restarted_at: datetime


@pytest.fixture(scope="module")
async def before(
    hotpath: HotPathProcess,
    paper: PaperStack,
    ledger_pool: asyncpg.Pool,
    command_producer: AIOKafkaProducer,
    kafka_bootstrap: str,
    venue: IbkrBroker,
) -> AsyncIterator[Before]:
    agent = await fresh_agent(ledger_pool)
    doomed = await fresh_agent(ledger_pool)
    live = LiveFloor(hotpath, paper, agent, command_producer, kafka_bootstrap, ledger_pool, VENUE_ACCOUNT)
    resting = await live.below_bid(Decimal("0.77"))
    issued = (datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0)
    stale = dataclasses.replace(
        live.enter(limit=resting, stop=resting - 5, quantity=1, issued_at=issued), tif=TimeInForce.GTC
    )
    revoked = enter_command(
        doomed.agent_id, account=VENUE_ACCOUNT, limit=resting, stop=resting - 5, quantity=1
    )
    revoked_unsent = enter_command(
        doomed.agent_id, account=VENUE_ACCOUNT, limit=resting, stop=resting - 5, quantity=1
    )
    stale_unsent = dataclasses.replace(
        live.enter(limit=resting, stop=resting - 5, quantity=1, issued_at=issued), tif=TimeInForce.GTC
    )
    ids = (revoked.command_id, stale.command_id)
    started = datetime.now(UTC)

    async def placed_then_lost() -> None:
        ledgered = ((doomed, revoked), (agent, stale), (doomed, revoked_unsent), (agent, stale_unsent))
        for signer, command in ledgered:
            await append_command(
                ledger_pool, signer.sign(command), decision=Decision.ACCEPTED, detail={"quantity": 1}
            )
            accepted = FloorOrder.from_command(command, 1).event(EventKind.ACCEPTED)
            await record_order_event(ledger_pool, accepted)
        # Written by the hot path's broker client before it died; its broker-state rows lost.
        floor_client = await the_dead_hotpaths_client(hotpath.settings)
        try:
            for command in (revoked, stale):
                assert floor_client.place(broker_order(command, 1, None)).sent
            await eventually(lambda: working_are(venue, ids, set(ids)), timeout=10.0)
        finally:
            await floor_client.close()
        await revoke_agent(ledger_pool, doomed.agent_id)

    await hotpath.restart(while_down=placed_then_lost, kill=True)
    yield Before(
        live,
        revoked.command_id,
        stale.command_id,
        revoked_unsent.command_id,
        stale_unsent.command_id,
        started,
    )


async def _ops_detail(pool: asyncpg.Pool, kind: str, command_id: str) -> dict[str, object] | None:
    raw = await pool.fetchval(
        "SELECT detail FROM ops_events WHERE kind = $1 AND detail->>'command_id' = $2 LIMIT 1",
        kind,
        command_id,
    )
    if raw is None:
        return None
    return json.loads(raw) if isinstance(raw, str) else dict(raw)


async def test_an_order_at_the_broker_whose_key_was_revoked_is_cancelled_at_restart(
    before: Before, venue: IbkrBroker, ledger_pool: asyncpg.Pool
) -> None:
    cid = before.revoked
    await eventually(lambda: working_are(venue, (cid,), set()), timeout=20.0)
    await eventually(lambda: _ops_detail(ledger_pool, UNVERIFIED_AT_BROKER, cid), timeout=10.0)
    detail = await _ops_detail(ledger_pool, UNVERIFIED_AT_BROKER, cid)
    assert detail is not None and "revoked" in str(detail["problem"])

    async def ended_cancelled() -> bool:
        return (await before.live.kinds(cid))[-1] == "cancelled"

    await eventually(ended_cancelled, timeout=10.0)


async def test_a_gtc_order_older_than_the_resend_horizon_is_reached_by_a_signed_cancel(
    before: Before, venue: IbkrBroker
) -> None:
    live, cid = before.live, before.stale
    assert await working_at_venue(venue, cid) == {cid}  # kept working: not ended at restart
    await live.submit(cancel_command(live.agent.agent_id, cid, account=live.account))

    await live.event(cid, EventKind.CANCELLED)
    await eventually(lambda: working_are(venue, (cid,), set()), timeout=10.0)
    assert (await live.kinds(cid))[-1] == "cancelled"


@pytest.mark.parametrize(
    ("which", "reason"), [("revoked_unsent", NOT_VERIFIED), ("stale_unsent", sentry.STALE)]
)
async def test_a_parked_order_the_broker_does_not_have_ends_rejected_with_its_reason(
    before: Before, ledger_pool: asyncpg.Pool, which: str, reason: str
) -> None:
    cid = getattr(before, which)

    async def ended() -> OrderEvent | None:
        state = await order_state(ledger_pool, cid)
        return state if state is not None and state.kind is EventKind.REJECTED else None

    state = await eventually(ended, timeout=20.0)
    assert state.reason == reason
