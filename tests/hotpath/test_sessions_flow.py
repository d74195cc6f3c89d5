"""The broker connection's session changes reach ops and the BrokerSession workflows' topic."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from bus.topics import BROKER_SESSIONS, ORDERS_EVENTS
from hotpath.sessions import SESSIONS_TOPIC
from ledger.record_keys import writer_keys
from temporal.session_records import decode
from tests.fixtures.hotpath import decoded, read_until
from tests.helpers import eventually
from tests.hotpath.conftest import VENUE_ACCOUNT, HotPathProcess
from tests.hotpath.live_floor import LiveFloor
from trading.record_signing import HOTPATH_WRITER, RecordRefused, verify_record
from workflows.broker_session import Change


def _is_connected(raw: bytes) -> bool:
    try:
        account, change = decode(raw)
    except ValueError:
        return False
    return account == VENUE_ACCOUNT and change.change is Change.CONNECTED


async def test_connecting_is_an_epoch_for_the_account_and_an_ops_event(
    hotpath: HotPathProcess, kafka_bootstrap: str, ledger_pool: asyncpg.Pool
) -> None:
    records = await read_until(kafka_bootstrap, SESSIONS_TOPIC, _is_connected)
    _, change = decode(records[-1])
    assert change.epoch >= 1 and change.gateway.startswith("127.0.0.1:")
    row = await eventually(
        lambda: ledger_pool.fetchrow(
            "SELECT severity, detail FROM ops_events WHERE source = 'hotpath' AND kind = 'broker.connected'"
        )
    )
    assert row["severity"] == "info"


async def test_the_hot_path_signs_what_it_publishes_with_its_own_registered_key(live: LiveFloor) -> None:
    """Its broker.sessions and orders.events records verify as written by floor-hotpath, and
    only on their own topic."""
    keys = await writer_keys(live.pool)
    session_raw = (await read_until(live.bootstrap, SESSIONS_TOPIC, _is_connected))[-1]
    session_record = verify_record(BROKER_SESSIONS, session_raw, keys)
    assert keys[session_record["proof"]["signer"]].agent_id == HOTPATH_WRITER

    # A command for an account without a risk profile: refused, and the refusal published.
    env = await live.submit(live.enter(account=f"DU-NONE-{uuid.uuid4().hex[:6]}"))
    raw = (
        await read_until(
            live.bootstrap,
            ORDERS_EVENTS,
            lambda r: (e := decoded(r)) is not None and e.command_id == env.command.command_id,
        )
    )[-1]
    record = verify_record(ORDERS_EVENTS, raw, keys)
    assert record["kind"] == "rejected" and keys[record["proof"]["signer"]].agent_id == HOTPATH_WRITER
    with pytest.raises(RecordRefused) as refused:
        verify_record(BROKER_SESSIONS, raw, keys)
    assert refused.value.reason == "record.bad_signature"
