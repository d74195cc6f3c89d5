from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from ledger.append import (
    Decision,
    EntryInvalid,
    ReplayRefused,
    SignerRevoked,
    append_command,
    append_refusal,
    ledger_head,
    load_replay_keys,
)
from ledger.chain import GENESIS_HASH, compute_entry_hash
from ledger.keys import revoke_agent
from ledger.verify import verify_ledger
from tests.helpers import eventually
from tests.ledger.helpers import registered_agent, signed_enter, stored_rows
from trading.signing import generate_private_key, sign_command


async def test_appends_chain_in_order_and_verify_passes_with_progress(
    db: asyncpg.Connection, ledger_dsn: str
) -> None:
    alpha = await registered_agent(db, "alpha")
    records = []
    for i in range(5):
        decision = Decision.ACCEPTED if i % 2 == 0 else Decision.REJECTED
        reason = None if decision is Decision.ACCEPTED else "risk.max_dollar_risk"
        records.append(await append_command(db, signed_enter(alpha), decision=decision, reason=reason))
    assert [r.seq for r in records] == [1, 2, 3, 4, 5]
    stored = await stored_rows(db)
    prev = GENESIS_HASH
    for row in stored:
        assert row.prev_hash == prev
        assert compute_entry_hash(prev, row) == row.entry_hash  # the database and Python agree
        prev = row.entry_hash
    assert stored[1].decision == "rejected" and stored[1].reason == "risk.max_dollar_risk"
    assert await ledger_head(db) == (5, prev)
    assert [r.recorded_at for r in stored] == sorted(r.recorded_at for r in stored)

    calls: list[tuple[int, int]] = []
    report = await verify_ledger(ledger_dsn, lambda done, total: calls.append((done, total)))
    assert report.ok and report.entries == 5 and report.first_bad is None
    assert calls[0] == (0, 5) and calls[-1] == (5, 5)


async def test_empty_ledger_verifies(ledger_dsn: str) -> None:
    report = await verify_ledger(ledger_dsn)
    assert report.ok and report.entries == 0


async def test_replays_cannot_be_appended_and_leave_nothing(db: asyncpg.Connection) -> None:
    alpha = await registered_agent(db)
    signed = signed_enter(alpha, nonce="n-1", command_id="cmd-1")
    await append_command(db, signed, decision=Decision.ACCEPTED)
    with pytest.raises(ReplayRefused) as same:
        await append_command(db, signed, decision=Decision.ACCEPTED)
    assert same.value.field == "signature_hash"
    with pytest.raises(ReplayRefused) as nonce:
        await append_command(db, signed_enter(alpha, nonce="n-1"), decision=Decision.REJECTED, reason="x.y")
    assert nonce.value.field == "nonce"
    with pytest.raises(ReplayRefused) as command:
        await append_command(db, signed_enter(alpha, command_id="cmd-1"), decision=Decision.ACCEPTED)
    assert command.value.field == "command_id"
    assert (await ledger_head(db))[0] == 1
    # The chain stayed whole: the next append follows entry 1.
    record = await append_command(db, signed_enter(alpha), decision=Decision.ACCEPTED)
    assert record.seq == 2


async def test_refused_forgery_is_evidence_and_does_not_block_the_genuine_command(
    db: asyncpg.Connection, ledger_dsn: str
) -> None:
    alpha = await registered_agent(db)
    genuine = signed_enter(alpha)
    # A forger replays the genuine signature over an altered payload; the sentry refuses it.
    forged_payload = genuine.canonical.replace(b'"DU100"', b'"DU666"')
    await append_refusal(
        db,
        payload=forged_payload,
        signer=genuine.signer,
        signature=genuine.signature,
        reason="sentry.bad_signature",
    )
    await append_command(db, genuine, decision=Decision.ACCEPTED)
    report = await verify_ledger(ledger_dsn)
    assert report.ok, report


async def test_rejection_needs_a_reason(db: asyncpg.Connection) -> None:
    alpha = await registered_agent(db)
    with pytest.raises(EntryInvalid):
        await append_command(db, signed_enter(alpha), decision=Decision.REJECTED)
    with pytest.raises(EntryInvalid):
        await append_command(db, signed_enter(alpha), decision=Decision.APPLIED)


async def test_recent_replay_keys_load_for_the_sentry(db: asyncpg.Connection) -> None:
    alpha = await registered_agent(db)
    now = datetime.now(UTC).replace(microsecond=0)
    old = signed_enter(alpha, issued_at=now - timedelta(minutes=5))
    new = signed_enter(alpha, issued_at=now - timedelta(seconds=1))
    for signed in (old, new):
        await append_command(db, signed, decision=Decision.ACCEPTED)
    keys = await load_replay_keys(db, now - timedelta(seconds=30))
    assert [(k.agent_id, k.nonce, k.signature_hash) for k in keys] == [
        ("alpha", new.command.nonce, new.signature_hash)
    ]
    assert keys[0].issued_at == new.command.issued_at


async def test_concurrent_appends_keep_a_gapless_valid_chain(db: asyncpg.Connection, ledger_dsn: str) -> None:
    alpha = await registered_agent(db)
    pool = await asyncpg.create_pool(ledger_dsn, min_size=8, max_size=8)
    try:
        signed = [signed_enter(alpha) for _ in range(200)]
        records = await asyncio.gather(*(append_command(pool, s, decision=Decision.ACCEPTED) for s in signed))
    finally:
        await pool.close()
    assert sorted(r.seq for r in records) == list(range(1, 201))
    report = await verify_ledger(ledger_dsn)
    assert report.ok and report.entries == 200


async def test_entry_signed_by_unregistered_key_fails_verify(db: asyncpg.Connection, ledger_dsn: str) -> None:
    alpha = await registered_agent(db)
    await append_command(db, signed_enter(alpha), decision=Decision.ACCEPTED)
    stranger = sign_command(signed_enter(alpha).command, generate_private_key())
    await append_command(db, stranger, decision=Decision.ACCEPTED)
    report = await verify_ledger(ledger_dsn)
    assert report.first_bad is not None and report.first_bad.seq == 2
    assert "not a registered key" in report.first_bad.problem


async def test_decision_detail_is_stored_canonically_and_chained(
    db: asyncpg.Connection, ledger_dsn: str
) -> None:
    alpha = await registered_agent(db)
    detail = {"quantity": 120, "entry_price": "189.50", "binding": "kelly", "bankroll": "100000.00"}
    await append_command(db, signed_enter(alpha), decision=Decision.ACCEPTED, detail=detail)
    await append_command(db, signed_enter(alpha), decision=Decision.ACCEPTED)
    stored = await stored_rows(db)
    assert (
        stored[0].detail == '{"bankroll":"100000.00","binding":"kelly","entry_price":"189.50","quantity":120}'
    )
    assert stored[1].detail is None
    # Without detail the hash is exactly the pre-detail layout (the 18-argument SQL function).
    legacy = await db.fetchval(
        "SELECT ledger_entry_hash(prev_hash, seq, kind, account, agent_id, command_id, nonce, issued_at,"
        " payload, signer, scheme, signature, signature_hash, authenticated, decision, reason, received_at,"
        " recorded_at) FROM ledger_entries WHERE seq = 2"
    )
    assert legacy == stored[1].entry_hash
    assert (await verify_ledger(ledger_dsn)).ok

    await db.execute("SET session_replication_role = replica")
    await db.execute("""UPDATE ledger_entries SET detail = replace(detail, '120', '1200') WHERE seq = 1""")
    await db.execute("SET session_replication_role = DEFAULT")
    report = await verify_ledger(ledger_dsn)
    assert report.first_bad is not None and report.first_bad.seq == 1


async def test_detail_must_be_plain_json(db: asyncpg.Connection) -> None:
    from decimal import Decimal

    alpha = await registered_agent(db)
    with pytest.raises(EntryInvalid):
        await append_command(
            db, signed_enter(alpha), decision=Decision.ACCEPTED, detail={"price": Decimal("1.5")}
        )
    assert (await ledger_head(db))[0] == 0


async def test_accepted_command_cannot_be_appended_inside_an_open_transaction(db: asyncpg.Connection) -> None:
    alpha = await registered_agent(db)
    async with db.transaction():
        with pytest.raises(EntryInvalid, match="outside any transaction"):
            await append_command(db, signed_enter(alpha), decision=Decision.ACCEPTED)
    assert (await ledger_head(db))[0] == 0


async def test_a_revoked_signer_gets_no_accepted_entry_but_its_refusal_is_kept(
    db: asyncpg.Connection, ledger_dsn: str
) -> None:
    """The database checks the registry under the head lock, so a writer whose cached registry
    still holds the key (the hot path between reloads) cannot ledger, and so cannot send, an
    order the revoked key signed."""
    alpha = await registered_agent(db, "alpha")
    beta = await registered_agent(db, "beta")
    before = await append_command(db, signed_enter(alpha), decision=Decision.ACCEPTED)
    await revoke_agent(db, "alpha")

    with pytest.raises(SignerRevoked, match="revoked"):
        await append_command(db, signed_enter(alpha), decision=Decision.ACCEPTED)
    assert await ledger_head(db) == (before.seq, before.entry_hash)  # nothing written, no gap

    # The refusal is kept as evidence (unauthenticated); another agent's key is unaffected.
    with pytest.raises(SignerRevoked):
        await append_command(db, signed_enter(alpha), decision=Decision.REJECTED, reason="sentry.revoked_key")
    late = signed_enter(alpha)
    refused = await append_refusal(
        db, payload=late.canonical, signer=late.signer, signature=late.signature, reason="sentry.revoked_key"
    )
    accepted = await append_command(db, signed_enter(beta), decision=Decision.ACCEPTED)
    assert (refused.seq, accepted.seq) == (before.seq + 1, before.seq + 2)
    # What alpha signed before the revocation still verifies with its (now revoked) key.
    report = await verify_ledger(ledger_dsn)
    assert report.ok and report.entries == 3


async def test_verify_holds_no_snapshot_while_it_reads_the_entries(
    db: asyncpg.Connection, ledger_dsn: str
) -> None:
    """A snapshot held for a whole verify keeps every version of the head row the appends leave
    meanwhile, and each append steps over them: only the short fixed view is a transaction."""
    alpha = await registered_agent(db, "alpha")
    for _ in range(3):
        await append_command(db, signed_enter(alpha), decision=Decision.ACCEPTED)
    reader = await asyncpg.connect(ledger_dsn)
    try:
        in_transaction: list[tuple[int, bool]] = []
        report = await verify_ledger(
            reader, lambda done, total: in_transaction.append((done, reader.is_in_transaction()))
        )
    finally:
        await reader.close()
    assert report.ok and report.entries == 3
    assert in_transaction == [(0, False), (3, False)]


async def test_a_revocation_waits_for_an_append_in_flight_and_is_stamped_after_it(
    db: asyncpg.Connection, ledger_dsn: str
) -> None:
    """An append that checked the registry before a revocation committed must not end up
    recorded after the revocation's stamp, or verify would call a legitimate entry bad."""
    alpha = await registered_agent(db, "alpha")
    appender = await asyncpg.connect(ledger_dsn)
    try:
        async with appender.transaction():
            # The append in flight: it holds the head lock until it commits.
            entry = await append_command(
                appender, signed_enter(alpha), decision=Decision.REJECTED, reason="x.y"
            )
            revocation = asyncio.create_task(revoke_agent(db, "alpha"))

            async def revocation_waits_on_the_head() -> bool:
                return bool(
                    await appender.fetchval(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                        " AND query LIKE '%ledger_head%' AND pid <> pg_backend_pid()"
                    )
                )

            await eventually(revocation_waits_on_the_head, timeout=10)
            assert not revocation.done()
        revoked = await revocation
    finally:
        await appender.close()
    assert revoked.revoked_at is not None and revoked.revoked_at > entry.recorded_at
    report = await verify_ledger(ledger_dsn)
    assert report.ok and report.entries == 1
