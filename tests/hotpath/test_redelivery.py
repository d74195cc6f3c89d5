"""A copy of an envelope the ledger already holds is a duplicate delivery, however old it is.

The Sniper's publish activity retries a slice with the very same signed command; a retry that
lands after the staleness window must not be refused as stale, because that refusal is an
``orders.events`` rejection under the id of an order that is working. Intake over the real
ledger (Postgres); the broker is never reached, which :class:`_NoBroker` enforces.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import timedelta

import asyncpg

from hotpath.intake import Intake
from hotpath.ledger_store import LedgerStore
from hotpath.refusals import DUPLICATE_DELIVERY
from tests.factories import Agent, enter_command, new_agent
from tests.hotpath.in_process import in_process_intake
from trading import sentry
from trading.commands import utc_now_ms
from trading.order_events import OrderEvent

LONG_AGO = timedelta(minutes=2)
"""Well outside the sentry's 30 s window."""


class _NoBroker:
    def __getattr__(self, name: str) -> Callable[..., object]:
        raise AssertionError(f"intake reached the broker ({name}) for a command it must not send")


def _intake(pool: asyncpg.Pool, emitted: list[OrderEvent]) -> Intake:
    return in_process_intake(LedgerStore(pool), _NoBroker(), emitted)


async def _entries(pool: asyncpg.Pool, command_id: str) -> list[tuple[str, bool]]:
    rows = await pool.fetch(
        "SELECT decision, authenticated FROM ledger_entries WHERE command_id = $1 ORDER BY seq", command_id
    )
    return [(r["decision"], r["authenticated"]) for r in rows]


async def _evidence(pool: asyncpg.Pool, signature_hash: str) -> list[tuple[str, str]]:
    """Unauthenticated entries (a refused envelope kept as evidence) with this signature hash."""
    rows = await pool.fetch(
        "SELECT decision, reason FROM ledger_entries WHERE signature_hash = $1 AND NOT authenticated",
        signature_hash,
    )
    return [(r["decision"], r["reason"]) for r in rows]


async def test_a_ledgered_envelope_delivered_after_the_window_is_a_duplicate_not_stale(
    agent: Agent, ledger_pool: asyncpg.Pool
) -> None:
    envelope = agent.sign(enter_command(agent.agent_id, issued_at=utc_now_ms() - LONG_AGO, quantity=5))
    cid = envelope.command.command_id
    # The first delivery, two minutes ago, was accepted and ledgered.
    await LedgerStore(ledger_pool).append_accepted(envelope, 5, {"quantity": 5})
    emitted: list[OrderEvent] = []

    outcome = await _intake(ledger_pool, emitted).handle(envelope.to_wire(), source="test")

    assert outcome.reason == DUPLICATE_DELIVERY
    assert emitted == []  # no rejection under the id of the order the first delivery made
    assert await _entries(ledger_pool, cid) == [("accepted", True)]
    reasons = await ledger_pool.fetch("SELECT reason FROM security_events WHERE command_id = $1", cid)
    assert [r["reason"] for r in reasons] == [DUPLICATE_DELIVERY]


async def test_an_old_envelope_the_ledger_does_not_hold_is_still_stale(
    agent: Agent, ledger_pool: asyncpg.Pool
) -> None:
    envelope = agent.sign(enter_command(agent.agent_id, issued_at=utc_now_ms() - LONG_AGO, quantity=5))
    emitted: list[OrderEvent] = []

    outcome = await _intake(ledger_pool, emitted).handle(envelope.to_wire(), source="test")

    assert outcome.reason == sentry.STALE
    assert emitted == []  # a sentry refusal speaks for no order
    # Evidence only: an unauthenticated entry, which never occupies the command's id.
    assert await _entries(ledger_pool, envelope.command.command_id) == []


async def test_a_command_re_signed_under_a_used_id_is_refused_without_a_record_under_that_id(
    agent: Agent, ledger_pool: asyncpg.Pool
) -> None:
    """An agent retrying with a fresh nonce and signature but the same command id: only the
    ledger's unique index on genuine ids catches it. The order the id belongs to stays as it is."""
    first = agent.sign(enter_command(agent.agent_id, account="DU-NO-PROFILE", quantity=5))
    cid = first.command.command_id
    await LedgerStore(ledger_pool).append_accepted(first, 5, {"quantity": 5})
    retry = agent.sign(enter_command(agent.agent_id, account="DU-NO-PROFILE", quantity=5, command_id=cid))
    emitted: list[OrderEvent] = []

    outcome = await _intake(ledger_pool, emitted).handle(retry.to_wire(), source="test")

    assert outcome.reason == sentry.REPLAYED_COMMAND_ID
    assert emitted == []  # a "rejected" record under cid would mark the live order rejected
    assert await _entries(ledger_pool, cid) == [("accepted", True)]
    assert await _evidence(ledger_pool, retry.signature_hash) == [("rejected", sentry.REPLAYED_COMMAND_ID)]
    reasons = await ledger_pool.fetch("SELECT reason FROM security_events WHERE command_id = $1", cid)
    assert [r["reason"] for r in reasons] == [sentry.REPLAYED_COMMAND_ID]


async def test_a_forgery_naming_a_live_orders_id_publishes_nothing_under_it(
    agent: Agent, ledger_pool: asyncpg.Pool
) -> None:
    genuine = agent.sign(enter_command(agent.agent_id, quantity=5))
    cid = genuine.command.command_id
    await LedgerStore(ledger_pool).append_accepted(genuine, 5, {"quantity": 5})
    forger = new_agent(agent.agent_id)  # the same agent name, a key the registry never saw
    forged = dataclasses.replace(
        forger.sign(enter_command(agent.agent_id, command_id=cid)), signer=agent.key_id
    )
    emitted: list[OrderEvent] = []

    outcome = await _intake(ledger_pool, emitted).handle(forged.to_wire(), source="test")

    assert outcome.reason == sentry.BAD_SIGNATURE
    assert emitted == []
    assert await _entries(ledger_pool, cid) == [("accepted", True)]
    assert await _evidence(ledger_pool, forged.signature_hash) == []  # nobody's signature: no ledger row


async def test_a_command_the_sentry_refused_gets_no_order_record_even_under_an_id_of_its_own(
    agent: Agent, ledger_pool: asyncpg.Pool
) -> None:
    forger = new_agent(agent.agent_id)
    forged = dataclasses.replace(forger.sign(enter_command(agent.agent_id)), signer=agent.key_id)
    emitted: list[OrderEvent] = []

    outcome = await _intake(ledger_pool, emitted).handle(forged.to_wire(), source="test")

    assert outcome.reason == sentry.BAD_SIGNATURE
    assert emitted == []  # the id is the sender's unauthenticated choice: it may be one the floor uses later
    assert await _evidence(ledger_pool, forged.signature_hash) == []  # nobody's signature: no ledger row
