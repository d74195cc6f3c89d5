"""Controlling a running iceberg end to end: signed commands through Kafka and the real hot path,
the bridge and a worker as processes, slices resting at the paper venue.

A signal sent straight to Temporal changes nothing; a signed ``iceberg_*`` command from the
parent's author does, once the hot path has ledgered it; a stranger's is refused. Revoking the
author's key stops the iceberg: the hot path pulls the working slice and ledgers the stop, signed
by the floor's control key.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from decimal import Decimal
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from temporalio.client import Client, WorkflowHandle

from bus.topics import AGENT_COMMANDS
from hotpath.iceberg_commands import FLOOR_CONTROL
from ledger.keys import revoke_agent
from tests.factories import Agent, new_agent
from tests.fixtures.hotpath import register
from tests.helpers import eventually
from tests.hotpath.conftest import (  # noqa: F401 - fixtures used by name
    VENUE_ACCOUNT,
    command_producer,
    risk_profiles,
)
from tests.temporal.conftest import workflow_exists
from tests.temporal.test_iceberg_hotpath import (  # noqa: F401 - fixtures used by name
    REFERENCE,
    SniperStack,
    _iceberg_command,
    _pred,
    hotpath,
    sniper,
    sniper_agent,
)
from trading import iceberg_parents as parents
from trading.commands import Command, CommandKind, Edge, Side, utc_now_ms
from workflows.iceberg import (
    AmendRequest,
    CancelRequest,
    Iceberg,
    IcebergProgress,
    IcebergResult,
    IcebergStatus,
    PauseRequest,
    ProgressQuery,
)

RESTING_LIMIT = REFERENCE - 40
"""Far below MSFT's market: every slice rests at the venue until it is pulled."""
EDGE = Edge(Decimal("0.55"), Decimal("2"), REFERENCE - 60)


async def _send(producer: AIOKafkaProducer, signer: Agent, command: Command) -> None:
    key = f"{command.account}/{command.symbol or 'MSFT'}".encode()
    await producer.send_and_wait(AGENT_COMMANDS, signer.sign(command).to_wire(), key=key)


def _control(agent_id: str, kind: CommandKind, parent_id: str, **fields: Any) -> Command:
    return Command(
        kind=kind, command_id=f"ctl-{uuid.uuid4().hex}", agent_id=agent_id, account=VENUE_ACCOUNT,
        nonce=uuid.uuid4().hex, issued_at=utc_now_ms(), parent_id=parent_id, **fields,
    )  # fmt: skip


async def _resting_iceberg(
    producer: AIOKafkaProducer, agent: Agent, client: Client
) -> WorkflowHandle[Iceberg, IcebergResult]:
    """An author's iceberg through intake, started by the bridge, with a slice resting."""
    command = _iceberg_command(agent.agent_id, Side.BUY, limit_price=RESTING_LIMIT, edge=EDGE, quantity=300)
    await _send(producer, agent, command)
    workflow_id = parents.parent_workflow_id(command.command_id)
    await eventually(_pred(lambda: workflow_exists(client, workflow_id)), timeout=30)
    handle = client.get_workflow_handle_for(Iceberg.run, workflow_id)

    async def resting() -> bool:
        return (await _progress(handle)).working_qty > 0

    await eventually(_pred(resting), timeout=30, interval=0.2)
    return handle


async def _progress(handle: WorkflowHandle[Iceberg, IcebergResult]) -> IcebergProgress:
    return await handle.query(Iceberg.progress, ProgressQuery())


async def _entry(pool: asyncpg.Pool, command_id: str) -> asyncpg.Record:
    async def ledgered() -> asyncpg.Record | None:
        return await pool.fetchrow(
            "SELECT kind, decision, reason, agent_id, detail FROM ledger_entries"
            " WHERE command_id = $1 AND authenticated",
            command_id,
        )

    row: asyncpg.Record = await eventually(_pred(ledgered), timeout=20)
    return row


async def test_a_direct_amend_signal_changes_nothing_while_signed_controls_through_intake_do(
    sniper: SniperStack,  # noqa: F811
    agent: Agent,
    command_producer: AIOKafkaProducer,  # noqa: F811
    ledger_pool: asyncpg.Pool,
    temporal_client: Client,
) -> None:
    handle = await _resting_iceberg(command_producer, agent, temporal_client)

    # Straight to Temporal: raise the total, move the limit through the market, pause, cancel.
    await handle.signal(Iceberg.amend, AmendRequest("a1", total_qty=900, limit_price=REFERENCE + 5))
    await handle.signal(Iceberg.pause, PauseRequest("p1"))
    await handle.signal(Iceberg.cancel, CancelRequest("c1", reason="forged"))

    async def all_ignored() -> bool:
        notes = " | ".join((await _progress(handle)).notes)
        return all(f"direct {n} signal ignored" in notes for n in ("amend", "pause", "cancel"))

    await eventually(_pred(all_ignored), timeout=20)
    progress = await _progress(handle)
    assert (progress.status, progress.total_qty, progress.limit_price) == (
        IcebergStatus.WORKING, 300, RESTING_LIMIT,
    )  # fmt: skip

    # The author's signed amend, through Kafka and intake: ledgered, then applied.
    amend = _control(
        agent.agent_id, CommandKind.ICEBERG_AMEND, handle.id, quantity=200, limit_price=RESTING_LIMIT - 5
    )
    await _send(command_producer, agent, amend)

    async def amended() -> bool:
        p = await _progress(handle)
        return (p.total_qty, p.limit_price) == (200, RESTING_LIMIT - 5)

    await eventually(_pred(amended), timeout=30, interval=0.2)
    entry = await _entry(ledger_pool, amend.command_id)
    assert (entry["kind"], entry["decision"]) == ("iceberg_amend", "accepted")
    assert json.loads(entry["detail"])["parent_id"] == handle.id

    pause = _control(agent.agent_id, CommandKind.ICEBERG_PAUSE, handle.id)
    await _send(command_producer, agent, pause)

    async def paused() -> bool:
        return (await _progress(handle)).status is IcebergStatus.PAUSED

    await eventually(_pred(paused), timeout=30, interval=0.2)

    # Someone else's signed cancel: refused by intake, the parent untouched.
    stranger = new_agent()
    await register(ledger_pool, stranger)
    meddling = _control(stranger.agent_id, CommandKind.ICEBERG_CANCEL, handle.id)
    await _send(command_producer, stranger, meddling)
    refused = await _entry(ledger_pool, meddling.command_id)
    assert (refused["decision"], refused["reason"]) == ("rejected", parents.NOT_ALLOWED)
    assert (await _progress(handle)).status is IcebergStatus.PAUSED

    cancel = _control(agent.agent_id, CommandKind.ICEBERG_CANCEL, handle.id)
    await _send(command_producer, agent, cancel)
    result = await asyncio.wait_for(handle.result(), timeout=60)
    assert result.status is IcebergStatus.CANCELLED
    assert result.reason == f"cancelled: by {agent.agent_id}"
    assert result.total_qty == 200 and all(s.outcome != "working" for s in result.slices)


async def test_revoking_the_authors_key_pulls_the_working_slice_and_ledgers_the_stop(
    sniper: SniperStack,  # noqa: F811
    agent: Agent,
    command_producer: AIOKafkaProducer,  # noqa: F811
    ledger_pool: asyncpg.Pool,
    temporal_client: Client,
) -> None:
    handle = await _resting_iceberg(command_producer, agent, temporal_client)

    async def submitted() -> list[asyncpg.Record]:
        # The iceberg counts a slice working before its `submitted` record is in the ledger.
        return await ledger_pool.fetch(
            "SELECT DISTINCT command_id FROM order_events WHERE parent_id = $1 AND kind = 'submitted'",
            handle.id,
        )

    working: list[asyncpg.Record] = await eventually(submitted, timeout=20, interval=0.1)
    assert working

    await revoke_agent(ledger_pool, agent.agent_id)

    result = await asyncio.wait_for(handle.result(), timeout=60)
    assert result.status is IcebergStatus.CANCELLED
    assert result.reason == f"cancelled: key {agent.key_id} revoked"
    assert all(s.outcome != "working" for s in result.slices)
    # The stop is a ledger entry of its own, signed by the floor's control key.
    stop = await _entry(ledger_pool, f"{handle.id}.stop")
    assert (stop["kind"], stop["decision"], stop["agent_id"]) == ("iceberg_cancel", "accepted", FLOOR_CONTROL)
    detail = json.loads(stop["detail"])
    assert (detail["parent_id"], detail["reason"], detail["revoked_key"]) == (
        handle.id, parents.STOPPED_BY_REVOCATION, agent.key_id,
    )  # fmt: skip
    # Every slice that was working ended at the venue: none is left open.
    for row in working:
        kinds = await ledger_pool.fetch(
            "SELECT kind FROM order_events WHERE command_id = $1", row["command_id"]
        )
        assert {"cancelled"} & {k["kind"] for k in kinds}, row["command_id"]
