"""The chain's byte layout is computed twice, by Postgres when appending and by Python when
verifying; the two must agree on every input, including NULLs, empty and non-ASCII text and
timestamps with sub-millisecond parts on either side of the epoch."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import asyncpg

from ledger.chain import GENESIS_HASH, LedgerRow, compute_entry_hash, epoch_ms

TEXTS = [None, "", "a", "DU100", "ünïcödé ✓", "x" * 300, "'; DROP TABLE x; --", "\\x00"]
TIMES = [
    datetime(1970, 1, 1, tzinfo=UTC),
    datetime(1969, 12, 31, 23, 59, 59, 999500, tzinfo=UTC),
    datetime(2026, 11, 24, 4, 48, 34, 123999, tzinfo=UTC),
    datetime(2038, 1, 19, 3, 14, 8, tzinfo=UTC),
]

SQL = "SELECT ledger_entry_hash({})".format(", ".join(f"${i}" for i in range(1, 20)))


def random_row(rng: random.Random) -> LedgerRow:
    def text() -> str | None:
        return rng.choice(TEXTS)

    def blob() -> bytes:
        return rng.randbytes(rng.choice([0, 1, 32, 64, 500]))

    def ts() -> datetime:
        return rng.choice(TIMES) + timedelta(microseconds=rng.randrange(-(10**9), 10**9))

    return LedgerRow(
        seq=rng.randrange(1, 2**62),
        prev_hash=rng.randbytes(32),
        entry_hash=b"",
        kind=rng.choice(["enter", "risk_profile_set", "", "ü"]),
        account=text(),
        agent_id=text(),
        command_id=text(),
        nonce=text(),
        issued_at=rng.choice([None, ts()]),
        payload=blob(),
        signer=rng.choice(["", "ab" * 16, "ü"]),
        scheme="ed25519",
        signature=blob(),
        signature_hash=rng.choice(["", "cd" * 32]),
        authenticated=rng.random() < 0.5,
        decision=rng.choice(["accepted", "rejected", "applied"]),
        reason=text(),
        received_at=ts(),
        recorded_at=ts(),
        detail=rng.choice([None, "{}", '{"quantity":10}', '{"note":"ü"}']),
    )


async def test_postgres_and_python_compute_the_same_hash(db: asyncpg.Connection) -> None:
    rng = random.Random(20261124)
    for _ in range(400):
        row = random_row(rng)
        expected = compute_entry_hash(row.prev_hash, row)
        got = await db.fetchval(
            SQL,
            row.prev_hash,
            row.seq,
            row.kind,
            row.account,
            row.agent_id,
            row.command_id,
            row.nonce,
            row.issued_at,
            row.payload,
            row.signer,
            row.scheme,
            row.signature,
            row.signature_hash,
            row.authenticated,
            row.decision,
            row.reason,
            row.received_at,
            row.recorded_at,
            row.detail,
        )
        assert got == expected, row


def test_every_field_changes_the_hash() -> None:
    rng = random.Random(7)
    base = random_row(rng)
    base = LedgerRow(
        **{**base.__dict__, "account": "DU1", "reason": "r", "issued_at": TIMES[2], "detail": "{}"}
    )
    reference = compute_entry_hash(GENESIS_HASH, base)
    changes = {
        "seq": base.seq + 1,
        "kind": base.kind + "x",
        "account": None,
        "agent_id": "other",
        "command_id": "other",
        "nonce": "other",
        "issued_at": None,
        "payload": base.payload + b"x",
        "signer": base.signer + "x",
        "scheme": "x",
        "signature": base.signature + b"x",
        "signature_hash": base.signature_hash + "x",
        "authenticated": not base.authenticated,
        "decision": base.decision + "x",
        "reason": "",
        "received_at": base.received_at + timedelta(milliseconds=1),
        "recorded_at": base.recorded_at + timedelta(milliseconds=1),
        "detail": None,
    }
    for name, value in changes.items():
        changed = LedgerRow(**{**base.__dict__, name: value})
        assert compute_entry_hash(GENESIS_HASH, changed) != reference, name
    assert compute_entry_hash(b"\x01" * 32, base) != reference


def test_epoch_ms_floors_exactly() -> None:
    assert epoch_ms(datetime(1970, 1, 1, 0, 0, 0, 999, tzinfo=UTC)) == 0
    assert epoch_ms(datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)) == -1
    assert epoch_ms(datetime(2026, 11, 24, 4, 48, 34, 123999, tzinfo=UTC)) == 1795495714123
