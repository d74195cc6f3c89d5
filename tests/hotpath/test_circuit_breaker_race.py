"""An order whose ledger commit is in flight when the circuit breaker trips is not sent.

The trip's cancel-all goes out at once; an order placed after it would outlive it. Intake here
runs over the real ledger (Postgres); the breaker trips from inside the ledger append, after the
row is written, which is the window a crash tick arriving during the commit falls into. The
broker must not be asked to place anything, which :class:`~tests.hotpath.in_process.BankrollOnly` enforces.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import asyncpg

from floor.breaker_cmd import breaker_command
from hotpath.circuit_breaker import CircuitBreaker
from hotpath.circuit_breaker_log import BreakerLog
from hotpath.ledger_store import LedgerStore
from hotpath.ports import Ledgered
from ledger.circuit_breaker import newest_breaker_entry
from ledger.keys import ROLE_SERVICE, register_key
from tests.factories import Agent, enter_command
from tests.hotpath.conftest import VENUE_ACCOUNT
from tests.hotpath.in_process import BankrollOnly, in_process_intake
from trading.circuit_breaker import CrashSignal
from trading.commands import CommandKind
from trading.order_events import EventKind, OrderEvent
from trading.risk import Refusal, TradingState
from trading.signing import SignedCommand, generate_private_key, public_key_bytes


class _TripsDuringCommit(LedgerStore):
    """A crash tick arrives while a command's entry is being appended (of ``kind``, if given)."""

    def __init__(self, pool: asyncpg.Pool, breaker: CircuitBreaker, kind: CommandKind | None = None) -> None:
        super().__init__(pool)
        self._breaker = breaker
        self._kind = kind

    async def append_accepted(
        self, envelope: SignedCommand, sized_quantity: int, detail: Mapping[str, Any]
    ) -> Ledgered:
        ledgered = await super().append_accepted(envelope, sized_quantity, detail)
        if self._kind in (None, envelope.command.kind):
            crash = CrashSignal(Decimal("200"), Decimal("180"), 0, Decimal("10"))
            self._breaker.trip("AAPL", crash, time.perf_counter_ns())
        return ledgered


async def test_an_order_committed_as_the_breaker_trips_is_rejected_not_sent(
    agent: Agent, ledger_pool: asyncpg.Pool, risk_profiles: None
) -> None:
    cancels: list[str] = []
    breaker = CircuitBreaker(lambda: cancels.append("cancel_all"), lambda trip: None)
    emitted: list[OrderEvent] = []
    intake = in_process_intake(
        _TripsDuringCommit(ledger_pool, breaker), BankrollOnly(), emitted, breaker=breaker
    )
    await intake.warm()
    envelope = agent.sign(enter_command(agent.agent_id, account=VENUE_ACCOUNT, quantity=5))
    cid = envelope.command.command_id

    outcome = await intake.handle(envelope.to_wire(), source="test")

    assert breaker.state is TradingState.HALTED and cancels == ["cancel_all"]
    assert outcome.reason == Refusal.HALTED.value
    records = [(e.command_id, e.kind, e.reason) for e in emitted]
    assert records == [(cid, EventKind.REJECTED, Refusal.HALTED.value)]
    assert intake.orders[cid].done
    # The ledger keeps what was decided, and the order-state record says it never went out.
    rows = await ledger_pool.fetch("SELECT decision FROM ledger_entries WHERE command_id = $1", cid)
    assert [r["decision"] for r in rows] == ["accepted"]


async def test_an_arm_right_after_an_automatic_trip_is_ledgered_after_that_trip(
    operator: Agent, ledger_pool: asyncpg.Pool, risk_profiles: None
) -> None:
    """The trip's entry is appended off the tick handler; an arm handled before that append
    lands must still follow it in the ledger, or a restart would find the trip newest and come
    up halted although the operator had re-armed."""
    key = generate_private_key()
    agent_id = f"floor-breaker-{uuid.uuid4().hex[:8]}"
    await register_key(ledger_pool, agent_id, public_key_bytes(key), ROLE_SERVICE, ["*"])
    breaker_log = BreakerLog(ledger_pool, key, agent_id)
    breaker = CircuitBreaker(lambda: None, lambda trip: breaker_log.record_trip(trip, breaker))
    intake = in_process_intake(
        LedgerStore(ledger_pool), BankrollOnly(), [], breaker=breaker, breaker_log=breaker_log
    )
    await intake.warm()
    arm = operator.sign(breaker_command(CommandKind.BREAKER_ARM, operator.agent_id))

    breaker.trip(
        "AAPL", CrashSignal(Decimal("200"), Decimal("180"), 0, Decimal("10")), time.perf_counter_ns()
    )
    outcome = await intake.handle(arm.to_wire(), source="test")

    assert outcome.reason is None and breaker.state is TradingState.ACTIVE
    entry = await newest_breaker_entry(ledger_pool)
    assert entry is not None and (entry.kind, entry.command_id) == ("breaker_arm", arm.command.command_id)
    assert entry.state is TradingState.ACTIVE
    kinds = await ledger_pool.fetch(
        "SELECT kind, agent_id FROM ledger_entries WHERE agent_id = ANY($1::text[]) ORDER BY seq",
        [agent_id, operator.agent_id],
    )
    assert [(r["kind"], r["agent_id"]) for r in kinds] == [
        ("breaker_tripped", agent_id),
        ("breaker_arm", operator.agent_id),
    ]


async def test_a_manual_re_arm_never_overrides_an_automatic_trip_that_landed_while_it_was_appended(
    operator: Agent, ledger_pool: asyncpg.Pool, risk_profiles: None
) -> None:
    key = generate_private_key()
    agent_id = f"floor-breaker-{uuid.uuid4().hex[:8]}"
    await register_key(ledger_pool, agent_id, public_key_bytes(key), ROLE_SERVICE, ["*"])
    breaker_log = BreakerLog(ledger_pool, key, agent_id)
    breaker = CircuitBreaker(lambda: None, lambda trip: breaker_log.record_trip(trip, breaker))
    breaker.halt()  # halted by an earlier trip; the operator re-arms
    intake = in_process_intake(
        _TripsDuringCommit(ledger_pool, breaker, CommandKind.BREAKER_ARM),
        BankrollOnly(),
        [],
        breaker=breaker,
        breaker_log=breaker_log,
    )
    await intake.warm()
    arm = operator.sign(breaker_command(CommandKind.BREAKER_ARM, operator.agent_id))
    try:
        outcome = await intake.handle(arm.to_wire(), source="test")

        assert outcome.reason is None  # the arm is ledgered, and the trip after it stands
        assert breaker.state is TradingState.HALTED
        await breaker_log.settled()
        # A restart reads the same: the newest breaker entry is a trip, after the arm.
        entry = await newest_breaker_entry(ledger_pool, agent_id)
        assert entry is not None and (entry.kind, entry.agent_id, entry.problem) == (
            "breaker_tripped",
            agent_id,
            None,
        )
        arm_seq = await ledger_pool.fetchval(
            "SELECT seq FROM ledger_entries WHERE command_id = $1 AND authenticated", arm.command.command_id
        )
        assert entry.seq > arm_seq
    finally:
        # The ledger is shared with later suites, whose hot paths start in the state of its newest
        # breaker entry: re-arm, as an operator would, so they do not start halted.
        plain = in_process_intake(
            LedgerStore(ledger_pool), BankrollOnly(), [], breaker=breaker, breaker_log=breaker_log
        )
        await plain.warm()
        again = operator.sign(breaker_command(CommandKind.BREAKER_ARM, operator.agent_id))
        assert (await plain.handle(again.to_wire(), source="test")).reason is None
        assert (await newest_breaker_entry(ledger_pool, agent_id)).state is TradingState.ACTIVE  # type: ignore[union-attr]
