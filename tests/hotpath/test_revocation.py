"""A key revoked between two reloads of the hot path's registry cannot get an order out.

The hot path checks revocation against the registry it holds in memory, reloaded when Postgres
announces a change (:mod:`hotpath.registry`); the ledger checks the database's registry under its
head lock. Intake here runs over the real ledger (Postgres) with its registry loaded *before*
the revocation, so the sentry still finds the key good and only the ledger can stop the order;
the broker must not be reached, which :class:`~tests.hotpath.in_process.BankrollOnly` enforces.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import asyncpg
import pytest

from hotpath.intake import Intake
from hotpath.ledger_store import LedgerStore
from hotpath.registry import RegistryWatch
from ledger.keys import revoke_agent
from tests.factories import Agent, enter_command, new_agent
from tests.fixtures.hotpath import register
from tests.hotpath.conftest import VENUE_ACCOUNT
from tests.hotpath.in_process import BankrollOnly, in_process_intake
from trading import sentry
from trading.order_events import OrderEvent


async def _entries(pool: asyncpg.Pool, command_id: str) -> list[tuple[str, bool, str | None]]:
    rows = await pool.fetch(
        "SELECT decision, authenticated, reason FROM ledger_entries WHERE command_id = $1 ORDER BY seq",
        command_id,
    )
    return [(r["decision"], r["authenticated"], r["reason"]) for r in rows]


async def _unauthenticated_refusals(pool: asyncpg.Pool, signature: bytes) -> list[str]:
    rows = await pool.fetch(
        "SELECT reason FROM ledger_entries WHERE signature = $1 AND NOT authenticated ORDER BY seq", signature
    )
    return [r["reason"] for r in rows]


@dataclass
class _Stale:
    intake: Intake
    emitted: list[OrderEvent]


@pytest.fixture
async def stale(agent: Agent, ledger_pool: asyncpg.Pool, risk_profiles: None) -> _Stale:
    """Intake whose registry was loaded before ``agent``'s key was revoked."""
    emitted: list[OrderEvent] = []
    intake = in_process_intake(LedgerStore(ledger_pool), BankrollOnly(), emitted)
    await intake.warm()  # the registry as it was: the key is good
    await revoke_agent(ledger_pool, agent.agent_id)
    return _Stale(intake, emitted)


async def test_an_order_signed_by_a_key_revoked_after_the_registry_loaded_is_refused_by_the_ledger(
    stale: _Stale, agent: Agent, ledger_pool: asyncpg.Pool
) -> None:
    intake, emitted = stale.intake, stale.emitted
    first = agent.sign(enter_command(agent.agent_id, account=VENUE_ACCOUNT, quantity=5))
    outcome = await intake.handle(first.to_wire(), source="test")

    assert outcome.reason == sentry.REVOKED_KEY
    assert intake.orders == {}  # nothing working, nothing sent
    assert emitted == []  # a sentry refusal speaks for no order
    # No authenticated entry: only the refusal, kept as unauthenticated evidence.
    assert await _entries(ledger_pool, first.command.command_id) == []
    assert await _unauthenticated_refusals(ledger_pool, first.signature) == [sentry.REVOKED_KEY]
    reasons = await ledger_pool.fetch(
        "SELECT reason, severity, key_id FROM security_events WHERE command_id = $1", first.command.command_id
    )
    assert [(r["reason"], r["severity"], r["key_id"]) for r in reasons] == [
        (sentry.REVOKED_KEY, "critical", agent.key_id)
    ]

    assert "ledger" in await _security_detail(ledger_pool, first.command.command_id)

    # The refusal also corrected the cached registry: the next command stops at the sentry.
    second = agent.sign(enter_command(agent.agent_id, account=VENUE_ACCOUNT, quantity=5))
    assert (await intake.handle(second.to_wire(), source="test")).reason == sentry.REVOKED_KEY
    assert await _unauthenticated_refusals(ledger_pool, second.signature) == [sentry.REVOKED_KEY]
    assert "ledger" not in await _security_detail(ledger_pool, second.command.command_id)


async def _security_detail(pool: asyncpg.Pool, command_id: str) -> str:
    """The security event's detail text: the ledger's words when the ledger refused."""
    return str(
        await pool.fetchval("SELECT detail->>'detail' FROM security_events WHERE command_id = $1", command_id)
    )


async def test_a_command_the_floor_would_refuse_anyway_is_refused_for_the_revoked_key(
    stale: _Stale, agent: Agent, ledger_pool: asyncpg.Pool
) -> None:
    """Refused by the floor (no risk profile for the account), its ledger entry then refused for
    the revoked signer: the revocation is what gets reported, as a security event."""
    command = agent.sign(enter_command(agent.agent_id, account="DU-NOPROFILE", quantity=5))
    outcome = await stale.intake.handle(command.to_wire(), source="test")

    assert outcome.reason == sentry.REVOKED_KEY
    assert stale.emitted == []
    assert await _entries(ledger_pool, command.command.command_id) == []
    assert await _unauthenticated_refusals(ledger_pool, command.signature) == [sentry.REVOKED_KEY]
    assert "ledger" in await _security_detail(ledger_pool, command.command.command_id)
    # This path too corrects the cached registry: the next command stops at the sentry.
    again = agent.sign(enter_command(agent.agent_id, account="DU-NOPROFILE", quantity=5))
    assert (await stale.intake.handle(again.to_wire(), source="test")).reason == sentry.REVOKED_KEY
    assert "ledger" not in await _security_detail(ledger_pool, again.command.command_id)


async def test_the_registry_watch_reloads_the_moment_a_revocation_commits(
    stale: _Stale, agent: Agent, ledger_pool: asyncpg.Pool, postgres_url: str
) -> None:
    """Migration 0007 announces the change; with the periodic reload an hour away, only the
    announcement can have reloaded the registry, and the sentry, not the ledger, refuses."""
    # The stale fixture revoked the key before the watch started: the watch's first reload
    # (on connecting) picks that up. Revoke a second agent's key to see an announcement.
    other = new_agent()
    await register(ledger_pool, other)
    reloads = asyncio.Queue[None]()
    watch = RegistryWatch(
        postgres_url, stale.intake, refresh_s=3600, on_reload=lambda: reloads.put_nowait(None)
    )
    task = asyncio.create_task(watch.run())
    try:
        await asyncio.wait_for(reloads.get(), timeout=10)  # the reload on connecting
        before = other.sign(enter_command(other.agent_id, account="DU-NOPROFILE", quantity=5))
        assert (await stale.intake.handle(before.to_wire(), source="test")).reason == "risk.no_profile"
        await revoke_agent(ledger_pool, other.agent_id)
        await asyncio.wait_for(reloads.get(), timeout=10)
    finally:
        task.cancel()
    command = other.sign(enter_command(other.agent_id, account="DU-NOPROFILE", quantity=5))
    assert (await stale.intake.handle(command.to_wire(), source="test")).reason == sentry.REVOKED_KEY
    assert "ledger" not in await _security_detail(ledger_pool, command.command.command_id)


async def test_a_reload_stopping_a_revoked_keys_icebergs_survives_intake_forgetting_a_key_meanwhile(
    stale: _Stale, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reload awaits the ledger for each newly revoked key while intake goes on deciding
    commands, and intake forgets a key the ledger refused as revoked: the reload must not end
    on the registry it walks changing under it (the watch would then never reload again)."""
    intake = stale.intake
    store = intake.ledger
    signed_by = store.icebergs_signed_by

    async def forgetting_meanwhile(key_id: str) -> list[str]:
        intake._forget_key(key_id)  # as intake does when the ledger refuses the key as revoked
        return list(await signed_by(key_id))

    monkeypatch.setattr(store, "icebergs_signed_by", forgetting_meanwhile)
    await intake.refresh_keys()  # the revocation after the registry loaded: its icebergs are stopped
