"""Key registrations and revocations as signed ledger entries.

A change is canonical JSON (RFC 8785) signed with an operator's Ed25519 key::

    {"v": 1, "kind": "key_register", "command_id": "...", "agent_id": "<operator>", "nonce": "...",
     "issued_at": "2026-...Z", "key": {"agent_id": "alpha", "public_key": "<hex>", "role": "agent",
     "accounts": ["DU100"]}}
    {"v": 1, "kind": "key_revoke", ..., "key_id": "<key id>"}

The database function ``floor_key_change`` (migration 0008) checks the signer is an active
operator key of the named operator, appends the document (decision ``applied``) and changes
``agent_keys`` in the same transaction; nothing else at run time may write that table. On a floor
with no active operator key, an operator key may sign its own registration (first run).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.append import LedgerRecord
from ledger.db import Db
from ledger.keys import KeyConflict, KeyRecord, KeyRegistryError, UnknownAgent, check_registration, get_key
from ledger.operator_changes import apply_operator_change
from trading.commands import CommandInvalid, format_timestamp_ms, parse_timestamp_ms, utc_now_ms
from trading.signing import key_id

KIND_KEY_REGISTER = "key_register"
KIND_KEY_REVOKE = "key_revoke"
KINDS = frozenset({KIND_KEY_REGISTER, KIND_KEY_REVOKE})

NO_ACTIVE_KEY_SQLSTATE = "FLK04"


class KeyChangeInvalid(ValueError):
    """A key change document that does not parse; the message names the field."""


@dataclass(frozen=True)
class KeyChange:
    kind: str
    command_id: str
    agent_id: str
    """The operator whose key signs the change."""
    nonce: str
    issued_at: datetime
    key: dict[str, Any] | None = None
    """For a registration: agent_id, public_key (hex), role, accounts (sorted)."""
    key_id: str | None = None
    """For a revocation: the key revoked."""

    def to_json_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "v": 1,
            "kind": self.kind,
            "command_id": self.command_id,
            "agent_id": self.agent_id,
            "nonce": self.nonce,
            "issued_at": format_timestamp_ms(self.issued_at),
        }
        if self.kind == KIND_KEY_REGISTER:
            doc["key"] = self.key
        else:
            doc["key_id"] = self.key_id
        return doc

    def canonical(self) -> bytes:
        return rfc8785.dumps(self.to_json_dict())

    @classmethod
    def from_canonical(cls, payload: bytes) -> KeyChange:
        try:
            data = json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise KeyChangeInvalid(f"document: not JSON: {exc}") from None
        if not isinstance(data, dict) or data.get("v") != 1 or data.get("kind") not in KINDS:
            raise KeyChangeInvalid("kind: not a v1 key_register or key_revoke document")
        body = "key" if data["kind"] == KIND_KEY_REGISTER else "key_id"
        allowed = {"v", "kind", "command_id", "agent_id", "nonce", "issued_at", body}
        for name in data:
            if name not in allowed:
                raise KeyChangeInvalid(f"{name}: not allowed in a {data['kind']} document")
        for name in ("command_id", "agent_id", "nonce", "issued_at"):
            if not isinstance(data.get(name), str) or not data[name]:
                raise KeyChangeInvalid(f"{name}: required non-empty string")
        try:
            issued_at = parse_timestamp_ms(data["issued_at"])
        except CommandInvalid as exc:
            raise KeyChangeInvalid(f"issued_at: {exc.reason}") from None
        common = (data["kind"], data["command_id"], data["agent_id"], data["nonce"], issued_at)
        if data["kind"] == KIND_KEY_REVOKE:
            if not isinstance(data.get("key_id"), str):
                raise KeyChangeInvalid("key_id: required string")
            return cls(*common, key_id=data["key_id"])
        key = data.get("key")
        if not isinstance(key, dict) or set(key) != {"agent_id", "public_key", "role", "accounts"}:
            raise KeyChangeInvalid("key: needs exactly agent_id, public_key, role, accounts")
        return cls(*common, key=key)


def _new_change(kind: str, operator_id: str, **body: Any) -> KeyChange:
    return KeyChange(kind, f"key-{uuid.uuid4().hex}", operator_id, uuid.uuid4().hex, utc_now_ms(), **body)


async def register_key_signed(
    db: Db,
    agent_id: str,
    public_key: bytes,
    role: str,
    accounts: list[str],
    *,
    operator_id: str,
    operator_key: Ed25519PrivateKey,
) -> KeyRecord:
    """Register ``public_key`` as ``agent_id``'s active key, signed by ``operator_key``."""
    check_registration(public_key, role, accounts)
    key = {
        "agent_id": agent_id,
        "public_key": public_key.hex(),
        "role": role,
        "accounts": sorted(set(accounts)),
    }
    change = _new_change(KIND_KEY_REGISTER, operator_id, key=key)
    try:
        await _apply(db, change, operator_key)
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == "agent_keys_one_active":
            raise KeyConflict(f"{agent_id} already has an active key; revoke it first") from None
        if exc.constraint_name == "agent_keys_public_key_key":
            raise KeyConflict("this public key is already registered") from None
        raise
    except asyncpg.CheckViolationError as exc:
        raise KeyRegistryError(f"refused by the registry: {exc}") from None
    record = await get_key(db, key_id(public_key))
    assert record is not None
    return record


async def revoke_key_signed(
    db: Db, key: str, *, operator_id: str, operator_key: Ed25519PrivateKey
) -> KeyRecord:
    """Revoke the key ``key`` (a key id), signed by ``operator_key``."""
    try:
        await _apply(db, _new_change(KIND_KEY_REVOKE, operator_id, key_id=key), operator_key)
    except asyncpg.PostgresError as exc:
        if exc.sqlstate == NO_ACTIVE_KEY_SQLSTATE:
            raise UnknownAgent(f"no active key {key}") from None
        raise
    record = await get_key(db, key)
    assert record is not None
    return record


async def _apply(db: Db, change: KeyChange, operator_key: Ed25519PrivateKey) -> LedgerRecord:
    payload = change.canonical()
    return await apply_operator_change(db, "floor_key_change", payload, change.agent_id, operator_key)
