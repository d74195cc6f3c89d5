"""Risk profiles per account, where every change is itself a signed ledger entry.

A change is a :class:`RiskProfileChange` document, canonical JSON (RFC 8785) signed with an
operator's Ed25519 key::

    {"v": 1, "kind": "risk_profile_set", "command_id": "...", "agent_id": "<operator>",
     "account": "DU100", "nonce": "...", "issued_at": "2026-...Z", "profile": {...}}

:func:`set_profile` appends it (decision ``applied``) and updates the ``risk_profiles`` row in
the same transaction, so the table never shows a profile the ledger does not hold;
``floor ledger verify`` checks the row is the newest change.
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
from ledger.operator_changes import (
    OperatorNotAuthorised as OperatorNotAuthorised,  # its callers catch it here
)
from ledger.operator_changes import apply_operator_change
from trading.commands import CommandInvalid, format_timestamp_ms, parse_timestamp_ms, utc_now_ms
from trading.sizing import ProfileInvalid, RiskProfile

KIND_RISK_PROFILE_SET = "risk_profile_set"
_KEYS = frozenset({"v", "kind", "command_id", "agent_id", "account", "nonce", "issued_at", "profile"})


class ChangeInvalid(ValueError):
    """A risk profile change document that does not parse; ``field`` names the key."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class RiskProfileChange:
    command_id: str
    agent_id: str
    """The operator whose key signs the change."""
    account: str
    nonce: str
    issued_at: datetime
    profile: RiskProfile

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "v": 1,
            "kind": KIND_RISK_PROFILE_SET,
            "command_id": self.command_id,
            "agent_id": self.agent_id,
            "account": self.account,
            "nonce": self.nonce,
            "issued_at": format_timestamp_ms(self.issued_at),
            "profile": self.profile.to_json_dict(),
        }

    def canonical(self) -> bytes:
        return rfc8785.dumps(self.to_json_dict())

    @classmethod
    def from_json_dict(cls, data: Any) -> RiskProfileChange:
        if not isinstance(data, dict):
            raise ChangeInvalid("document", "must be an object")
        for key in data:
            if key not in _KEYS:
                raise ChangeInvalid(str(key), "not allowed in a risk profile change")
        if data.get("v") != 1 or data.get("kind") != KIND_RISK_PROFILE_SET:
            raise ChangeInvalid("kind", "not a v1 risk_profile_set document")
        for key in ("command_id", "agent_id", "account", "nonce", "issued_at"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise ChangeInvalid(key, "required non-empty string")
        try:
            issued_at = parse_timestamp_ms(data["issued_at"])
        except CommandInvalid as exc:
            raise ChangeInvalid("issued_at", exc.reason) from None
        try:
            profile = RiskProfile.from_json_dict(data.get("profile"))
        except ProfileInvalid as exc:
            raise ChangeInvalid(f"profile.{exc.field}", exc.reason) from None
        return cls(data["command_id"], data["agent_id"], data["account"], data["nonce"], issued_at, profile)

    @classmethod
    def from_canonical(cls, payload: bytes) -> RiskProfileChange:
        try:
            data = json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ChangeInvalid("document", f"not JSON: {exc}") from None
        return cls.from_json_dict(data)


async def set_profile(
    pool_or_conn: asyncpg.Pool | asyncpg.Connection,
    account: str,
    profile: RiskProfile,
    *,
    operator_id: str,
    operator_key: Ed25519PrivateKey,
) -> LedgerRecord:
    """Sign the change with ``operator_key``, ledger it and make it current, atomically."""
    change = RiskProfileChange(
        command_id=f"risk-{uuid.uuid4().hex}",
        agent_id=operator_id,
        account=account,
        nonce=uuid.uuid4().hex,
        issued_at=utc_now_ms(),
        profile=profile,
    )
    # The database function checks the operator, ledgers the change and makes it current in one
    # transaction (migration 0008); no runtime role may write risk_profiles itself.
    return await apply_operator_change(
        pool_or_conn, "floor_risk_profile_set", change.canonical(), operator_id, operator_key
    )


async def get_profile(db: Db, account: str) -> RiskProfile | None:
    raw = await db.fetchval("SELECT profile FROM risk_profiles WHERE account = $1", account)
    return None if raw is None else RiskProfile.from_json_dict(json.loads(raw))


async def all_profiles(db: Db) -> dict[str, RiskProfile]:
    rows = await db.fetch("SELECT account, profile FROM risk_profiles ORDER BY account")
    return {r["account"]: RiskProfile.from_json_dict(json.loads(r["profile"])) for r in rows}


async def profile_history(db: Db, account: str) -> list[tuple[int, datetime, str, RiskProfile]]:
    """Every change for ``account`` from the ledger: (seq, recorded_at, operator, profile)."""
    rows = await db.fetch(
        "SELECT seq, recorded_at, payload FROM ledger_entries"
        " WHERE kind = $1 AND account = $2 AND authenticated ORDER BY seq",
        KIND_RISK_PROFILE_SET,
        account,
    )
    out = []
    for r in rows:
        change = RiskProfileChange.from_canonical(bytes(r["payload"]))
        out.append((int(r["seq"]), r["recorded_at"], change.agent_id, change.profile))
    return out
