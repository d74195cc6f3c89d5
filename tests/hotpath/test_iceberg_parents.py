"""Intake's rules for iceberg slices, iceberg controls and the floor's own service keys, over
the real ledger (Postgres) and Kafka: every refusal named, ledgered, and where it points at a
forged or misused key, a security event. The broker is never reached
(:class:`~tests.hotpath.in_process.BankrollOnly` enforces it)."""

from __future__ import annotations

import dataclasses
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from config.settings import FloorSettings
from hotpath.intake import Intake
from hotpath.ledger_store import LedgerStore
from ledger.iceberg_parents import UNVERIFIED_ICEBERG_ENTRY
from ledger.keys import register_key, revoke_agent
from tests.factories import Agent, enter_command, new_agent
from tests.fixtures.hotpath import plant_entry, register
from tests.hotpath.conftest import TIGHT_ACCOUNT, VENUE_ACCOUNT
from tests.hotpath.in_process import BankrollOnly, in_process_intake
from tests.hotpath.test_refusal_walk import TakesOrders
from trading import iceberg_parents as parents
from trading import sentry
from trading.commands import Command, CommandKind, Edge, Side, TimeInForce, utc_now_ms
from trading.order_events import EventKind, OrderEvent
from trading.risk import Refusal
from trading.signing import public_key_bytes
from workflows.slicing import slice_command_id

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
        intake = in_process_intake(
            LedgerStore(self.pool), BankrollOnly(), self.emitted, producer=self.producer
        )
        intake.floor_keys = self.intake.floor_keys
        return intake

    async def taking_orders(self, broker: TakesOrders | None = None) -> Intake:
        """Another intake over the same ledger, whose broker takes the orders it is sent."""
        intake = in_process_intake(
            LedgerStore(self.pool), broker or TakesOrders(), self.emitted, producer=self.producer
        )
        intake.floor_keys = self.intake.floor_keys
        await intake.warm()
        return intake

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
    intake.floor_keys = parents.FloorKeys(slicers=frozenset({sniper.agent_id}))
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


async def test_forged_slices_under_a_live_parents_future_ids_leave_no_record_and_the_genuine_slice_works(
    floor: Floor,
) -> None:
    """Slice ids are predictable (``<parent>.s0001``, ...). A forgery sent under them ahead of
    the Sniper is a security event only: no ``rejected`` record or order-state row claims the
    id, so the genuine slice, when it comes, is accepted and sent like any other."""
    forger = new_agent(floor.sniper.agent_id)  # the Sniper's name, a key nobody registered
    ids = [slice_command_id(floor.parent_id, n) for n in range(1, 4)]
    for command_id in ids:
        forged = forger.sign(slice_of(floor.sniper.agent_id, floor.parent_id, quantity=10))
        forged = dataclasses.replace(
            forged,
            command=dataclasses.replace(forged.command, command_id=command_id),
            signer=floor.sniper.key_id,
        )
        assert (await floor.intake.handle(forged.to_wire(), source="test")).reason == sentry.BAD_SIGNATURE
    assert [e for e in floor.emitted if e.command_id in ids] == []
    for command_id in ids:
        assert (
            await floor.pool.fetchval("SELECT count(*) FROM order_events WHERE command_id = $1", command_id)
            == 0
        )
        assert await _security_reasons(floor.pool, command_id) == [sentry.BAD_SIGNATURE]

    broker = TakesOrders()
    intake = await floor.taking_orders(broker)
    genuine = slice_of(floor.sniper.agent_id, floor.parent_id, quantity=10)
    genuine = dataclasses.replace(genuine, command_id=ids[0])
    assert await floor.handle(floor.sniper, genuine, intake) is None
    assert [o.order_ref for o in broker.placed] == [ids[0]]
    assert [(e.kind, e.reason) for e in floor.emitted if e.command_id == ids[0]] == [
        (EventKind.ACCEPTED, None)
    ]
    assert (await _entry(floor.pool, ids[0]))[0] == "accepted"


async def test_each_floor_key_acts_only_within_its_agents_scope(
    floor: Floor, ledger_pool: asyncpg.Pool
) -> None:
    """The floor's keys all hold '*' with the service role; what each may sign through intake
    is set by its agent id: the Sniper slices and cancels slices, the lifecycle key cancels a
    DAY order once its session closed, any other floor key signs nothing here."""
    tag = uuid.uuid4().hex[:8]
    lifecycle, other = new_agent(f"floor-lifecycle-{tag}"), new_agent(f"floor-ledger-{tag}")
    for key in (lifecycle, other):
        await register_key(ledger_pool, key.agent_id, public_key_bytes(key.private_key), "service", ["*"])
    intake = in_process_intake(LedgerStore(floor.pool), TakesOrders(), floor.emitted, producer=floor.producer)
    intake.floor_keys = parents.FloorKeys(frozenset({floor.sniper.agent_id}), lifecycle.agent_id)
    await intake.warm()

    def cancel(signer: Agent, target: str) -> Command:
        return Command(kind=CommandKind.CANCEL, **_common(signer.agent_id), target_command_id=target)

    day_slice = slice_of(floor.sniper.agent_id, floor.parent_id, quantity=10)
    assert await floor.handle(floor.sniper, day_slice, intake) is None
    gtc = dataclasses.replace(
        enter_command(floor.author.agent_id, account=VENUE_ACCOUNT, quantity=5), tif=TimeInForce.GTC
    )
    assert await floor.handle(floor.author, gtc, intake) is None

    out = parents.FLOOR_KEY_OUT_OF_SCOPE
    assert await floor.handle(other, slice_of(other.agent_id, floor.parent_id, quantity=10), intake) == out
    assert await floor.handle(other, cancel(other, day_slice.command_id), intake) == out
    assert await floor.handle(floor.sniper, cancel(floor.sniper, gtc.command_id), intake) == out
    # Before the close of the session it was accepted in, a DAY order is no expiry's to cancel.
    early = cancel(lifecycle, day_slice.command_id)
    assert await floor.handle(lifecycle, early, intake) == out
    assert await _security_reasons(floor.pool, early.command_id) == [out]
    # Accepted three days ago: its session has closed. A GTC order never expires at a close.
    for order in intake.orders.values():
        order.accepted_at = datetime.now(UTC) - timedelta(days=3)
    assert await floor.handle(lifecycle, cancel(lifecycle, gtc.command_id), intake) == out
    assert await floor.handle(lifecycle, cancel(lifecycle, day_slice.command_id), intake) is None
    assert await floor.handle(floor.sniper, cancel(floor.sniper, day_slice.command_id), intake) is None


async def test_an_amend_raising_a_parents_total_runs_the_parents_position_check_again(floor: Floor) -> None:
    """The parent (BUY 300) passed the position check at entry; an amend to a total the
    account's Max Position (1,000) cannot hold is refused as the parent itself would be."""
    intake = await floor.taking_orders()
    too_big = control(floor.author.agent_id, CommandKind.ICEBERG_AMEND, floor.parent_id, quantity=1001)
    assert await floor.handle(floor.author, too_big, intake) == Refusal.MAX_POSITION.value
    assert (await _entry(floor.pool, too_big.command_id))[:2] == ("rejected", Refusal.MAX_POSITION.value)
    # What a slice already took counts once: 100 working, and a total of 1,000 still fits.
    assert await floor.handle(floor.sniper, slice_of(floor.sniper.agent_id, floor.parent_id), intake) is None
    fits = control(floor.author.agent_id, CommandKind.ICEBERG_AMEND, floor.parent_id, quantity=1000)
    assert await floor.handle(floor.author, fits, intake) is None
    over = slice_of(floor.sniper.agent_id, floor.parent_id, quantity=901)
    assert await floor.handle(floor.sniper, over, intake) == parents.OVER_TOTAL


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
