"""The broker connection's session changes reach ops and the BrokerSession workflows' topic."""

from __future__ import annotations

import asyncpg

from hotpath.sessions import SESSIONS_TOPIC
from temporal.session_records import decode
from tests.fixtures.hotpath import read_until
from tests.helpers import eventually
from tests.hotpath.conftest import VENUE_ACCOUNT, HotPathProcess
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
