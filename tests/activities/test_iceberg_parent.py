"""The Iceberg's parent check against the real ledger: only a genuine, accepted parent, worked
exactly as ledgered by the floor's slicer, passes; everything else is refused by name."""

from __future__ import annotations

import dataclasses
import uuid
from decimal import Decimal

import asyncpg
import pytest
from temporalio.testing import ActivityEnvironment

from activities.iceberg_parent import (
    ALREADY_WORKED,
    AUTHOR_NOT_ALLOWED,
    AUTHOR_REVOKED,
    INPUT_MISMATCH,
    NOT_AN_ICEBERG,
    PACING_NOT_ALLOWED,
    PARENT_NOT_ACCEPTED,
    PARENT_UNKNOWN,
    WRONG_SLICER,
    IcebergParentActivities,
    ParentCheck,
    ParentCheckRequest,
)
from config.workflow_ids import iceberg_workflow_id
from ledger.append import Decision, append_command
from ledger.keys import revoke_agent
from temporal.client import iceberg_input
from tests.factories import enter_command, new_agent
from tests.fixtures.hotpath import RecordWriters, register
from tests.temporal.conftest import ledgered_iceberg
from trading.commands import Command, TimeInForce
from trading.record_signing import HOTPATH_WRITER, RECONCILE_WRITER
from trading.session_calendar import SessionCalendar
from trading.signing import key_id


def _request(command: Command, **changes: object) -> ParentCheckRequest:
    inp = iceberg_input(command)
    request = ParentCheckRequest(
        account=inp.account, symbol=inp.symbol, side=inp.side.value, total_qty=inp.total_qty,
        display_qty=inp.display_qty, limit_price=inp.limit_price, tif=inp.tif.value, edge=inp.edge,
        agent_id=inp.agent_id,
    )  # fmt: skip
    return dataclasses.replace(request, **changes)  # type: ignore[arg-type]


async def _check(pool: asyncpg.Pool, workflow_id: str, request: ParentCheckRequest) -> ParentCheck:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id=workflow_id)
    result: ParentCheck = await env.run(IcebergParentActivities(pool).check_iceberg_parent, request)
    return result


async def test_a_genuine_accepted_parent_passes_and_names_the_record_writers(
    ledger_pool: asyncpg.Pool, record_writers: RecordWriters
) -> None:
    parent = await ledgered_iceberg(ledger_pool, new_agent(accounts=frozenset({"DU1"})))
    check = await _check(ledger_pool, iceberg_workflow_id(parent.command_id), _request(parent))
    assert check.ok and check.parent_command_id == parent.command_id
    writers = {(w.key_id, w.agent_id) for w in check.writers}
    assert (key_id(record_writers.hotpath), HOTPATH_WRITER) in writers
    assert (key_id(record_writers.reconcile), RECONCILE_WRITER) in writers


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"total_qty": 3000}, "total_qty"),
        ({"account": "DU2"}, "account"),
        ({"limit_price": Decimal("25")}, "limit_price"),
        ({"side": "SELL"}, "side"),
    ],
)
async def test_input_that_differs_from_the_ledgered_parent_is_refused(
    ledger_pool: asyncpg.Pool, changes: dict[str, object], field: str
) -> None:
    parent = await ledgered_iceberg(ledger_pool, new_agent())
    check = await _check(ledger_pool, iceberg_workflow_id(parent.command_id), _request(parent, **changes))
    assert check.reason == INPUT_MISMATCH and field in check.detail


async def test_a_parent_the_ledger_lacks_or_refused_or_that_is_no_iceberg_is_refused(
    ledger_pool: asyncpg.Pool,
) -> None:
    agent = new_agent()
    parent = await ledgered_iceberg(ledger_pool, agent)
    unheld = dataclasses.replace(parent, command_id=f"ice-{uuid.uuid4().hex}")
    assert (await _check(ledger_pool, iceberg_workflow_id(unheld.command_id), _request(unheld))).reason == (
        PARENT_UNKNOWN
    )
    # A workflow id that is not iceberg-<command id>.
    assert (await _check(ledger_pool, parent.command_id, _request(parent))).reason == PARENT_UNKNOWN
    refused = dataclasses.replace(parent, command_id=f"ice-{uuid.uuid4().hex}", nonce=uuid.uuid4().hex)
    await append_command(ledger_pool, agent.sign(refused), decision=Decision.REJECTED, reason="risk.x")
    check = await _check(ledger_pool, iceberg_workflow_id(refused.command_id), _request(refused))
    assert check.reason == PARENT_NOT_ACCEPTED
    enter = enter_command(agent.agent_id, account="DU1")
    await append_command(ledger_pool, agent.sign(enter), decision=Decision.ACCEPTED, detail={"quantity": 1})
    check = await _check(ledger_pool, iceberg_workflow_id(enter.command_id), _request(parent))
    assert check.reason == NOT_AN_ICEBERG


async def test_an_author_revoked_or_not_allowed_on_the_account_is_refused(ledger_pool: asyncpg.Pool) -> None:
    narrow = new_agent(accounts=frozenset({"DU-A"}))
    await register(ledger_pool, narrow)
    # Intake would never accept this; the ledger alone does not stop it being written.
    elsewhere = await ledgered_iceberg(ledger_pool, narrow, account="DU-B")
    check = await _check(ledger_pool, iceberg_workflow_id(elsewhere.command_id), _request(elsewhere))
    assert check.reason == AUTHOR_NOT_ALLOWED

    author = new_agent()
    parent = await ledgered_iceberg(ledger_pool, author)
    await revoke_agent(ledger_pool, author.agent_id)
    check = await _check(ledger_pool, iceberg_workflow_id(parent.command_id), _request(parent))
    assert check.reason == AUTHOR_REVOKED


async def test_slices_signed_by_any_key_but_the_slicers_are_refused(ledger_pool: asyncpg.Pool) -> None:
    parent = await ledgered_iceberg(ledger_pool, new_agent())
    request = _request(parent, agent_id="floor-lifecycle")
    check = await _check(ledger_pool, iceberg_workflow_id(parent.command_id), request)
    assert check.reason == WRONG_SLICER


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"interval_scale": Decimal("0.001")}, "interval scale"),
        ({"jitter": Decimal("0.99")}, "jitter"),
        ({"jitter": Decimal("-0.1")}, "jitter"),
        ({"cancel_confirm_timeout_s": 0.001}, "cancel confirmation"),
    ],
)
async def test_pacing_beyond_the_workers_limits_is_refused(
    ledger_pool: asyncpg.Pool, changes: dict[str, object], named: str
) -> None:
    parent = await ledgered_iceberg(ledger_pool, new_agent())
    check = await _check(ledger_pool, iceberg_workflow_id(parent.command_id), _request(parent, **changes))
    assert check.reason == PACING_NOT_ALLOWED and named in check.detail


async def test_a_day_parent_expires_at_the_close_of_the_session_its_entry_was_recorded_in(
    ledger_pool: asyncpg.Pool,
) -> None:
    day = await ledgered_iceberg(ledger_pool, new_agent())
    check = await _check(ledger_pool, iceberg_workflow_id(day.command_id), _request(day))
    recorded_at = await ledger_pool.fetchval(
        "SELECT recorded_at FROM ledger_entries WHERE command_id = $1", day.command_id
    )
    assert check.ok and check.expires_at == SessionCalendar().close_after(recorded_at)
    gtc = await ledgered_iceberg(ledger_pool, new_agent(), tif=TimeInForce.GTC)
    check = await _check(ledger_pool, iceberg_workflow_id(gtc.command_id), _request(gtc))
    assert check.ok and check.expires_at is None


async def test_a_parent_whose_first_slice_is_in_the_ledger_is_not_worked_again(
    ledger_pool: asyncpg.Pool,
) -> None:
    parent = await ledgered_iceberg(ledger_pool, new_agent())
    workflow_id = iceberg_workflow_id(parent.command_id)
    # Registered: the ledger is shared, and `floor ledger verify` over it (a later suite's check)
    # takes an entry signed by an unknown key for tampering.
    sniper = new_agent(f"sniper-{uuid.uuid4().hex[:8]}")
    await register(ledger_pool, sniper)
    first = enter_command(
        sniper.agent_id, account="DU1", command_id=f"{workflow_id}.s0001", parent_id=workflow_id
    )
    await append_command(
        ledger_pool, sniper.sign(first), decision=Decision.ACCEPTED, detail={"quantity": 100}
    )
    check = await _check(ledger_pool, workflow_id, _request(parent))
    assert check.reason == ALREADY_WORKED
