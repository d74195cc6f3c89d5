"""Builders for ledger tests: registered agents and signed commands; the ledger's rows as stored."""

from __future__ import annotations

import os
import uuid
from decimal import Decimal

import asyncpg

from ledger.chain import LedgerRow
from ledger.key_changes import KIND_KEY_REGISTER, KeyChange
from tests.factories import Agent, enter_command
from tests.fixtures.hotpath import fresh_agent
from trading.circuit_breaker_state import TripRecord
from trading.commands import utc_now_ms
from trading.signing import SignedCommand, key_id


async def registered_agent(db: asyncpg.Connection, agent_id: str = "alpha", role: str = "agent") -> Agent:
    return await fresh_agent(db, agent_id, role)


async def stored_rows(db: asyncpg.Connection) -> list[LedgerRow]:
    """Every ledger entry, oldest first, as the chain reads it."""
    records = await db.fetch(
        f"SELECT {', '.join(LedgerRow.__dataclass_fields__)} FROM ledger_entries ORDER BY seq"
    )
    return [LedgerRow(**dict(r)) for r in records]


def signed_enter(agent: Agent, **kw: object) -> SignedCommand:
    return agent.sign(enter_command(agent.agent_id, **kw))  # type: ignore[arg-type]


def trip_record(agent_id: str, symbol: str = "AAPL") -> TripRecord:
    """An automatic trip as the hot path records it: AAPL down 15% from 200."""
    return TripRecord(
        command_id=f"trip-{uuid.uuid4().hex}",
        agent_id=agent_id,
        nonce=uuid.uuid4().hex,
        issued_at=utc_now_ms(),
        symbol=symbol,
        reference_high=Decimal("200"),
        price=Decimal("170"),
        drop_pct=Decimal("15"),
        threshold_pct=Decimal("10"),
        window_ms=60_000,
    )


async def forge_registration(
    db: asyncpg.Connection,
    signer: str,
    public_key: bytes,
    agent_id: str,
    role: str,
    *,
    operator: str = "operator",
) -> str:
    """What the CLI role's password alone allows: a key_register in ``operator``'s name (signer
    one of its key ids) whose signature is none; the database checks only the signer's id.
    Returns the new key's id."""
    change = KeyChange(
        KIND_KEY_REGISTER, f"key-{uuid.uuid4().hex}", operator, uuid.uuid4().hex, utc_now_ms(),
        key={"agent_id": agent_id, "public_key": public_key.hex(), "role": role, "accounts": ["*"]},
    )  # fmt: skip
    await db.execute(
        "SELECT * FROM floor_key_change($1, $2, $3, now())", change.canonical(), signer, os.urandom(64)
    )
    return key_id(public_key)
