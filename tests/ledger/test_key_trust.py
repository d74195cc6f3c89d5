"""The floor trusts a registered key only if its registration entry verifies back to the first
operator key: a key put in an operator's name without the operator's private key is no key to
the hot path or the worker, though the database took it."""

from __future__ import annotations

import asyncpg

from hotpath.ledger_store import LedgerStore
from ledger.key_changes import register_key_signed
from ledger.key_trust import trusted_key, trusted_keys
from ledger.keys import get_key, register_key
from ledger.record_keys import writer_keys
from tests.ledger.helpers import forge_registration
from tests.ledger.test_key_changes import operator
from trading.signing import generate_private_key, key_id, public_key_bytes


async def test_a_key_registered_in_an_operators_name_without_its_signature_is_not_trusted(
    db: asyncpg.Connection,
) -> None:
    op = await operator(db)
    alpha = generate_private_key()
    await register_key_signed(
        db, "alpha", public_key_bytes(alpha), "agent", ["*"], operator_id="operator", operator_key=op
    )
    mallory = public_key_bytes(generate_private_key())
    forged = await forge_registration(db, key_id(op), mallory, "mallory", "operator")
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
    # Forged in the operator's name, then used to sign a registration properly.
    await forge_registration(db, key_id(op), public_key_bytes(forged_private), "operator2", "operator")
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
