"""Keys are registered and revoked only by an operator's signed change, ledgered in the same
transaction by the database function ``floor_key_change``."""

from __future__ import annotations

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.key_changes import KIND_KEY_REGISTER, KeyChange, register_key_signed, revoke_key_signed
from ledger.keys import active_key_for, get_key
from ledger.operator_changes import OperatorNotAuthorised
from ledger.verify import verify_ledger
from trading.commands import utc_now_ms
from trading.signing import generate_private_key, key_id, public_key_bytes


async def operator(db: asyncpg.Connection, name: str = "operator") -> Ed25519PrivateKey:
    """The first operator key of a new floor, which registers itself."""
    key = generate_private_key()
    await register_key_signed(
        db, name, public_key_bytes(key), "operator", ["*"], operator_id=name, operator_key=key
    )
    return key


async def test_an_operator_registers_and_revokes_keys_as_ledger_entries_that_verify(
    db: asyncpg.Connection, ledger_dsn: str
) -> None:
    op = await operator(db)
    alpha = generate_private_key()
    record = await register_key_signed(
        db, "alpha", public_key_bytes(alpha), "agent", ["DU2", "DU1"], operator_id="operator", operator_key=op
    )
    assert record.accounts == frozenset({"DU1", "DU2"}) and not record.revoked
    entry = await db.fetchrow(
        "SELECT kind, agent_id, decision, recorded_at FROM ledger_entries WHERE seq = 2"
    )
    assert (entry["kind"], entry["agent_id"], entry["decision"]) == (KIND_KEY_REGISTER, "operator", "applied")
    # Dated by its registration entry: nobody chooses a key's created_at.
    assert record.created_at == entry["recorded_at"]

    revoked = await revoke_key_signed(db, key_id(alpha), operator_id="operator", operator_key=op)
    assert revoked.revoked and await active_key_for(db, "alpha") is None
    kinds = [r["kind"] for r in await db.fetch("SELECT kind FROM ledger_entries ORDER BY seq")]
    assert kinds == ["key_register", "key_register", "key_revoke"]
    assert (await verify_ledger(ledger_dsn)).ok


async def test_once_an_operator_is_active_no_key_registers_itself(db: asyncpg.Connection) -> None:
    await operator(db)
    with pytest.raises(OperatorNotAuthorised, match="not an operator key of mallory"):
        await operator(db, "mallory")
    assert await active_key_for(db, "mallory") is None
    assert await db.fetchval("SELECT count(*) FROM ledger_entries") == 1


async def test_an_agent_or_a_revoked_operator_cannot_change_keys(db: asyncpg.Connection) -> None:
    op = await operator(db)
    alpha = generate_private_key()
    await register_key_signed(
        db, "alpha", public_key_bytes(alpha), "agent", ["*"], operator_id="operator", operator_key=op
    )
    with pytest.raises(OperatorNotAuthorised):
        await register_key_signed(
            db, "beta", public_key_bytes(generate_private_key()), "agent", ["*"],
            operator_id="alpha", operator_key=alpha,
        )  # fmt: skip
    await revoke_key_signed(db, key_id(op), operator_id="operator", operator_key=op)
    with pytest.raises(OperatorNotAuthorised):
        await revoke_key_signed(db, key_id(alpha), operator_id="operator", operator_key=op)
    assert not (await get_key(db, key_id(alpha))).revoked  # type: ignore[union-attr]


async def test_a_key_change_with_a_forged_signature_is_named_by_verify(
    db: asyncpg.Connection, ledger_dsn: str
) -> None:
    """The database cannot check Ed25519: a forged change in the operator's name goes in, and
    `floor ledger verify` names it."""
    op = await operator(db)
    change = KeyChange(
        KIND_KEY_REGISTER, "key-forged", "operator", "n-forged", utc_now_ms(),
        key={"agent_id": "mallory", "public_key": public_key_bytes(generate_private_key()).hex(),
             "role": "agent", "accounts": ["*"]},
    )  # fmt: skip
    await db.execute(
        "SELECT floor_key_change($1, $2, $3, now())", change.canonical(), key_id(op), b"\x01" * 64
    )
    report = await verify_ledger(ledger_dsn)
    assert report.first_bad is not None and report.first_bad.seq == 2
    assert "signature does not verify" in report.first_bad.problem


async def test_after_the_only_operator_revoked_its_own_key_no_key_registers_itself(
    db: asyncpg.Connection,
) -> None:
    """Self-registration is for a floor's first run only, not for a floor left without an active
    operator key (rotate by registering the new key with the old one first)."""
    op = await operator(db)
    await revoke_key_signed(db, key_id(op), operator_id="operator", operator_key=op)
    with pytest.raises(OperatorNotAuthorised, match="not an operator key of mallory"):
        await operator(db, "mallory")
    assert await active_key_for(db, "mallory") is None
