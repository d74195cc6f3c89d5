"""The breaker's entries in a ledger of their own: the newest decides the trading state a hot
path starts in, an entry that does not verify counts as a trip, and ``floor ledger verify``
takes a breaker entry only from the role that may make it."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import asyncpg

from floor.breaker_cmd import breaker_command
from ledger.append import Decision, append_command, append_signed
from ledger.circuit_breaker import append_trip, newest_breaker_entry
from ledger.key_changes import register_key_signed
from ledger.verify import verify_ledger
from tests.factories import new_agent
from tests.ledger.helpers import forge_registration, registered_agent, trip_record
from trading.circuit_breaker_state import KIND_TRIPPED
from trading.commands import CommandKind, utc_now_ms
from trading.risk import TradingState
from trading.signing import SignedCommand, generate_private_key, key_id, public_key_bytes


async def test_the_newest_breaker_entry_is_the_trading_state_and_each_verifies(
    db: asyncpg.Connection, ledger_dsn: str
) -> None:
    assert await newest_breaker_entry(db) is None  # a floor that never tripped trades
    breaker = await registered_agent(db, "floor-breaker", role="service")
    ops = await registered_agent(db, "ops", role="operator")

    await append_trip(db, trip_record("floor-breaker"), breaker.private_key)
    entry = await newest_breaker_entry(db)
    assert entry is not None and (entry.kind, entry.agent_id) == (KIND_TRIPPED, "floor-breaker")
    assert entry.problem is None
    assert entry.state is TradingState.HALTED

    arm = ops.sign(breaker_command(CommandKind.BREAKER_ARM, "ops"))
    await append_command(db, arm, decision=Decision.ACCEPTED, detail={"trading_state": "ACTIVE"})
    entry = await newest_breaker_entry(db)
    assert entry is not None and entry.state is TradingState.ACTIVE and entry.agent_id == "ops"

    trip = ops.sign(breaker_command(CommandKind.BREAKER_TRIP, "ops"))
    await append_command(db, trip, decision=Decision.ACCEPTED, detail={"trading_state": "HALTED"})
    entry = await newest_breaker_entry(db)
    assert entry is not None and entry.state is TradingState.HALTED
    assert entry.command_id == trip.command.command_id
    assert (await verify_ledger(ledger_dsn)).ok


async def test_an_arm_signed_without_the_operator_role_counts_as_a_trip_and_fails_verify(
    db: asyncpg.Connection, ledger_dsn: str
) -> None:
    """What a writer who reached ``ledger_append`` without the operator's key could leave."""
    agent = await registered_agent(db, "alpha")
    arm = agent.sign(breaker_command(CommandKind.BREAKER_ARM, "alpha"))
    await append_command(db, arm, decision=Decision.ACCEPTED)

    entry = await newest_breaker_entry(db)
    assert entry is not None and entry.state is TradingState.HALTED
    assert entry.problem is not None and "needs a key with the operator role, not agent" in entry.problem
    report = await verify_ledger(ledger_dsn)
    assert report.first_bad is not None and report.first_bad.seq == 1
    assert "breaker_arm needs a key with the operator role" in report.first_bad.problem


async def test_a_forged_signature_on_an_arm_counts_as_a_trip(db: asyncpg.Connection) -> None:
    ops = await registered_agent(db, "ops", role="operator")
    arm = ops.sign(breaker_command(CommandKind.BREAKER_ARM, "ops"))
    forged = SignedCommand(arm.command, arm.signer, bytes(64))
    await append_command(db, forged, decision=Decision.ACCEPTED)
    entry = await newest_breaker_entry(db)
    assert entry is not None and entry.state is TradingState.HALTED
    assert entry.problem == "signature does not verify over the payload"


async def test_an_automatic_trip_signed_by_an_operator_key_fails_verify(
    db: asyncpg.Connection, ledger_dsn: str
) -> None:
    ops = await registered_agent(db, "ops", role="operator")
    await append_trip(db, trip_record("ops"), ops.private_key)
    report = await verify_ledger(ledger_dsn)
    assert report.first_bad is not None
    assert "breaker_tripped needs a key with the service role" in report.first_bad.problem


async def test_an_automatic_trip_signed_by_another_floor_key_than_the_breakers_does_not_verify(
    db: asyncpg.Connection,
) -> None:
    """Every floor key has the service role; only the hot path's breaker agent speaks for the
    breaker. Such an entry still counts as a trip (never as an arm), reported as unverified."""
    sniper = await registered_agent(db, "sniper", role="service")
    await append_trip(db, trip_record("sniper"), sniper.private_key)
    entry = await newest_breaker_entry(db, "floor-breaker")
    assert entry is not None and entry.state is TradingState.HALTED
    assert entry.problem is not None and "breaker's key (floor-breaker)" in entry.problem
    assert (await newest_breaker_entry(db, "sniper")).problem is None  # type: ignore[union-attr]


async def test_an_operators_signed_trip_appended_as_an_arm_counts_as_a_trip(db: asyncpg.Connection) -> None:
    """Operator-signed bytes the ledger does not hold yet (a trip refused as stale, one read off
    agent.commands) appended by whoever can reach ``ledger_append`` under the kind breaker_arm:
    the signature verifies, the document inside is no arm."""
    ops = await registered_agent(db, "ops", role="operator")
    trip = ops.sign(breaker_command(CommandKind.BREAKER_TRIP, "ops"))
    command = trip.command
    await append_signed(
        db, kind=CommandKind.BREAKER_ARM.value, payload=trip.canonical, signer=trip.signer,
        scheme=trip.scheme, signature=trip.signature, account=command.account, agent_id=command.agent_id,
        command_id=command.command_id, nonce=command.nonce, issued_at=command.issued_at,
        decision=Decision.ACCEPTED,
    )  # fmt: skip

    entry = await newest_breaker_entry(db)
    assert entry is not None and entry.kind == CommandKind.BREAKER_ARM.value
    assert entry.problem is not None and "differs from the entry in kind" in entry.problem
    assert entry.state is TradingState.HALTED


async def test_an_old_signed_arm_appended_long_after_it_was_issued_counts_as_a_trip(
    db: asyncpg.Connection,
) -> None:
    ops = await registered_agent(db, "ops", role="operator")
    old = dataclasses.replace(
        breaker_command(CommandKind.BREAKER_ARM, "ops"), issued_at=utc_now_ms() - timedelta(hours=1)
    )
    await append_command(db, ops.sign(old), decision=Decision.ACCEPTED)

    entry = await newest_breaker_entry(db)
    assert entry is not None and entry.problem is not None and "replay window" in entry.problem
    assert entry.state is TradingState.HALTED


async def test_an_arm_signed_by_an_operator_key_whose_registration_does_not_verify_counts_as_a_trip(
    db: asyncpg.Connection,
) -> None:
    """An operator key put in the registry in the operator's name without its signature (the CLI
    role's password is enough for that) signs an arm that reached the ledger: no re-arm."""
    first = generate_private_key()
    await register_key_signed(
        db, "ops", public_key_bytes(first), "operator", ["*"], operator_id="ops", operator_key=first
    )
    usurper = new_agent("ops2")
    await forge_registration(
        db, key_id(first), public_key_bytes(usurper.private_key), "ops2", "operator", operator="ops"
    )
    arm = usurper.sign(breaker_command(CommandKind.BREAKER_ARM, "ops2"))
    await append_command(db, arm, decision=Decision.ACCEPTED)

    entry = await newest_breaker_entry(db)
    assert entry is not None and entry.problem is not None and "does not verify" in entry.problem
    assert entry.state is TradingState.HALTED
