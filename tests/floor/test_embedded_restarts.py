"""The embedded services killed under a watching supervisor, as `floor up` runs them: each comes
back by itself, with what it must have to be of use (Postgres its data, Kafka the topics)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from bus.topics import AGENT_COMMANDS, ORDERS_EVENTS
from config.settings import FloorSettings
from floor import services
from floor.stack import after_restart
from floor.supervisor import Supervisor
from floor.supervisor_events import OpsEventLog
from tests.fixtures.supervised import QUICK_RESTARTS, kill_and_await_restart, ops_events, service_named
from tests.helpers import eventually

MIGRATIONS = Path(__file__).resolve().parents[2] / "ledger" / "migrations"


@pytest.fixture
def own_settings(tmp_path: Path) -> FloorSettings:
    return FloorSettings.on_free_ports(tmp_path / "var")


@pytest.fixture
def events(own_settings: FloorSettings) -> Iterator[OpsEventLog]:
    """Recording into the Postgres these tests start (if any), as its superuser: the point is
    that an event waits for a database that is itself being restarted."""
    log = OpsEventLog(lambda: own_settings.embedded_database_url, own_settings.log_dir)
    yield log
    log.close(timeout=0)


@pytest.fixture
def watched(own_settings: FloorSettings, events: OpsEventLog) -> Iterator[Supervisor]:
    supervisor = Supervisor(own_settings.log_dir)
    supervisor.watch(QUICK_RESTARTS, events, after_restart=after_restart(own_settings))
    yield supervisor
    supervisor.stop_all()


async def test_a_killed_postmaster_comes_back_with_its_data(
    own_settings: FloorSettings, watched: Supervisor
) -> None:
    """Only the postmaster is killed, a backend still serving a client: the supervisor ends the
    rest of its group (a new postmaster refuses to start beside a dead one's backends)."""
    watched.start(services.postgres_spec(own_settings))
    dsn = own_settings.embedded_database_url
    conn = await asyncpg.connect(dsn)
    await conn.execute("CREATE TABLE kept (n int); INSERT INTO kept VALUES (42)")
    await conn.execute((MIGRATIONS / "0001_ops_events.sql").read_text())
    postmaster = service_named(watched, "postgres")
    killed = postmaster.pid
    os.kill(killed, signal.SIGKILL)  # the postmaster alone, not its group

    await eventually(lambda: postmaster.restarts == 1 and postmaster.ready, timeout=60, interval=0.05)
    assert postmaster.pid != killed and postmaster.last_exit is not None
    assert postmaster.last_exit.signal == signal.SIGKILL
    conn.terminate()
    again = await asyncpg.connect(dsn)
    try:
        assert await again.fetchval("SELECT n FROM kept") == 42
        # Its own restart is recorded in it, once it takes writes again.
        [event] = await eventually(lambda: ops_events(again, "supervisor.restarted", "postgres"), timeout=15)
    finally:
        await again.close()
    assert event["signal"] == "SIGKILL" and event["pid"] == postmaster.pid


async def test_a_killed_kafka_comes_back_with_the_floors_topics(
    own_settings: FloorSettings, watched: Supervisor
) -> None:
    """The embedded Tansu keeps its topics in memory: after a restart they are made again."""
    watched.start(services.kafka_spec(own_settings))
    await kill_and_await_restart(watched, "kafka", timeout=30)

    async def has_the_topics() -> bool:
        admin = AIOKafkaAdminClient(bootstrap_servers=own_settings.kafka)
        await admin.start()
        try:
            return {AGENT_COMMANDS, ORDERS_EVENTS} <= set(await admin.list_topics())
        finally:
            await admin.close()

    # Made again right after the restart answers.
    assert await eventually(has_the_topics, timeout=15)
