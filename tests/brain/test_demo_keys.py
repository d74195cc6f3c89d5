"""``floor brain`` provisions its agents as ``floor keys new`` would, once."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from brain.agents import DEMO_AGENTS, load_agents
from config.settings import FloorSettings
from floor.brain_cmd import provision_demo_agents
from floor.provision import provision
from ledger import keys as registry
from ledger.verify import verify_ledger
from tests.floor.test_provision import _fresh_database


async def test_demo_agents_get_keys_on_the_paper_account_once(postgres_url: str, tmp_path: Path) -> None:
    url = await _fresh_database(postgres_url, f"brain_{tmp_path.name[-6:].lower()}")
    settings = FloorSettings(
        var_dir=tmp_path, DATABASE_URL=url, cli_database_url=url, broker_accounts="DU777"
    )
    await provision(settings, paper_account=None)  # the operator, who signs the registrations

    done = await provision_demo_agents(settings)
    assert sum(line.startswith("registered") for line in done) == len(DEMO_AGENTS)
    agents = load_agents(settings)
    conn = await asyncpg.connect(url)
    try:
        for agent in agents:
            active = await registry.active_key_for(conn, agent.agent_id)
            assert active is not None and active.accounts == frozenset({"DU777"})
            assert active.role == registry.ROLE_AGENT
    finally:
        await conn.close()
    assert (await verify_ledger(url)).first_bad is None

    assert await provision_demo_agents(settings) == []
