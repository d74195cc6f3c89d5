"""What only the Schwab adapter brings to the hot path: its streamer dropped and logged in again
is an epoch of the Schwab account alone, with an order decided meanwhile sent once it is
reconciled; an order working at Schwab when the hot path was killed is found again (Schwab
keeps no client order id: by its fields) and cancelled by a signed cancel; a login Schwab
refuses is an ops event a person sees."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import pytest

from brokers.base import BrokerNotice
from brokers.schwab_auth import LOGIN_REQUIRED
from bus.kafka import start_producer
from bus.signed_records import SigningProducer
from hotpath.account import AccountBook
from hotpath.broker_events import BrokerEvents
from hotpath.ledger_store import LedgerStore
from hotpath.sessions import SESSIONS_TOPIC
from observability.telemetry import setup
from temporal.session_records import decode
from tests.factories import cancel_command
from tests.fixtures.hotpath import RecordWriters, read_until
from tests.fixtures.schwab import SchwabApi
from tests.helpers import eventually
from tests.hotpath.conftest import SCHWAB_ACCOUNT
from tests.hotpath.live_floor import LiveFloor
from trading.order_events import EventKind
from workflows.broker_session import Change


async def test_a_streamer_drop_is_an_epoch_of_the_schwab_account_and_a_held_order_goes_after_it(
    live: LiveFloor, schwab_api: SchwabApi
) -> None:
    # IB's reconnects and failovers: tests/brokers/test_ibkr_failover.py, test_reconciler.py.
    live = dataclasses.replace(live, account=SCHWAB_ACCOUNT, broker="schwab")
    since = await live.pool.fetchval("SELECT coalesce(max(id), 0) FROM ops_events")
    await schwab_api.stream_fault(refuse_logins_s=1.0, drop=True)
    await eventually(lambda: _ops_since(live.pool, since, "broker.disconnected"), timeout=10.0)
    limit = await live.below_bid(Decimal("0.8"))
    held = await live.submit(live.enter(limit=limit, stop=limit - 5, quantity=1))
    submitted = await live.event(held.command.command_id, EventKind.SUBMITTED, EventKind.REJECTED)
    assert submitted.kind is EventKind.SUBMITTED, submitted.reason
    reconnected = await eventually(lambda: _ops_since(live.pool, since, "broker.reconnected"), timeout=10.0)
    # The Schwab session's epoch alone: IB's session did not change, and the BrokerSession
    # workflow of the Schwab account (not the venue account's) hears of it.
    assert {json.loads(r["detail"])["gateway"] for r in reconnected} == {schwab_api.base_url}
    await read_until(live.bootstrap, SESSIONS_TOPIC, _reconnected(SCHWAB_ACCOUNT))
    await live.submit(cancel_command(live.agent.agent_id, held.command.command_id, account=SCHWAB_ACCOUNT))
    await live.event(held.command.command_id, EventKind.CANCELLED)


def _reconnected(account: str) -> Callable[[bytes], bool]:
    def test(raw: bytes) -> bool:
        try:
            got, change = decode(raw)
        except ValueError:
            return False
        return got == account and change.change is Change.RECONNECTED

    return test


async def _ops_since(pool: asyncpg.Pool, since: int, kind: str) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT kind, detail FROM ops_events WHERE id > $1 AND kind = $2 AND source = 'hotpath'", since, kind
    )


@pytest.fixture
async def producer(kafka_bootstrap: str, record_writers: RecordWriters) -> AsyncIterator[SigningProducer]:
    """Signs as the hot path does (``floor-hotpath``)."""
    p = await start_producer(kafka_bootstrap, "schwab-flow-test")
    yield SigningProducer(p, record_writers.hotpath)
    await p.stop()


async def test_a_broker_notice_naming_an_ops_kind_is_recorded_as_that_ops_event(
    ledger_pool: asyncpg.Pool, producer: SigningProducer
) -> None:
    events = BrokerEvents({}, AccountBook(), LedgerStore(ledger_pool), producer, setup("schwab-flow").metrics)
    since = await ledger_pool.fetchval("SELECT coalesce(max(id), 0) FROM ops_events")
    message = (
        "Schwab login required (refresh token invalid): log in again with `schwab-generate-token.py ...`"
    )
    events.on_event(BrokerNotice(401, message, -1, "schwab", datetime.now(UTC), LOGIN_REQUIRED, "critical"))
    events.on_event(BrokerNotice(2104, "market data farm connection is OK", -1, "primary", datetime.now(UTC)))
    rows = await eventually(lambda: _ops_since(ledger_pool, since, LOGIN_REQUIRED), timeout=5.0)
    assert json.loads(rows[0]["detail"])["message"] == message
    # A notice naming no ops kind (IB's farm status, say) stays in the log, as before.
    others = await ledger_pool.fetch("SELECT detail FROM ops_events WHERE id > $1", since)
    assert not [r for r in others if "farm" in r["detail"]]


async def test_an_order_working_at_schwab_across_a_kill_9_restart_is_cancelled_by_a_signed_cancel(
    live: LiveFloor,
) -> None:
    live = dataclasses.replace(live, account=SCHWAB_ACCOUNT, broker="schwab")
    working = await live.resting_buy(2, Decimal("0.63"))
    before = await live.open_orders()
    await live.hotpath.restart(kill=True)
    assert await live.open_orders() == before  # still working at the venue, through Schwab
    command_id = working.command.command_id
    await live.submit(cancel_command(live.agent.agent_id, command_id, account=SCHWAB_ACCOUNT))
    cancelled = await live.event(command_id, EventKind.CANCELLED)
    assert cancelled.filled_qty == 0
    await eventually(lambda: _open_orders_are(live, before - 1), timeout=10.0)


async def _open_orders_are(live: LiveFloor, expected: int) -> bool:
    return await live.open_orders() == expected


@pytest.mark.long  # a kill -9 restart of the hot path: seconds more than make test can spend
async def test_an_order_found_again_after_a_restart_is_not_taken_for_an_identical_ended_one(
    live: LiveFloor,
) -> None:
    """Schwab lists the day's orders, newest first: an order with the same fields that the
    floor placed later and cancelled must not be taken for the one still working."""
    live = dataclasses.replace(live, account=SCHWAB_ACCOUNT, broker="schwab")
    limit = await live.below_bid(Decimal("0.64"))
    working = await live.submit(live.enter(symbol="AAPL", limit=limit, stop=limit - 5, quantity=2))
    working_id = working.command.command_id
    await live.event(working_id, EventKind.SUBMITTED)
    ended = await live.submit(live.enter(symbol="AAPL", limit=limit, stop=limit - 5, quantity=2))
    ended_id = ended.command.command_id
    await live.event(ended_id, EventKind.SUBMITTED)
    await live.submit(cancel_command(live.agent.agent_id, ended_id, account=SCHWAB_ACCOUNT))
    await live.event(ended_id, EventKind.CANCELLED)
    before = await live.open_orders()
    await live.hotpath.restart(kill=True)
    assert await live.open_orders() == before
    await live.submit(cancel_command(live.agent.agent_id, working_id, account=SCHWAB_ACCOUNT))
    await live.event(working_id, EventKind.CANCELLED)
    await eventually(lambda: _open_orders_are(live, before - 1), timeout=10.0)
