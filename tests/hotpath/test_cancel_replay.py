"""An accepted cancel survives the death of the process that had not sent it yet.

A cancel is ledgered (and its offset committed) before the broker adapter writes it; a hot path
killed in between took the unsent ``cancelOrder`` with it, and the restarted process adopted the
target as working. Here the write cannot leave because both gateways are down when the cancel
and a ``cancel_all`` are accepted; the hot path is killed with ``kill -9``, the gateways come
back, and the restarted hot path cancels both targets again: the venue's own record shows them
cancelled, the order neither named stays working, and the ops event names what was replayed.

The module runs on a Kafka, a venue and gateways of its own (the gateways are killed), so no
other hot path reads its commands or trades its venue."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from bus.kafka import start_producer
from floor.supervisor import Supervisor
from hotpath.cancel_replay import CANCEL_REPLAYED
from ledger.append import Decision, append_command
from tests.brokers.conftest import kill_gateway, restart_gateway
from tests.factories import Agent, cancel_all_command, cancel_command
from tests.fixtures.kafka import PrivateKafka, private_kafka
from tests.fixtures.paper import PaperStack
from tests.helpers import eventually
from tests.hotpath.conftest import VENUE_ACCOUNT, HotPathProcess, running_hotpath
from tests.hotpath.live_floor import LiveFloor
from trading.order_events import EventKind

pytestmark = pytest.mark.usefixtures("risk_profiles")


@pytest.fixture
async def kafka(supervisor: Supervisor, private_paper: PaperStack) -> AsyncIterator[PrivateKafka]:
    async with private_kafka(supervisor, private_paper.settings) as broker:
        yield broker


@pytest.fixture
async def producer(kafka: PrivateKafka) -> AsyncIterator[AIOKafkaProducer]:
    p = await start_producer(kafka.bootstrap, "cancel-replay")
    yield p
    await p.stop()


@pytest.fixture
async def floor(
    kafka: PrivateKafka,
    supervisor: Supervisor,
    private_paper: PaperStack,
    ledger_pool: asyncpg.Pool,
    producer: AIOKafkaProducer,
    agent: Agent,
) -> AsyncIterator[LiveFloor]:
    process: HotPathProcess
    async with running_hotpath(kafka.settings, supervisor, private_paper, ledger_pool, producer) as process:
        yield LiveFloor(process, private_paper, agent, producer, kafka.bootstrap, ledger_pool, VENUE_ACCOUNT)


async def _venue_status(paper: PaperStack, order_ref: str) -> str | None:
    """The venue's own status of the order it was sent under ``order_ref``."""
    orders = (await paper.acontrol("GET", "/orders"))["orders"]
    return next((o["status"] for o in orders if o["order_ref"] == order_ref), None)


async def _accepted(floor: LiveFloor, command_id: str) -> bool:
    entry = await floor.entry(command_id)
    return entry is not None and entry["decision"] == "accepted"


async def _replayed(pool: asyncpg.Pool, since: Any) -> dict[str, Any] | None:
    detail = await pool.fetchval(
        "SELECT detail FROM ops_events WHERE kind = $1 AND ts > $2 ORDER BY ts DESC LIMIT 1",
        CANCEL_REPLAYED,
        since,
    )
    return None if detail is None else (json.loads(detail) if isinstance(detail, str) else dict(detail))


async def test_accepted_cancels_the_killed_process_never_sent_are_sent_by_the_restarted_one(
    floor: LiveFloor,
) -> None:
    paper, pool = floor.paper, floor.pool
    cancelled = (await floor.resting_buy(1)).command.command_id
    swept = (await floor.resting_buy(1, symbol="MSFT")).command.command_id
    untouched = (await floor.resting_buy(1, Decimal("0.7"))).command.command_id
    for ref in (cancelled, swept, untouched):
        assert await eventually(lambda r=ref: _venue_status(paper, r), timeout=10.0) == "Submitted"
    since = await pool.fetchval("SELECT now()")

    # No gateway: the cancels are ledgered and accepted, and their writes cannot leave.
    kill_gateway(paper, "primary")
    kill_gateway(paper, "standby")
    cancel = await floor.submit(cancel_command(floor.agent.agent_id, cancelled, account=floor.account))
    cancel_all = await floor.submit(
        cancel_all_command(floor.agent.agent_id, account=floor.account, symbol="MSFT")
    )
    # An order accepted now is held unsent; cancelled before it ever left, it must not leave
    # after the restart either.
    limit = await floor.below_bid(Decimal("0.8"))
    held = (await floor.submit(floor.enter(limit=limit, stop=limit - 5, quantity=1))).command.command_id
    await eventually(lambda: _accepted(floor, held), timeout=10.0)
    held_cancel = await floor.submit(cancel_command(floor.agent.agent_id, held, account=floor.account))
    for env in (cancel, cancel_all, held_cancel):
        await eventually(lambda c=env.command.command_id: _accepted(floor, c), timeout=10.0)

    async def gateways_back() -> None:
        restart_gateway(paper, "primary")
        restart_gateway(paper, "standby")

    await floor.hotpath.restart(gateways_back, kill=True)

    async def at_venue() -> dict[str, str | None] | None:
        status = {ref: await _venue_status(paper, ref) for ref in (cancelled, swept, untouched)}
        return status if status[cancelled] == status[swept] == "Cancelled" else None

    try:
        status = await eventually(at_venue, timeout=20.0)
    except AssertionError as exc:
        now = {ref: await _venue_status(paper, ref) for ref in (cancelled, swept, untouched)}
        raise AssertionError(f"the accepted cancels were not replayed: venue says {now}") from exc
    assert status[untouched] == "Submitted", status
    assert await _venue_status(paper, held) is None, "a cancelled order that never left was sent"
    replayed = await eventually(lambda: _replayed(pool, since), timeout=10.0)
    assert {cancelled: cancel.command.command_id, swept: cancel_all.command.command_id}.items() <= replayed[
        "cancels"
    ].items(), replayed


async def test_an_order_held_at_restart_whose_cancel_was_accepted_is_never_sent(floor: LiveFloor) -> None:
    paper, pool = floor.paper, floor.pool
    limit = await floor.below_bid(Decimal("0.8"))
    order = floor.enter(limit=limit, stop=limit - 5, quantity=1)
    cancel = cancel_command(floor.agent.agent_id, order.command_id, account=floor.account)
    since = await pool.fetchval("SELECT now()")

    async def ledgered_never_sent() -> None:
        # Both accepted, both still in the broker client's queue when the process died.
        await append_command(
            pool, floor.agent.sign(order), decision=Decision.ACCEPTED, detail={"quantity": 1}
        )
        target = {"target_command_id": order.command_id}
        await append_command(pool, floor.agent.sign(cancel), decision=Decision.ACCEPTED, detail=target)

    await floor.hotpath.restart(ledgered_never_sent, kill=True)
    await eventually(lambda: _restored(pool, since), timeout=10.0)  # held orders were released by now
    assert await _venue_status(paper, order.command_id) is None, "a cancelled order was sent"
    replayed = await eventually(lambda: _replayed(pool, since), timeout=10.0)
    assert replayed == {
        "cancels": {order.command_id: cancel.command_id},
        "ended_unsent": [order.command_id],
    }
    assert (
        await floor.event(order.command_id, EventKind.CANCELLED, EventKind.SUBMITTED)
    ).kind == EventKind.CANCELLED
    kinds = await floor.kinds(order.command_id)
    assert kinds[-1] == "cancelled" and "submitted" not in kinds, kinds


async def _restored(pool: asyncpg.Pool, since: Any) -> bool:
    return bool(
        await pool.fetchval(
            "SELECT EXISTS (SELECT 1 FROM ops_events WHERE kind = 'recovery.restored' AND ts > $1)", since
        )
    )
