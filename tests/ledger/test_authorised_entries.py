"""Entries a trader authorised: ``floor ledger verify`` tells who authorised each (trader,
passkey, sign count, ceremony), takes a trader's evidence only under that trader's own key,
and a trader's breaker command sets the state a restart comes up in like an operator's."""

from __future__ import annotations

import dataclasses

import asyncpg

from floor.breaker_cmd import breaker_command
from ledger.append import Decision, append_command
from ledger.circuit_breaker import newest_breaker_entry
from ledger.verify import Authorised, verify_ledger
from tests.factories import authorization, manual_enter_command
from tests.ledger.helpers import registered_agent, signed_enter
from trading.authorization import Ceremony
from trading.commands import CommandKind
from trading.risk import TradingState
from trading.sentry import ROLE_TRADER


async def test_verify_tells_who_authorised_each_traders_entry(
    db: asyncpg.Connection, ledger_dsn: str
) -> None:
    alice = await registered_agent(db, "trader.alice", role=ROLE_TRADER)
    alpha = await registered_agent(db, "alpha")
    step_up = authorization("alice", ceremony=Ceremony.STEP_UP, sign_count=7)
    order = alice.sign(manual_enter_command(alice.agent_id, quantity=10, authorization=step_up))
    await append_command(db, order, decision=Decision.ACCEPTED, detail={"quantity": 10})
    await append_command(db, signed_enter(alpha), decision=Decision.ACCEPTED, detail={"quantity": 3})
    arming = authorization("alice")
    refused = alice.sign(manual_enter_command(alice.agent_id, quantity=9, authorization=arming))
    await append_command(db, refused, decision=Decision.REJECTED, reason="risk.max_dollar_risk")

    told: list[Authorised] = []
    report = await verify_ledger(ledger_dsn, on_authorised=told.append)
    assert report.ok and report.entries == 3
    assert [(a.seq, a.command_id, a.decision) for a in told] == [
        (1, order.command.command_id, "accepted"),
        (3, refused.command.command_id, "rejected"),
    ]
    assert str(told[0]) == (
        f"entry 1 (enter {order.command.command_id}, accepted): authorised by trader alice,"
        " passkey AAECAwQFBgcI, sign count 7, step-up"
    )
    assert told[1].authorization.describe().endswith("arming")


async def test_an_agents_command_claiming_a_traders_authorization_fails_verify(
    db: asyncpg.Connection, ledger_dsn: str
) -> None:
    """What a writer who reached ``ledger_append`` could leave to make an agent's order read
    as a trader's: the sentry never lets it in, and verify names it."""
    alpha = await registered_agent(db, "alpha")
    claimed = manual_enter_command("alpha", quantity=10, authorization=authorization("alice"))
    await append_command(db, alpha.sign(claimed), decision=Decision.ACCEPTED, detail={"quantity": 10})
    report = await verify_ledger(ledger_dsn)
    assert report.first_bad is not None and report.first_bad.seq == 1
    assert "only the trader's own key carries one" in report.first_bad.problem


async def test_a_traders_key_entry_without_its_authorization_fails_verify(
    db: asyncpg.Connection, ledger_dsn: str
) -> None:
    alice = await registered_agent(db, "trader.alice", role=ROLE_TRADER)
    bare = alice.sign(manual_enter_command(alice.agent_id, quantity=10))
    await append_command(db, bare, decision=Decision.ACCEPTED, detail={"quantity": 10})
    report = await verify_ledger(ledger_dsn)
    assert report.first_bad is not None and "WebAuthn authorization" in report.first_bad.problem


async def test_an_authorised_traders_arm_is_the_state_a_restart_comes_up_in(
    db: asyncpg.Connection, ledger_dsn: str
) -> None:
    alice = await registered_agent(db, "trader.alice", role=ROLE_TRADER)
    trip = breaker_command(CommandKind.BREAKER_TRIP, alice.agent_id)
    trip = dataclasses.replace(trip, authorization=authorization("alice", sign_count=1))
    await append_command(db, alice.sign(trip), decision=Decision.ACCEPTED)
    entry = await newest_breaker_entry(db)
    assert entry is not None and entry.problem is None and entry.state is TradingState.HALTED

    arm = breaker_command(CommandKind.BREAKER_ARM, alice.agent_id)
    arm = dataclasses.replace(arm, authorization=authorization("alice", sign_count=2))
    await append_command(db, alice.sign(arm), decision=Decision.ACCEPTED)
    entry = await newest_breaker_entry(db)
    assert entry is not None and entry.problem is None and entry.state is TradingState.ACTIVE
    assert entry.agent_id == "trader.alice"
    assert (await verify_ledger(ledger_dsn)).ok


async def test_a_traders_arm_without_its_authorization_counts_as_a_trip(
    db: asyncpg.Connection, ledger_dsn: str
) -> None:
    alice = await registered_agent(db, "trader.alice", role=ROLE_TRADER)
    await append_command(
        db, alice.sign(breaker_command(CommandKind.BREAKER_ARM, alice.agent_id)), decision=Decision.ACCEPTED
    )
    entry = await newest_breaker_entry(db)
    assert entry is not None and entry.state is TradingState.HALTED
    assert entry.problem is not None and "WebAuthn authorization" in entry.problem
    report = await verify_ledger(ledger_dsn)
    assert report.first_bad is not None and "WebAuthn authorization" in report.first_bad.problem


async def test_a_sign_in_authorised_trip_halts_and_verifies_but_a_sign_in_arm_counts_as_a_trip(
    db: asyncpg.Connection, ledger_dsn: str
) -> None:
    """The sign-in assertion takes risk off (the trip), never lets it back in (re-arming): read
    back at a restart, an arm that claims only the sign-in leaves the floor halted."""
    alice = await registered_agent(db, "trader.alice", role=ROLE_TRADER)
    trip = breaker_command(CommandKind.BREAKER_TRIP, alice.agent_id)
    trip = dataclasses.replace(trip, authorization=authorization("alice", ceremony=Ceremony.SESSION))
    await append_command(db, alice.sign(trip), decision=Decision.ACCEPTED)
    entry = await newest_breaker_entry(db)
    assert entry is not None and entry.problem is None and entry.state is TradingState.HALTED
    told: list[Authorised] = []
    assert (await verify_ledger(ledger_dsn, on_authorised=told.append)).ok
    assert [t.authorization.describe() for t in told] == [
        "authorised by trader alice, passkey AAECAwQFBgcI, sign count 7, sign-in"
    ]

    arm = breaker_command(CommandKind.BREAKER_ARM, alice.agent_id)
    arm = dataclasses.replace(arm, authorization=authorization("alice", ceremony=Ceremony.SESSION))
    await append_command(db, alice.sign(arm), decision=Decision.ACCEPTED)
    entry = await newest_breaker_entry(db)
    assert entry is not None and entry.state is TradingState.HALTED
    assert entry.problem is not None and "sign-in" in entry.problem
    report = await verify_ledger(ledger_dsn)
    assert report.first_bad is not None and report.first_bad.seq == 2
    assert "sign-in" in report.first_bad.problem


async def test_a_step_up_entry_whose_order_is_not_the_one_authorised_fails_verify(
    db: asyncpg.Connection, ledger_dsn: str
) -> None:
    """What a writer who reached ``ledger_append`` could leave: a trader's step-up over one
    order standing under another."""
    alice = await registered_agent(db, "trader.alice", role=ROLE_TRADER)
    step_up = authorization("alice", ceremony=Ceremony.STEP_UP)
    authorised = manual_enter_command(alice.agent_id, quantity=10, authorization=step_up)
    other = dataclasses.replace(authorised, quantity=10_000)
    await append_command(db, alice.sign(other), decision=Decision.ACCEPTED, detail={"quantity": 10_000})
    report = await verify_ledger(ledger_dsn)
    assert report.first_bad is not None and report.first_bad.seq == 1
    assert "the step-up authorised order" in report.first_bad.problem


async def test_an_agents_manual_order_fails_verify(db: asyncpg.Connection, ledger_dsn: str) -> None:
    alpha = await registered_agent(db, "alpha")
    manual = manual_enter_command("alpha", quantity=10)
    await append_command(db, alpha.sign(manual), decision=Decision.ACCEPTED, detail={"quantity": 10})
    report = await verify_ledger(ledger_dsn)
    assert report.first_bad is not None and "manual order" in report.first_bad.problem
