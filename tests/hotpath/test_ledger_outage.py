"""The ledger unreachable while intake decides a command: nothing is lost, nothing doubled.

Intake over the real ledger (Postgres), with the append made to fail the way asyncpg fails
when the connection goes: before the commit (the command was not decided) or after it (the
entry is in, but intake never heard). The same Kafka record is then handled again, as
``hotpath.command_loop.consume_commands`` does until Postgres answers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import asyncpg

from brokers.base import BrokerOrder, NotConnected, Placement
from hotpath.command_loop import consume_commands
from hotpath.ledger_store import LedgerStore
from hotpath.ports import Ledgered
from hotpath.refusals import DUPLICATE_DELIVERY, INTERNAL_ERROR
from tests.factories import Agent, enter_command
from tests.hotpath.conftest import VENUE_ACCOUNT
from tests.hotpath.in_process import in_process_intake
from trading import sentry
from trading.commands import utc_now_ms
from trading.signing import SignedCommand


class _Broker:
    def __init__(self) -> None:
        self.placed: list[str] = []

    async def net_liquidation(self, account: str) -> Decimal:
        return Decimal("1000000")

    def place(self, order: BrokerOrder) -> Placement:
        self.placed.append(order.order_ref)
        return Placement(order.order_ref, True, time.perf_counter_ns(), "test", 1, len(self.placed))


class _FlakyLedger(LedgerStore):
    """The first append fails as a lost connection does, before or after its commit."""

    def __init__(self, pool: asyncpg.Pool, *, after_commit: bool, stall_s: float = 0.0) -> None:
        super().__init__(pool)
        self._after_commit = after_commit
        self._stall_s = stall_s
        self.failures = 0

    async def append_accepted(
        self, envelope: SignedCommand, sized_quantity: int, detail: Mapping[str, Any]
    ) -> Ledgered:
        if self.failures == 0:
            self.failures += 1
            if self._after_commit:
                await super().append_accepted(envelope, sized_quantity, detail)
            await asyncio.sleep(self._stall_s)  # a connection that hangs before it breaks
            raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")
        return await super().append_accepted(envelope, sized_quantity, detail)


@dataclass
class _Record:
    value: bytes
    topic: str = "agent.commands"
    partition: int = 0
    offset: int = 7
    timestamp: int = 0


async def _records(*values: bytes) -> AsyncIterator[_Record]:
    for value in values:
        yield _Record(value)


async def _security_reasons(pool: asyncpg.Pool, command_id: str) -> list[str]:
    rows = await pool.fetch("SELECT reason FROM security_events WHERE command_id = $1", command_id)
    return [r["reason"] for r in rows]


async def test_a_record_met_by_an_unreachable_ledger_is_decided_once_it_answers(
    agent: Agent, ledger_pool: asyncpg.Pool, risk_profiles: None
) -> None:
    broker, emitted = _Broker(), []
    ledger = _FlakyLedger(ledger_pool, after_commit=False)
    intake = in_process_intake(ledger, broker, emitted)
    await intake.warm()
    envelope = agent.sign(enter_command(agent.agent_id, account=VENUE_ACCOUNT, quantity=5))

    await consume_commands(intake, _records(envelope.to_wire()))

    assert ledger.failures == 1
    assert broker.placed == [envelope.command.command_id]  # retried, not lost, not refused
    assert await _security_reasons(ledger_pool, envelope.command.command_id) == []


async def test_an_append_committed_though_intake_never_heard_is_sent_once_on_the_retry(
    agent: Agent, ledger_pool: asyncpg.Pool, risk_profiles: None
) -> None:
    """The connection went after the COMMIT: the retry finds the command's own entry. It is the
    order intake was deciding, ledgered and never sent: it goes to the broker now, once, not
    at the next restart. A later copy of the record is a duplicate delivery."""
    broker, emitted = _Broker(), []
    ledger = _FlakyLedger(ledger_pool, after_commit=True)
    intake = in_process_intake(ledger, broker, emitted)
    await intake.warm()
    envelope = agent.sign(enter_command(agent.agent_id, account=VENUE_ACCOUNT, quantity=5))
    cid = envelope.command.command_id

    await consume_commands(intake, _records(envelope.to_wire()))

    assert ledger.failures == 1
    assert broker.placed == [cid]
    assert [(e.kind.value, e.quantity) for e in emitted] == [("accepted", 5)]
    rows = await ledger_pool.fetch("SELECT decision FROM ledger_entries WHERE command_id = $1", cid)
    assert [r["decision"] for r in rows] == ["accepted"]
    assert await _security_reasons(ledger_pool, cid) == []

    outcome = await intake.handle(envelope.to_wire(), source="test")

    assert outcome.reason == DUPLICATE_DELIVERY
    assert broker.placed == [cid]
    assert await _security_reasons(ledger_pool, cid) == [DUPLICATE_DELIVERY]


async def test_an_order_whose_commit_is_found_after_the_window_is_not_sent_but_ends_stale(
    agent: Agent, ledger_pool: asyncpg.Pool, risk_profiles: None
) -> None:
    """The lost answer is found only after the sentry's window has passed: the intent is too
    old to execute now. The order ends ``rejected: sentry.stale`` in its state rows (which is
    what keeps a restart from sending it)."""
    broker, emitted = _Broker(), []
    ledger = _FlakyLedger(ledger_pool, after_commit=True, stall_s=3.5)
    intake = in_process_intake(ledger, broker, emitted)
    await intake.warm()
    issued = utc_now_ms() - intake.replay.window.max_age + timedelta(seconds=3)
    envelope = agent.sign(enter_command(agent.agent_id, account=VENUE_ACCOUNT, quantity=5, issued_at=issued))
    cid = envelope.command.command_id

    await consume_commands(intake, _records(envelope.to_wire()))

    assert broker.placed == []
    assert [(e.kind.value, e.reason) for e in emitted] == [("rejected", sentry.STALE)]
    rows = await ledger_pool.fetch("SELECT kind, reason FROM order_events WHERE command_id = $1", cid)
    assert [(r["kind"], r["reason"]) for r in rows] == [("rejected", sentry.STALE)]


class _BrokerDown:
    """Intake that meets a broker with no session: a ConnectionError, but not the ledger's."""

    def __init__(self) -> None:
        self.calls = 0
        self.ledger = self
        self.ops: list[tuple[str, object]] = []

    async def handle(
        self,
        value: bytes,
        *,
        produce_ts_ms: int | None = None,
        source: str = "",
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> None:
        self.calls += 1
        raise NotConnected("no session")

    async def record_ops_event(self, kind: str, severity: str, detail: Mapping[str, Any]) -> None:
        self.ops.append((kind, detail["exception"]))


async def test_a_broker_without_a_session_is_not_taken_for_an_unreachable_ledger() -> None:
    """NotConnected is a ConnectionError too; retrying it would hold intake for as long as the
    broker is down. A failure intake did not record itself is recorded, and intake moves on."""
    intake = _BrokerDown()
    await consume_commands(intake, _records(b"{}", b"{}"))  # type: ignore[arg-type]
    assert intake.calls == 2
    assert intake.ops == [(INTERNAL_ERROR, "NotConnected")] * 2
