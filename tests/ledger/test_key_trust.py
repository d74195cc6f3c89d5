"""The floor trusts a registered key only if its registration entry verifies back to the first
operator key: a key put in an operator's name without the operator's private key is no key to
the hot path or the worker, though the database took it."""

from __future__ import annotations

import os
import uuid

import asyncpg

from hotpath.ledger_store import LedgerStore
from ledger.key_changes import KIND_KEY_REGISTER, KeyChange, register_key_signed
from ledger.key_trust import trusted_key, trusted_keys
from ledger.keys import get_key, register_key
from ledger.record_keys import writer_keys
from tests.ledger.test_key_changes import operator
from trading.commands import utc_now_ms
from trading.signing import generate_private_key, key_id, public_key_bytes


async def _forge_registration(db: asyncpg.Connection, signer: str, agent_id: str, role: str) -> str:
    """What the CLI role's password alone allows: a key_register in the operator's name whose
    signature is none. The database checks only that the signer is an active operator key."""
    public = public_key_bytes(generate_private_key())
    change = KeyChange(
        KIND_KEY_REGISTER, f"key-{uuid.uuid4().hex}", "operator", uuid.uuid4().hex, utc_now_ms(),
        key={"agent_id": agent_id, "public_key": public.hex(), "role": role, "accounts": ["*"]},
    )  # fmt: skip
    await db.execute(
        "SELECT * FROM floor_key_change($1, $2, $3, now())", change.canonical(), signer, os.urandom(64)
    )
    return key_id(public)


async def test_a_key_registered_in_an_operators_name_without_its_signature_is_not_trusted(
    db: asyncpg.Connection,
) -> None:
    op = await operator(db)
    alpha = generate_private_key()
    await register_key_signed(
        db, "alpha", public_key_bytes(alpha), "agent", ["*"], operator_id="operator", operator_key=op
    )
    forged = await _forge_registration(db, key_id(op), "mallory", "operator")
    assert await get_key(db, forged) is not None  # the database took it

    trusted = await trusted_keys(db)
    assert set(trusted) == {key_id(op), key_id(alpha)}
    assert await trusted_key(db, forged) is None
    store = LedgerStore(db)
    assert await store.key(forged) is None and await store.key(key_id(alpha)) is not None
    assert forged not in {k.key_id for k in await store.keys()}
    assert forged not in await writer_keys(db)


async def test_a_key_registered_by_an_untrusted_key_is_not_trusted_either(db: asyncpg.Connection) -> None:
    op = await operator(db)
    forged_private = generate_private_key()
    public = public_key_bytes(forged_private).hex()
    change = KeyChange(
        KIND_KEY_REGISTER, f"key-{uuid.uuid4().hex}", "operator", uuid.uuid4().hex, utc_now_ms(),
        key={"agent_id": "operator2", "public_key": public, "role": "operator", "accounts": ["*"]},
    )  # fmt: skip
    # Forged in the operator's name (random signature), then used to sign a registration properly.
    await db.execute("SELECT * FROM floor_key_change($1, $2, $3, now())", change.canonical(), key_id(op),
                     os.urandom(64))  # fmt: skip
    child = generate_private_key()
    await register_key_signed(
        db, "beta", public_key_bytes(child), "agent", ["*"],
        operator_id="operator2", operator_key=forged_private,
    )  # fmt: skip
    assert set(await trusted_keys(db)) == {key_id(op)}


async def test_keys_the_owner_put_in_directly_are_taken_as_the_administrators(db: asyncpg.Connection) -> None:
    """Set-up and tests write the table as the owner; whoever can do that can rewrite the ledger."""
    direct = generate_private_key()
    await register_key(db, "svc", public_key_bytes(direct), "service", ["*"])
    assert key_id(direct) in await trusted_keys(db)
