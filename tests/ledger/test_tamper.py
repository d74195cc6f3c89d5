"""History cannot be changed through the database's front door, and a superuser who goes around
it is caught by verify, which names the first bad entry."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import pytest

from ledger.append import Decision, append_command, ledger_head
from ledger.verify import Anchor, verify_ledger
from tests.ledger.helpers import registered_agent, signed_enter


async def ledger_of(db: asyncpg.Connection, n: int) -> None:
    alpha = await registered_agent(db)
    for i in range(n):
        reason = "risk.max_position" if i == 1 else None
        await append_command(
            db,
            signed_enter(alpha),
            decision=Decision.REJECTED if reason else Decision.ACCEPTED,
            reason=reason,
        )


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_entries SET decision = 'accepted', reason = NULL WHERE seq = 2",
        "DELETE FROM ledger_entries WHERE seq = 3",
        "TRUNCATE ledger_entries CASCADE",
        "UPDATE ledger_head SET seq = 1",
        "DELETE FROM ledger_head",
    ],
)
async def test_superuser_cannot_change_history_through_the_front_door(
    db: asyncpg.Connection, statement: str
) -> None:
    await ledger_of(db, 3)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only|only advances"):
        await db.execute(statement)
    assert (await verify_ledger(db)).ok


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_entries SET decision = 'accepted' WHERE seq = 1",
        "DELETE FROM ledger_entries WHERE seq = 1",
        "TRUNCATE ledger_entries",
        "INSERT INTO ledger_entries SELECT * FROM ledger_entries WHERE seq = 1",
    ],
)
async def test_writer_role_has_no_privilege_to_change_or_insert_directly(
    db: asyncpg.Connection, statement: str
) -> None:
    await ledger_of(db, 1)
    async with db.transaction():
        await db.execute("SET LOCAL ROLE floor_writer")
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
            await db.execute(statement)


async def test_appender_role_appends_through_the_function(db: asyncpg.Connection, ledger_dsn: str) -> None:
    """floor_appender (the hot path's group) may append; floor_writer alone may not (test_roles)."""
    alpha = await registered_agent(db)
    await db.execute("SET ROLE floor_appender")
    try:
        record = await append_command(db, signed_enter(alpha), decision=Decision.ACCEPTED)
    finally:
        await db.execute("RESET ROLE")
    assert record.seq == 1
    assert (await verify_ledger(ledger_dsn)).ok


async def tamper(db: asyncpg.Connection, statement: str) -> None:
    """What a superuser can do: switch triggers off for this session and edit."""
    await db.execute("SET session_replication_role = replica")
    try:
        await db.execute(statement)
    finally:
        await db.execute("SET session_replication_role = DEFAULT")


@pytest.mark.parametrize(
    ("statement", "bad_seq", "problem"),
    [
        # Unsigned column flipped: the entry's own hash no longer matches.
        ("UPDATE ledger_entries SET decision = 'accepted', reason = NULL WHERE seq = 2", 2, "entry altered"),
        # Signed payload edited: the entry's hash no longer matches its contents.
        (
            "UPDATE ledger_entries SET payload ="
            " convert_to(replace(convert_from(payload, 'UTF8'), 'DU100', 'DU101'), 'UTF8') WHERE seq = 3",
            3,
            "entry altered",
        ),
        ("DELETE FROM ledger_entries WHERE seq = 2", 3, "sequence gap"),
        (
            "UPDATE ledger_entries SET received_at = received_at - interval '1 hour' WHERE seq = 4",
            4,
            "entry altered",
        ),
    ],
)
async def test_verify_names_the_first_tampered_entry(
    db: asyncpg.Connection, ledger_dsn: str, statement: str, bad_seq: int, problem: str
) -> None:
    await ledger_of(db, 5)
    await tamper(db, statement)
    report = await verify_ledger(ledger_dsn)
    assert not report.ok
    assert report.first_bad is not None and report.first_bad.seq == bad_seq
    assert problem in report.first_bad.problem
    assert report.entries == bad_seq - 1 - (1 if "DELETE" in statement else 0)


RECHAIN_FROM_2 = """
DO $$
DECLARE r record; prev bytea; h bytea;
BEGIN
    FOR r IN SELECT * FROM ledger_entries WHERE seq >= 2 ORDER BY seq LOOP
        SELECT entry_hash INTO prev FROM ledger_entries WHERE seq = r.seq - 1;
        h := ledger_entry_hash(prev, r.seq, r.kind, r.account, r.agent_id, r.command_id,
            r.nonce, r.issued_at, r.payload, r.signer, r.scheme, r.signature, r.signature_hash,
            r.authenticated, r.decision, r.reason, r.received_at, r.recorded_at);
        UPDATE ledger_entries SET prev_hash = prev, entry_hash = h WHERE seq = r.seq;
    END LOOP;
    UPDATE ledger_head SET entry_hash = h;
END $$;
"""


async def test_rehashed_forgery_is_caught_by_the_signature(db: asyncpg.Connection, ledger_dsn: str) -> None:
    await ledger_of(db, 4)
    # A careful forger edits the payload and re-chains every later entry and the head. Only
    # the signature is out of reach.
    await tamper(
        db,
        "UPDATE ledger_entries"
        " SET payload = convert_to(replace(convert_from(payload, 'UTF8'), '\"BUY\"', '\"SELL\"'), 'UTF8')"
        " WHERE seq = 2;" + RECHAIN_FROM_2,
    )
    report = await verify_ledger(ledger_dsn)
    assert report.first_bad is not None and report.first_bad.seq == 2
    assert "signature does not verify" in report.first_bad.problem


async def test_rechained_edit_of_an_unsigned_column_needs_an_anchor_to_be_caught(
    db: asyncpg.Connection, ledger_dsn: str
) -> None:
    await ledger_of(db, 4)
    seq, digest = await ledger_head(db)
    anchor = Anchor(seq, digest)
    assert Anchor.parse(str(anchor)) == anchor
    # Entry 2 was a rejection; the forger makes it look accepted and re-chains.
    await tamper(
        db, "UPDATE ledger_entries SET decision = 'accepted', reason = NULL WHERE seq = 2;" + RECHAIN_FROM_2
    )
    assert (await verify_ledger(ledger_dsn)).ok  # internally consistent: this is what anchors are for
    report = await verify_ledger(ledger_dsn, anchors=(anchor,))
    assert report.first_bad is not None and report.first_bad.seq == 4
    assert "anchor" in report.first_bad.problem


async def test_anchor_beyond_the_chain_means_entries_were_removed(
    db: asyncpg.Connection, ledger_dsn: str
) -> None:
    await ledger_of(db, 3)
    seq, digest = await ledger_head(db)
    await tamper(
        db,
        "DELETE FROM ledger_entries WHERE seq = 3; UPDATE ledger_head SET seq = 2, entry_hash ="
        " (SELECT entry_hash FROM ledger_entries WHERE seq = 2)",
    )
    report = await verify_ledger(ledger_dsn, anchors=(Anchor(seq, digest),))
    assert report.first_bad is None
    assert report.problems == ("anchor 3 is beyond the end of the chain (entries removed)",)


def test_anchor_parse_refuses_garbage() -> None:
    for text in ("", "3", "x:00", "0:" + "00" * 32, "3:" + "00" * 31):
        with pytest.raises(ValueError):
            Anchor.parse(text)


async def test_verify_pages_through_a_big_ledger_with_progress(
    db: asyncpg.Connection, ledger_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await ledger_of(db, 7)
    monkeypatch.setattr("ledger.verify.PAGE", 3)
    calls: list[tuple[int, int]] = []
    report = await verify_ledger(ledger_dsn, lambda done, total: calls.append((done, total)))
    assert report.ok and report.entries == 7
    assert calls == [(0, 7), (3, 7), (6, 7), (7, 7)]
    await tamper(db, "UPDATE ledger_entries SET reason = 'x' WHERE seq = 5")
    report = await verify_ledger(ledger_dsn)
    assert report.first_bad is not None and report.first_bad.seq == 5 and report.entries == 4


class _Rollback(Exception):
    pass


async def test_tamper_inside_own_transaction_is_named_and_rolls_back(db: asyncpg.Connection) -> None:
    await ledger_of(db, 3)
    with pytest.raises(_Rollback):
        async with db.transaction():
            await db.execute("ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_no_update_delete")
            await db.execute("UPDATE ledger_entries SET account = 'DU999' WHERE seq = 1")
            report = await verify_ledger(db)
            assert report.first_bad is not None and report.first_bad.seq == 1
            raise _Rollback
    assert (await verify_ledger(db)).ok
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await db.execute("UPDATE ledger_entries SET account = 'DU999' WHERE seq = 1")


async def test_removing_the_newest_entry_is_caught_by_the_head(
    db: asyncpg.Connection, ledger_dsn: str
) -> None:
    await ledger_of(db, 3)
    await tamper(db, "DELETE FROM ledger_entries WHERE seq = 3")
    report = await verify_ledger(ledger_dsn)
    assert report.first_bad is None and not report.ok
    assert "ledger_head says seq 3" in report.problems[0]


async def test_entry_recorded_after_its_key_was_revoked_fails_verify(
    db: asyncpg.Connection, ledger_dsn: str
) -> None:
    """The ledger refuses such an append (tests/ledger/test_append_verify.py); a revocation
    backdated by hand to before an entry makes one, and verify must still name it."""
    alpha = await registered_agent(db)
    beta = await registered_agent(db, "beta")
    await append_command(db, signed_enter(beta), decision=Decision.ACCEPTED)
    second = await append_command(db, signed_enter(alpha), decision=Decision.ACCEPTED)
    await db.execute(
        "UPDATE agent_keys SET revoked_at = $1 WHERE agent_id = 'alpha'",
        second.recorded_at - timedelta(milliseconds=1),
    )
    report = await verify_ledger(ledger_dsn)
    assert report.first_bad is not None and report.first_bad.seq == 2
    assert "revoked" in report.first_bad.problem
    assert (await ledger_head(db))[0] == 2
