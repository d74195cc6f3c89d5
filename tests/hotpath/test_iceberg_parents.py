"""Intake's rules for iceberg slices, iceberg controls and the floor's own service keys, over
the real ledger (Postgres) and Kafka: every refusal named, ledgered, and where it points at a
forged or misused key, a security event. The broker is never reached
(:class:`~tests.hotpath.in_process.BankrollOnly` enforces it)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from floor.settings import FloorSettings
from hotpath.intake import Intake
from hotpath.ledger_store import LedgerStore
from ledger.iceberg_parents import UNVERIFIED_ICEBERG_ENTRY
from ledger.keys import register_key, revoke_agent
from tests.fixtures.hotpath import Agent, enter_command, new_agent, plant_entry, register
from tests.hotpath.conftest import TIGHT_ACCOUNT, VENUE_ACCOUNT
from tests.hotpath.in_process import BankrollOnly, in_process_intake
from trading import iceberg_parents as parents
from trading.commands import Command, CommandKind, Edge, Side, TimeInForce, utc_now_ms
from trading.order_events import EventKind, OrderEvent
from trading.signing import public_key_bytes

TOTAL = 300


@dataclass
class Floor:
    intake: Intake
    emitted: list[OrderEvent]
    author: Agent
    sniper: Agent
    pool: asyncpg.Pool
    producer: AIOKafkaProducer
    parent_id: str = ""

    def fresh_intake(self) -> Intake:
        """Another intake over the same ledger: a hot path restarted, knowing nothing yet."""
        return in_process_intake(LedgerStore(self.pool), BankrollOnly(), self.emitted, producer=self.producer)

    async def handle(self, signer: Agent, command: Command, intake: Intake | None = None) -> str | None:
        outcome = await (intake or self.intake).handle(signer.sign(command).to_wire(), source="test")
        return outcome.reason


def _common(agent_id: str, account: str = VENUE_ACCOUNT) -> dict[str, Any]:
    return dict(
        command_id=f"cmd-{uuid.uuid4().hex}", agent_id=agent_id, account=account, nonce=uuid.uuid4().hex,
        issued_at=utc_now_ms(),
    )  # fmt: skip


def iceberg(agent_id: str) -> Command:
    return Command(
        kind=CommandKind.ICEBERG, **_common(agent_id), symbol="AAPL", side=Side.BUY,
        edge=Edge(Decimal("0.55"), Decimal("2"), Decimal("185")), tif=TimeInForce.DAY, quantity=TOTAL,
        display_size=100,
    )  # fmt: skip


def control(agent_id: str, kind: CommandKind, parent_id: str, **fields: Any) -> Command:
    return Command(kind=kind, **_common(agent_id), parent_id=parent_id, **fields)


def slice_of(agent_id: str, parent_id: str, *, quantity: int = 100, account: str = VENUE_ACCOUNT) -> Command:
    return enter_command(agent_id, account=account, quantity=quantity, parent_id=parent_id)


@pytest.fixture
async def floor(
    ledger_pool: asyncpg.Pool, risk_profiles: None, command_producer: AIOKafkaProducer, agent: Agent
) -> Floor:
    """Intake with a live parent of ``agent``'s (AAPL, BUY, 300) and a service key like the Sniper's."""
    sniper = new_agent(f"sniper-{uuid.uuid4().hex[:8]}")
    await register_key(ledger_pool, sniper.agent_id, public_key_bytes(sniper.private_key), "service", ["*"])
    emitted: list[OrderEvent] = []
    intake = in_process_intake(LedgerStore(ledger_pool), BankrollOnly(), emitted, producer=command_producer)
    await intake.warm()
    state = Floor(intake, emitted, agent, sniper, ledger_pool, command_producer)
    parent = iceberg(agent.agent_id)
    assert await state.handle(agent, parent) is None
    state.parent_id = parents.parent_workflow_id(parent.command_id)
    return state


async def _entry(pool: asyncpg.Pool, command_id: str) -> tuple[str, str | None, dict[str, Any]]:
    row = await pool.fetchrow(
        "SELECT decision, reason, detail FROM ledger_entries WHERE command_id = $1 AND authenticated",
        command_id,
    )
    assert row is not None, f"no ledger entry for {command_id}"
    return row["decision"], row["reason"], json.loads(row["detail"] or "{}")


async def _security_reasons(pool: asyncpg.Pool, command_id: str) -> list[str]:
    rows = await pool.fetch("SELECT reason FROM security_events WHERE command_id = $1", command_id)
    return [r["reason"] for r in rows]


async def test_a_slice_naming_no_ledgered_parent_is_refused_as_unknown_parent(floor: Floor) -> None:
    command = slice_of(floor.sniper.agent_id, "iceberg-cmd-nobody-ever-sent")
    assert await floor.handle(floor.sniper, command) == parents.UNKNOWN_PARENT
    assert (await _entry(floor.pool, command.command_id))[:2] == ("rejected", parents.UNKNOWN_PARENT)
    assert await _security_reasons(floor.pool, command.command_id) == [parents.UNKNOWN_PARENT]
    # The refusal reaches the would-be parent like any slice's.
    assert [(e.command_id, e.kind, e.reason) for e in floor.emitted] == [
        (command.command_id, EventKind.REJECTED, parents.UNKNOWN_PARENT)
    ]


async def test_a_slice_for_another_account_than_its_parent_is_refused_as_parent_mismatch(
    floor: Floor,
) -> None:
    command = slice_of(floor.sniper.agent_id, floor.parent_id, account=TIGHT_ACCOUNT)
    assert await floor.handle(floor.sniper, command) == parents.PARENT_MISMATCH
    assert (await _entry(floor.pool, command.command_id))[:2] == ("rejected", parents.PARENT_MISMATCH)
    assert await _security_reasons(floor.pool, command.command_id) == [parents.PARENT_MISMATCH]


async def test_a_slice_that_would_take_the_parent_past_its_total_is_refused_as_over_total(
    floor: Floor,
) -> None:
    command = slice_of(floor.sniper.agent_id, floor.parent_id, quantity=TOTAL + 1)
    assert await floor.handle(floor.sniper, command) == parents.OVER_TOTAL
    decision, reason, detail = await _entry(floor.pool, command.command_id)
    assert (decision, reason, detail["taken"], detail["quantity"]) == (
        "rejected",
        parents.OVER_TOTAL,
        0,
        TOTAL + 1,
    )


async def test_a_service_key_may_not_trade_an_account_on_its_own(floor: Floor) -> None:
    """The Sniper's key holds '*', which is no blank cheque: an enter that is no slice, an exit,
    a cancel_all, a parent of its own or a control are all refused."""
    sniper = floor.sniper.agent_id
    attempts = [
        enter_command(sniper, account=VENUE_ACCOUNT, quantity=10),
        Command(kind=CommandKind.CANCEL_ALL, **_common(sniper)),
        iceberg(sniper),
        control(sniper, CommandKind.ICEBERG_CANCEL, floor.parent_id),
    ]
    for command in attempts:
        assert await floor.handle(floor.sniper, command) == parents.FLOOR_KEY_OUT_OF_SCOPE, command.kind
        assert (await _entry(floor.pool, command.command_id))[:2] == (
            "rejected",
            parents.FLOOR_KEY_OUT_OF_SCOPE,
        )
        assert await _security_reasons(floor.pool, command.command_id) == [parents.FLOOR_KEY_OUT_OF_SCOPE]
    # A cancel from a service key must name an order the floor holds.
    stray = Command(kind=CommandKind.CANCEL, **_common(sniper), target_command_id="cmd-not-an-order")
    assert await floor.handle(floor.sniper, stray) == "intake.unknown_order"


async def test_only_the_author_or_an_operator_controls_a_parent_and_each_control_is_ledgered(
    floor: Floor, ledger_pool: asyncpg.Pool
) -> None:
    stranger = new_agent()
    await register(ledger_pool, stranger)
    meddling = control(stranger.agent_id, CommandKind.ICEBERG_CANCEL, floor.parent_id)
    assert await floor.handle(stranger, meddling) == parents.NOT_ALLOWED
    assert await _security_reasons(floor.pool, meddling.command_id) == [parents.NOT_ALLOWED]

    operator = new_agent(f"ops-{uuid.uuid4().hex[:8]}")
    await register_key(
        ledger_pool, operator.agent_id, public_key_bytes(operator.private_key), "operator", ["*"]
    )
    pause = control(operator.agent_id, CommandKind.ICEBERG_PAUSE, floor.parent_id)
    assert await floor.handle(operator, pause) is None
    amend = control(floor.author.agent_id, CommandKind.ICEBERG_AMEND, floor.parent_id, quantity=150)
    assert await floor.handle(floor.author, amend) is None
    for accepted in (pause, amend):
        decision, _, detail = await _entry(floor.pool, accepted.command_id)
        assert (decision, detail["parent_id"]) == ("accepted", floor.parent_id)

    # The amended total binds the slices, also for a hot path that learns the parent from the
    # ledger (restarted since).
    restarted = floor.fresh_intake()
    await restarted.warm()
    over = slice_of(floor.sniper.agent_id, floor.parent_id, quantity=151)
    assert await floor.handle(floor.sniper, over, restarted) == parents.OVER_TOTAL

    cancel = control(floor.author.agent_id, CommandKind.ICEBERG_CANCEL, floor.parent_id)
    assert await floor.handle(floor.author, cancel) is None
    late = slice_of(floor.sniper.agent_id, floor.parent_id, quantity=50)
    assert await floor.handle(floor.sniper, late) == parents.PARENT_DONE
    again = control(floor.author.agent_id, CommandKind.ICEBERG_RESUME, floor.parent_id)
    assert await floor.handle(floor.author, again) == parents.PARENT_DONE


async def test_a_control_naming_a_parent_of_another_account_is_refused_as_unknown_parent(
    floor: Floor,
) -> None:
    command = control(floor.author.agent_id, CommandKind.ICEBERG_PAUSE, floor.parent_id)
    command = Command(**{**command.__dict__, "account": TIGHT_ACCOUNT})
    assert await floor.handle(floor.author, command) == parents.UNKNOWN_PARENT


async def test_a_slice_of_a_parent_whose_author_was_revoked_is_refused_as_parent_done(
    floor: Floor, ledger_pool: asyncpg.Pool
) -> None:
    """Even before (or without) a ledgered stop: this intake holds no control key to sign one."""
    await revoke_agent(ledger_pool, floor.author.agent_id)
    await floor.intake.refresh_keys()
    command = slice_of(floor.sniper.agent_id, floor.parent_id)
    assert await floor.handle(floor.sniper, command) == parents.PARENT_DONE


async def test_a_planted_parent_is_no_parent_to_a_restarted_intake(
    floor: Floor, floor_settings: FloorSettings
) -> None:
    """Whoever can append to the ledger writes an accepted iceberg in the author's name with a
    signature that is not one: a hot path that learns parents from the ledger does not take it."""
    planted = iceberg(floor.author.agent_id)
    hotpath = floor_settings.role_url("hotpath")
    await plant_entry(hotpath, planted, {"quantity": TOTAL}, signer=floor.author.key_id)
    restarted = floor.fresh_intake()
    await restarted.warm()
    command = slice_of(floor.sniper.agent_id, parents.parent_workflow_id(planted.command_id))
    assert await floor.handle(floor.sniper, command, restarted) == parents.UNKNOWN_PARENT
    assert await _security_reasons(floor.pool, planted.command_id) == [UNVERIFIED_ICEBERG_ENTRY]


async def test_a_planted_amend_does_not_raise_a_parents_total_for_a_restarted_intake(
    floor: Floor, floor_settings: FloorSettings
) -> None:
    amend = control(floor.author.agent_id, CommandKind.ICEBERG_AMEND, floor.parent_id, quantity=10 * TOTAL)
    await plant_entry(
        floor_settings.role_url("hotpath"), amend, {"parent_id": floor.parent_id}, signer=floor.author.key_id
    )
    restarted = floor.fresh_intake()
    await restarted.warm()
    over = slice_of(floor.sniper.agent_id, floor.parent_id, quantity=TOTAL + 1)
    assert await floor.handle(floor.sniper, over, restarted) == parents.OVER_TOTAL
    assert await _security_reasons(floor.pool, amend.command_id) == [UNVERIFIED_ICEBERG_ENTRY]
