"""Trust in registered keys, walked along their registration entries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from trading.key_chain import ChainKey, Registration, untrusted_keys
from trading.signing import generate_private_key, key_id, public_key_bytes, sign_bytes

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def _register(
    seq: int, signer: Ed25519PrivateKey, new: Ed25519PrivateKey, agent_id: str, role: str
) -> tuple[ChainKey, Registration]:
    at = T0 + timedelta(minutes=seq)
    body = {"agent_id": agent_id, "public_key": public_key_bytes(new).hex(), "role": role, "accounts": ["*"]}
    payload = rfc8785.dumps({"v": 1, "kind": "key_register", "agent_id": "ops", "key": body})
    row = ChainKey(key_id(new), agent_id, public_key_bytes(new), role, frozenset({"*"}), at, None)
    return row, Registration(seq, key_id(signer), payload, sign_bytes(signer, payload), at)


def test_keys_chained_from_the_first_self_registered_operator_are_trusted() -> None:
    ops, alpha = generate_private_key(), generate_private_key()
    first = _register(1, ops, ops, "ops", "operator")
    second = _register(2, ops, alpha, "alpha", "agent")
    keys = {row.key_id: row for row, _ in (first, second)}
    assert untrusted_keys(keys, [first[1], second[1]]) == {}


def test_an_operator_that_registered_itself_after_the_first_is_not_trusted_nor_what_it_signed() -> None:
    ops, usurper, beta = generate_private_key(), generate_private_key(), generate_private_key()
    entries = [
        _register(1, ops, ops, "ops", "operator"),
        _register(2, usurper, usurper, "usurper", "operator"),
        _register(3, usurper, beta, "beta", "agent"),
    ]
    keys = {row.key_id: row for row, _ in entries}
    problems = untrusted_keys(keys, [entry for _, entry in entries])
    assert set(problems) == {key_id(usurper), key_id(beta)}
    assert "registered itself" in problems[key_id(usurper)]


def test_a_registration_that_does_not_describe_its_row_is_not_trusted() -> None:
    ops, alpha = generate_private_key(), generate_private_key()
    first = _register(1, ops, ops, "ops", "operator")
    row, entry = _register(2, ops, alpha, "alpha", "agent")
    widened = ChainKey(row.key_id, "alpha", row.public_key, "operator", row.accounts, row.created_at, None)
    problems = untrusted_keys({first[0].key_id: first[0], row.key_id: widened}, [first[1], entry])
    assert "does not describe the key" in problems[row.key_id]


def test_a_registration_document_of_any_shape_costs_only_its_own_key() -> None:
    ops, alpha = generate_private_key(), generate_private_key()
    first = _register(1, ops, ops, "ops", "operator")
    row, entry = _register(2, ops, alpha, "alpha", "agent")
    public = public_key_bytes(alpha).hex()
    body = {"agent_id": "alpha", "role": "agent", "public_key": public, "accounts": [["*"]]}
    odd = rfc8785.dumps({"key": body})
    odd_entry = Registration(2, entry.signer, odd, sign_bytes(ops, odd), entry.recorded_at)
    problems = untrusted_keys({first[0].key_id: first[0], row.key_id: row}, [first[1], odd_entry])
    assert set(problems) == {row.key_id}
