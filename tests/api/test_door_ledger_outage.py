"""The ledger's Postgres goes away under a running API process: the door answers 503 with what
is wrong and what to do, its own limits still hold, and it recovers when Postgres is back.

The API and its Postgres are this test's own (the session's Postgres serves every other test),
both started the way ``floor up`` starts them; Postgres is stopped with a fast shutdown, as an
operator's ``pg_ctl stop`` or a crash of the database host would end the API's connections.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
from collections.abc import Iterator

import asyncpg
import pytest

from api.door import LEDGER_UNAVAILABLE
from api.door_guard import BODY_LIMIT
from config.ports import free_port
from config.settings import FloorSettings
from floor import services
from floor.database import prepare_database
from floor.supervisor import RunningService, Supervisor
from tests.api.http import JSON, api_process, client_from
from tests.factories import Agent, enter_command, new_agent
from tests.fixtures.hotpath import register


@dataclasses.dataclass
class OwnLedger:
    settings: FloorSettings
    supervisor: Supervisor
    service: RunningService | None = None

    def start(self) -> None:
        spec = services.postgres_spec(self.settings)
        self.service = self.supervisor.start(dataclasses.replace(spec, name="postgres-ledger-outage"))

    def stop(self) -> None:
        """Fast shutdown (SIGINT): sessions are ended at once, as in an outage. (SIGTERM would
        wait for the API to disconnect, which it never does.)"""
        assert self.service is not None
        service, self.service = self.service, None
        self.supervisor.running.remove(service)
        os.kill(service.pid, signal.SIGINT)
        service.process.wait(timeout=30)


@pytest.fixture
def own_ledger(
    floor_settings: FloorSettings, supervisor: Supervisor, kafka_bootstrap: str
) -> Iterator[OwnLedger]:
    settings = floor_settings.model_copy(
        update={"var_dir": floor_settings.var_dir / "ledger-outage", "pg_port": free_port()}
    )
    ledger = OwnLedger(settings, supervisor)
    ledger.start()
    asyncio.run(prepare_database(settings))  # roles and migrations, as `floor up` makes them
    try:
        yield ledger
    finally:
        if ledger.service is not None:
            ledger.stop()


async def test_an_unreachable_ledger_is_503_saying_what_to_do_and_the_door_recovers(
    own_ledger: OwnLedger, floor_settings: FloorSettings, supervisor: Supervisor
) -> None:
    agent: Agent = new_agent()
    pool = await asyncpg.create_pool(own_ledger.settings.db_url, min_size=1, max_size=1)
    try:
        await register(pool, agent)
    finally:
        await pool.close()

    def signed() -> bytes:
        return agent.sign(enter_command(agent.agent_id)).to_wire()

    unsigned = {**agent.sign(enter_command(agent.agent_id)).to_wire_dict(), "signature": ""}
    with api_process(own_ledger.settings, supervisor, "api-ledger-outage", {}) as (api_url, _):
        async with client_from(api_url, "127.0.0.31") as client:
            before = await client.post("/v1/commands", content=signed(), headers=JSON)
            assert before.status_code == 202, before.text

            await asyncio.to_thread(own_ledger.stop)
            for body in (signed(), json.dumps(unsigned).encode()):
                during = await client.post("/v1/commands", content=body, headers=JSON)
                assert during.status_code == 503, during.text
                assert during.json()["error"] == LEDGER_UNAVAILABLE
                assert (
                    "Postgres" in during.json()["detail"]
                    and "send the command again" in during.json()["detail"]
                )
            # The guard needs no database.
            too_large = await client.post("/v1/commands", content=b" " * (BODY_LIMIT + 1), headers=JSON)
            assert too_large.status_code == 413

            await asyncio.to_thread(own_ledger.start)
            after = await client.post("/v1/commands", content=signed(), headers=JSON)
            assert after.status_code == 202, after.text
