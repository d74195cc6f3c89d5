"""A copy of an envelope the ledger already holds is a duplicate delivery, however old it is.

The Sniper's publish activity retries a slice with the very same signed command; a retry that
lands after the staleness window must not be refused as stale, because that refusal is an
``orders.events`` rejection under the id of an order that is working. Intake over the real
ledger (Postgres); the broker is never reached, which :class:`_NoBroker` enforces.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import asyncpg

from bus.topics import SECURITY_EVENTS
from hotpath.account import AccountBook
from hotpath.circuit import CircuitBreaker
from hotpath.intake import Intake
from hotpath.ledger_store import LedgerStore
from hotpath.refusals import DUPLICATE_DELIVERY
from observability.security import SecurityLog
from observability.telemetry import setup
from tests.fixtures.hotpath import Agent, enter_command
from trading import sentry
from trading.commands import utc_now_ms
from trading.order_events import EventKind, OrderEvent

LONG_AGO = timedelta(minutes=2)
"""Well outside the sentry's 30 s window."""


class _NoBroker:
    def __getattr__(self, name: str) -> Callable[..., object]:
        raise AssertionError(f"intake reached the broker ({name}) for a command it must not send")


def _intake(pool: asyncpg.Pool, emitted: list[OrderEvent]) -> Intake:
    ledger = LedgerStore(pool)
    return Intake(
        broker=_NoBroker(),  # type: ignore[arg-type]
        ledger=ledger,
        producer=None,  # type: ignore[arg-type]  # records go to `emit`
        security=SecurityLog(ledger, None, SECURITY_EVENTS),
        breaker=CircuitBreaker(lambda: None, lambda trip: None),
        book=AccountBook(),
        orders={},
        metrics=setup("redelivery-test").metrics,
        emit=emitted.append,
    )


async def _entries(pool: asyncpg.Pool, command_id: str) -> list[tuple[str, bool]]:
    rows = await pool.fetch(
        "SELECT decision, authenticated FROM ledger_entries WHERE command_id = $1 ORDER BY seq", command_id
    )
    return [(r["decision"], r["authenticated"]) for r in rows]


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
    assert [(e.command_id, e.kind, e.reason) for e in emitted] == [
        (envelope.command.command_id, EventKind.REJECTED, sentry.STALE)
    ]
    # Evidence only: an unauthenticated entry, which never occupies the command's id.
    assert await _entries(ledger_pool, envelope.command.command_id) == []
