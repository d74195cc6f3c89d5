from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import pytest

from ledger import keys
from ledger.append import Decision, append_command
from ledger.order_events import open_orders, order_history, order_state, record_order_event
from ledger.risk_profiles import (
    OperatorNotAuthorised,
    all_profiles,
    get_profile,
    profile_history,
    set_profile,
)
from ledger.security_events import recent_security_events, record_security_event
from ledger.verify import verify_ledger
from tests.factories import new_agent, order_event, risk_profile
from tests.ledger.helpers import registered_agent, signed_enter
from trading import sentry
from trading.order_events import EventKind, OrderEvent
from trading.orders import Fill
from trading.security_events import SecurityEvent, Severity
from trading.signing import key_id, public_key_bytes
from trading.sizing import RiskProfile

PROFILE = risk_profile()


# --- keys -----------------------------------------------------------------------------------


async def test_register_look_up_and_hand_to_the_sentry(db: asyncpg.Connection) -> None:
    agent = new_agent("sniper")
    record = await keys.register_key(
        db, "sniper", public_key_bytes(agent.private_key), "agent", ["DU1", "DU2"]
    )
    assert record.key_id == key_id(agent.private_key)
    assert record.accounts == frozenset({"DU1", "DU2"}) and not record.revoked
    assert await keys.get_key(db, record.key_id) == record
    registered = (await keys.load_registered(db))[record.key_id]
    verdict = sentry.check(
        agent.sign(signed_enter(agent, account="DU1").command),
        registered,
        sentry.ReplayGuard(),
        datetime.now(UTC),
    )
    assert verdict.accepted
    other_account = agent.sign(signed_enter(agent, account="DU9").command)
    assert sentry.check(other_account, registered, sentry.ReplayGuard(), datetime.now(UTC)).reason == (
        sentry.ACCOUNT_NOT_ALLOWED
    )


async def test_one_active_key_per_agent_and_rotation_by_revoking(db: asyncpg.Connection) -> None:
    first = await registered_agent(db, "alpha")
    with pytest.raises(keys.KeyConflict):
        await keys.register_key(db, "alpha", public_key_bytes(new_agent().private_key), "agent", ["*"])
    with pytest.raises(keys.KeyConflict):
        await keys.register_key(db, "beta", public_key_bytes(first.private_key), "agent", ["*"])
    revoked = await keys.revoke_agent(db, "alpha")
    assert revoked.revoked and revoked.key_id == first.key_id
    assert (await keys.load_registered(db))[first.key_id].revoked
    with pytest.raises(keys.UnknownAgent):
        await keys.revoke_agent(db, "alpha")
    second = await registered_agent(db, "alpha")
    active = await keys.active_key_for(db, "alpha")
    assert active is not None and active.key_id == second.key_id


async def test_registry_refuses_bad_input(db: asyncpg.Connection) -> None:
    raw = public_key_bytes(new_agent().private_key)
    with pytest.raises(keys.KeyRegistryError):
        await keys.register_key(db, "x", raw, "king", ["*"])
    with pytest.raises(keys.KeyRegistryError):
        await keys.register_key(db, "x", raw, "agent", [])
    with pytest.raises(keys.KeyRegistryError):
        await keys.register_key(db, "x", raw[:31], "agent", ["*"])
    with pytest.raises(keys.KeyRegistryError):
        await keys.register_key(db, "bad agent id", raw, "agent", ["*"])


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE agent_keys SET accounts = '{*}'",
        "UPDATE agent_keys SET revoked_at = now(), role = 'operator'",
        "DELETE FROM agent_keys",
        "TRUNCATE agent_keys",
    ],
)
async def test_keys_can_only_be_revoked_never_edited_or_removed(
    db: asyncpg.Connection, statement: str
) -> None:
    await keys.register_key(db, "alpha", public_key_bytes(new_agent().private_key), "agent", ["DU1"])
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await db.execute(statement)


async def test_revoked_key_cannot_be_unrevoked(db: asyncpg.Connection) -> None:
    await registered_agent(db, "alpha")
    await keys.revoke_agent(db, "alpha")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await db.execute("UPDATE agent_keys SET revoked_at = NULL")


# --- risk profiles ---------------------------------------------------------------------------


async def test_profile_change_is_a_signed_ledger_entry(db: asyncpg.Connection, ledger_dsn: str) -> None:
    operator = await registered_agent(db, "ops", role="operator")
    first = await set_profile(db, "DU1", PROFILE, operator_id="ops", operator_key=operator.private_key)
    tighter = RiskProfile(
        **{**PROFILE.__dict__, "max_dollar_risk": Decimal("250"), "kelly_fraction": Decimal("0.5")}
    )
    second = await set_profile(db, "DU1", tighter, operator_id="ops", operator_key=operator.private_key)
    assert (first.seq, second.seq) == (1, 2)
    assert await get_profile(db, "DU1") == tighter
    assert await get_profile(db, "DU2") is None
    assert await all_profiles(db) == {"DU1": tighter}
    history = await profile_history(db, "DU1")
    assert [(seq, who, p) for seq, _, who, p in history] == [(1, "ops", PROFILE), (2, "ops", tighter)]
    row = await db.fetchrow("SELECT kind, decision, account, agent_id FROM ledger_entries WHERE seq = 2")
    assert dict(row) == {
        "kind": "risk_profile_set",
        "decision": "applied",
        "account": "DU1",
        "agent_id": "ops",
    }
    assert (await verify_ledger(ledger_dsn)).ok


async def test_only_an_active_operator_key_may_change_a_profile(db: asyncpg.Connection) -> None:
    agent = await registered_agent(db, "alpha")
    with pytest.raises(OperatorNotAuthorised):
        await set_profile(db, "DU1", PROFILE, operator_id="alpha", operator_key=agent.private_key)
    operator = await registered_agent(db, "ops", role="operator")
    with pytest.raises(OperatorNotAuthorised):
        await set_profile(db, "DU1", PROFILE, operator_id="someone-else", operator_key=operator.private_key)
    await keys.revoke_agent(db, "ops")
    with pytest.raises(OperatorNotAuthorised):
        await set_profile(db, "DU1", PROFILE, operator_id="ops", operator_key=operator.private_key)
    assert await db.fetchval("SELECT count(*) FROM ledger_entries") == 0


async def test_profile_row_edited_behind_the_ledgers_back_fails_verify(
    db: asyncpg.Connection, ledger_dsn: str
) -> None:
    operator = await registered_agent(db, "ops", role="operator")
    await set_profile(db, "DU1", PROFILE, operator_id="ops", operator_key=operator.private_key)
    looser = PROFILE.to_json_dict() | {"max_dollar_risk": "50000"}
    await db.execute("UPDATE risk_profiles SET profile = $1 WHERE account = 'DU1'", json.dumps(looser))
    report = await verify_ledger(ledger_dsn)
    assert not report.ok and report.first_bad is None
    assert report.problems == ("risk profile of DU1 is not the newest ledgered change",)


# --- security events -------------------------------------------------------------------------


async def test_security_events_are_stored_and_filtered_by_severity(db: asyncpg.Connection) -> None:
    await record_security_event(
        db, SecurityEvent("sentry.stale", Severity.WARNING, "hotpath", agent_id="alpha")
    )
    event_id = await record_security_event(
        db,
        SecurityEvent(
            "sentry.bad_signature",
            Severity.CRITICAL,
            "api",
            key_id="ab" * 16,
            signature_hash="cd" * 32,
            source_address="127.0.0.1",
            detail={"http_status": 403},
        ),
    )
    critical = await recent_security_events(db, min_severity=Severity.ERROR)
    assert [(e.id, e.reason, e.detail) for e in critical] == [
        (event_id, "sentry.bad_signature", {"http_status": 403})
    ]
    everything = await recent_security_events(db)
    assert [e.reason for e in everything] == ["sentry.bad_signature", "sentry.stale"]
    assert everything[0].ts is not None
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await db.execute("DELETE FROM security_events")
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute("INSERT INTO security_events (severity, reason, source) VALUES ('loud', 'x', 'y')")


# --- order state rows ------------------------------------------------------------------------


def event(
    kind: EventKind, event_id: str, filled: int = 0, fill: Fill | None = None, reason: str | None = None
) -> OrderEvent:
    return order_event(
        "cmd-1", 0, kind, filled, fill, event_id=event_id, symbol="AAPL", quantity=100, reason=reason,
        ts=datetime(2026, 11, 24, 5, 0, tzinfo=UTC), limit_price=Decimal("189.50"), tif="DAY",
        broker_order_id=42,
    )  # fmt: skip


async def test_order_events_are_idempotent_and_state_is_the_most_advanced(db: asyncpg.Connection) -> None:
    accepted = event(EventKind.ACCEPTED, "e1")
    submitted = event(EventKind.SUBMITTED, "e2")
    partial = event(EventKind.PARTIALLY_FILLED, "e3", 40, Fill("x1", 40, Decimal("189.49")))
    assert await record_order_event(db, accepted)
    assert await record_order_event(db, partial)
    assert await record_order_event(db, submitted)  # delivered late, older than the fill
    assert not await record_order_event(db, partial)  # redelivery
    again = event(EventKind.PARTIALLY_FILLED, "e3-reconciled", 40, Fill("x1", 40, Decimal("189.49")))
    assert not await record_order_event(db, again)  # same execution, new event id
    state = await order_state(db, "cmd-1")
    assert state == partial
    assert [o.command_id for o in await open_orders(db, "DU1")] == ["cmd-1"]
    done = event(EventKind.FILLED, "e4", 100, Fill("x2", 60, Decimal("189.50")))
    assert await record_order_event(db, done)
    assert await order_state(db, "cmd-1") == done
    assert await open_orders(db) == []
    assert [e.event_id for e in await order_history(db, "cmd-1")] == ["e1", "e3", "e2", "e4"]
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await db.execute("UPDATE order_events SET filled_qty = 0")


async def test_accepted_command_and_its_order_rows_line_up(db: asyncpg.Connection) -> None:
    alpha = await registered_agent(db, "alpha")
    signed = signed_enter(alpha, command_id="cmd-1")
    record = await append_command(db, signed, decision=Decision.ACCEPTED)
    await record_order_event(db, event(EventKind.ACCEPTED, "e1"))
    seq = await db.fetchval(
        "SELECT l.seq FROM ledger_entries l JOIN order_events s USING (command_id)"
        " WHERE s.command_id = 'cmd-1'"
    )
    assert seq == record.seq
