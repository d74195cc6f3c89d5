"""Which registered keys the floor trusts: those whose registration entry verifies, back to the
floor's first operator key.

The database cannot check an Ed25519 signature, so ``floor_key_change`` takes any change whose
signer is an active operator key id: whoever holds the CLI's database password can register a
key in an operator's name with a signature that is none. The registry row alone proves nothing;
its ``key_register`` ledger entry does. Walking those entries in ledger order, a key is trusted
when its entry is signed by a key already trusted, with the operator role, not revoked before the
entry was recorded, and the signature verifies over the document; the document must name the
very row (public key, agent, role, accounts). The first operator key signs its own registration:
that is trusted only when no operator key was registered before it (a floor's first run).

A key with no registration entry at all was written into the table by the schema's owner or the
superuser (set-up, tests), who could rewrite the ledger as well: it is taken as theirs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from trading.signing import KeyInvalid, SignatureInvalid, key_id, public_key_from_bytes, verify_bytes

ROLE_OPERATOR = "operator"


@dataclass(frozen=True)
class ChainKey:
    """A registry row, as far as trust needs it."""

    key_id: str
    agent_id: str
    public_key: bytes
    role: str
    accounts: frozenset[str]
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class Registration:
    """A ``key_register`` ledger entry."""

    seq: int
    signer: str
    payload: bytes
    signature: bytes
    recorded_at: datetime


def untrusted_keys(keys: Mapping[str, ChainKey], registrations: Sequence[Registration]) -> dict[str, str]:
    """Key id -> why it is not trusted, for every key in ``keys`` whose registration does not
    verify back to the first operator key. ``registrations`` in ledger order."""
    registrations = sorted(registrations, key=lambda e: e.seq)
    registered: dict[str, Registration] = {}
    for entry in registrations:
        registered.setdefault(_registered_key_id(entry.payload) or "", entry)
    trusted = {k for k in keys if k not in registered}
    problems: dict[str, str] = {}
    operator_seen = False
    for entry in registrations:
        target_id = _registered_key_id(entry.payload)
        target = keys.get(target_id or "")
        if target is None or registered.get(target.key_id) is not entry:
            continue
        try:
            problem = _problem(entry, target, keys, trusted, first_run=not operator_seen)
        except (TypeError, ValueError, AttributeError) as exc:
            # Whatever the document holds, a bad one costs its key trust, never the whole load.
            problem = f"registration entry seq {entry.seq} cannot be read ({exc})"
        operator_seen = operator_seen or target.role == ROLE_OPERATOR
        if problem is None:
            trusted.add(target.key_id)
        else:
            problems[target.key_id] = problem
    return problems


def _problem(
    entry: Registration, target: ChainKey, keys: Mapping[str, ChainKey], trusted: set[str], *, first_run: bool
) -> str | None:
    document = json.loads(entry.payload)
    body = document.get("key", {})
    if (
        body.get("agent_id") != target.agent_id
        or body.get("role") != target.role
        or frozenset(body.get("accounts") or ()) != target.accounts
    ):
        return f"registration entry seq {entry.seq} does not describe the key"
    if entry.signer == target.key_id:
        if not (first_run and target.role == ROLE_OPERATOR and _earliest_operator(keys, target, entry)):
            return f"registered itself at seq {entry.seq}, after the floor's first operator key"
        signer = target
    else:
        found = keys.get(entry.signer)
        if found is None or found.key_id not in trusted:
            return f"registered at seq {entry.seq} by {entry.signer}, not a trusted key"
        if found.role != ROLE_OPERATOR:
            return f"registered at seq {entry.seq} by {entry.signer}, not an operator key"
        if found.revoked_at is not None and found.revoked_at <= entry.recorded_at:
            return f"registered at seq {entry.seq} by {entry.signer}, revoked by then"
        signer = found
    try:
        verify_bytes(public_key_from_bytes(signer.public_key), entry.payload, entry.signature)
    except (SignatureInvalid, KeyInvalid):
        return f"the signature of its registration entry seq {entry.seq} does not verify"
    return None


def _earliest_operator(keys: Mapping[str, ChainKey], target: ChainKey, entry: Registration) -> bool:
    """No other operator key was in the registry before this one's entry."""
    return not any(
        k.role == ROLE_OPERATOR and k.key_id != target.key_id and k.created_at < entry.recorded_at
        for k in keys.values()
    )


def _registered_key_id(payload: bytes) -> str | None:
    try:
        public_hex = json.loads(payload)["key"]["public_key"]
        return key_id(bytes.fromhex(public_hex))
    except (ValueError, KeyError, TypeError):
        return None
