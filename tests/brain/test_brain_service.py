"""``floor up --demo``'s brain: ``python -m brain`` as the supervisor starts it, ready once it
reads the market, its demo agents' entries reaching the ledger."""

from __future__ import annotations

import asyncio

import asyncpg

from brain.agents import DEMO_AGENTS, demo_key_path
from brain.service import brain_spec
from floor.supervisor import Supervisor, stop_process_group
from ledger.keys import active_key_for, register_key
from tests.brain.conftest import BRAIN_SYMBOLS
from tests.helpers import eventually
from tests.hotpath.conftest import VENUE_ACCOUNT, HotPathProcess
from trading.signing import generate_private_key, private_key_to_pem, public_key_bytes


async def test_the_supervised_brain_trades_with_its_own_keys(
    brain_hotpath: HotPathProcess, supervisor: Supervisor, ledger_pool: asyncpg.Pool
) -> None:
    settings = brain_hotpath.settings
    for agent_id, _rule in DEMO_AGENTS:  # as `floor brain` provisions them (tested on its own)
        path = demo_key_path(settings, agent_id)
        if path.exists() and await active_key_for(ledger_pool, agent_id) is not None:
            continue
        key = generate_private_key()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(private_key_to_pem(key))
        await register_key(ledger_pool, agent_id, public_key_bytes(key), "agent", [VENUE_ACCOUNT])

    service = await asyncio.to_thread(supervisor.start, brain_spec(settings, symbols=BRAIN_SYMBOLS[1:]))
    try:
        owner = DEMO_AGENTS[0][0]  # the one symbol's agent

        async def entered() -> bool:
            n = await ledger_pool.fetchval(
                "SELECT count(*) FROM ledger_entries"
                " WHERE agent_id = $1 AND kind = 'enter' AND decision = 'accepted'",
                owner,
            )
            return bool(n)

        try:
            await eventually(entered, timeout=45.0)
        except AssertionError as exc:
            tail = service.log_path.read_text(errors="replace")[-3000:]
            raise AssertionError(f"no accepted entry of {owner}; the brain's log ends:\n{tail}") from exc
    finally:
        supervisor.running.remove(service)
        await asyncio.to_thread(stop_process_group, service.pid)
