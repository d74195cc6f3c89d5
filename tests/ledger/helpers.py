"""Builders for ledger tests: registered agents and signed commands."""

from __future__ import annotations

import asyncpg

from ledger.keys import register_key
from tests.fixtures.hotpath import Agent, enter_command, new_agent
from trading.signing import SignedCommand, public_key_bytes


async def registered_agent(db: asyncpg.Connection, agent_id: str = "alpha", role: str = "agent") -> Agent:
    agent = new_agent(agent_id)
    await register_key(db, agent_id, public_key_bytes(agent.private_key), role, ["*"])
    return agent


def signed_enter(agent: Agent, **kw: object) -> SignedCommand:
    return agent.sign(enter_command(agent.agent_id, **kw))  # type: ignore[arg-type]
