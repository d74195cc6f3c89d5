"""The circuit breaker in the ledger: the floor's signed record of an automatic trip, and the
newest breaker entry, which a hot path starting up reads to know whether it is halted (the
breaker itself: :mod:`hotpath.circuit_breaker`, whose docstring lists every module of it).

See :mod:`trading.circuit_breaker_state` for which entries halt and which re-arm, and why an entry that
does not verify counts as a trip.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.append import Decision, LedgerRecord, append_signed
from ledger.db import Db
from ledger.key_trust import trusted_key
from trading.breaker_trip import REASON_UNVERIFIED, TripSummary, trip_summary
from trading.circuit_breaker_state import (
    ARMING_KINDS,
    BREAKER_KINDS,
    KIND_TRIPPED,
    TripRecord,
    signer_problem,
    state_after,
)
from trading.commands import FLOOR_WIDE, Command, CommandInvalid
from trading.ledger_trust import payload_mismatch
from trading.risk import TradingState
from trading.sentry import Window
from trading.signing import (
    SCHEME_ED25519,
    SignatureInvalid,
    key_id,
    public_key_from_bytes,
    sign_bytes,
    verify_bytes,
)


async def append_trip(
    db: Db, record: TripRecord, key: Ed25519PrivateKey, detail: Mapping[str, Any] | None = None
) -> LedgerRecord:
    """Sign ``record`` with the breaker's service key and ledger it (decision ``applied``)."""
    payload = record.canonical()
    return await append_signed(
        db,
        kind=KIND_TRIPPED,
        payload=payload,
        signer=key_id(key),
        scheme=SCHEME_ED25519,
        signature=sign_bytes(key, payload),
        account=FLOOR_WIDE,
        agent_id=record.agent_id,
        command_id=record.command_id,
        nonce=record.nonce,
        issued_at=record.issued_at,
        decision=Decision.APPLIED,
        detail=detail,
    )


@dataclass(frozen=True)
class BreakerEntry:
    """The newest breaker entry in the ledger, checked."""

    seq: int
    kind: str
    agent_id: str | None
    """Who tripped or re-armed: the operator, or the floor's breaker service."""
    command_id: str | None
    recorded_at: datetime
    problem: str | None
    """Why the entry does not verify (it then counts as a trip), or None."""
    trip: TripSummary | None = None
    """What the trip did, when the entry halted the floor (one that does not verify: only that)."""

    @property
    def state(self) -> TradingState:
        return TradingState.HALTED if self.problem is not None else state_after(self.kind)


_NEWEST = (
    "SELECT e.seq, e.kind, e.agent_id, e.command_id, e.payload, e.signer, e.signature, e.issued_at,"
    " e.recorded_at, e.detail,"
    " k.agent_id AS key_agent, k.public_key, k.role, k.revoked_at"
    " FROM ledger_entries e LEFT JOIN agent_keys k ON k.key_id = e.signer"
    " WHERE e.account = $1 AND e.kind = ANY($2::text[]) AND e.authenticated"
    " AND e.decision IN ('accepted', 'applied')"
    " ORDER BY e.seq DESC LIMIT 1"
)


async def newest_breaker_seq(db: Db) -> int | None:
    """The ledger seq of the newest accepted breaker entry, unchecked: a cheap poll for "has the
    breaker changed?" (then read it with :func:`newest_breaker_entry`, which checks it)."""
    seq = await db.fetchval(
        "SELECT max(seq) FROM ledger_entries WHERE account = $1 AND kind = ANY($2::text[])"
        " AND authenticated AND decision IN ('accepted', 'applied')",
        FLOOR_WIDE,
        sorted(BREAKER_KINDS),
    )
    return None if seq is None else int(seq)


async def newest_breaker_entry(db: Db, breaker_agent: str | None = None) -> BreakerEntry | None:
    """The newest accepted breaker entry (None on a floor that never tripped); with
    ``breaker_agent``, an automatic trip verifies only when that agent's key signed it."""
    row = await db.fetchrow(_NEWEST, FLOOR_WIDE, sorted(BREAKER_KINDS))
    if row is None:
        return None
    problem = _problem(row, breaker_agent)
    if problem is None and await trusted_key(db, row["signer"]) is None:
        problem = f"the registration of key {row['signer']} does not verify"
    trip = (
        trip_summary(row["kind"], bytes(row["payload"]))
        if problem is None
        else TripSummary(REASON_UNVERIFIED)
    )
    return BreakerEntry(
        seq=int(row["seq"]),
        kind=row["kind"],
        agent_id=row["agent_id"],
        command_id=row["command_id"],
        recorded_at=row["recorded_at"],
        problem=problem,
        trip=trip,
    )


def _problem(row: Any, breaker_agent: str | None) -> str | None:
    if row["public_key"] is None:
        return f"signer {row['signer']} is not a registered key"
    if row["key_agent"] != row["agent_id"]:
        return f"key {row['signer']} belongs to {row['key_agent']}, the entry names {row['agent_id']}"
    if row["revoked_at"] is not None and row["revoked_at"] <= row["recorded_at"]:
        return f"key {row['signer']} was revoked before the entry was recorded"
    signed = _command(bytes(row["payload"])) if row["kind"] != KIND_TRIPPED else None
    wrong_signer = signer_problem(row["kind"], row["role"], row["agent_id"], breaker_agent, signed)
    if wrong_signer is not None:
        return wrong_signer
    try:
        public_key = public_key_from_bytes(bytes(row["public_key"]))
        verify_bytes(public_key, bytes(row["payload"]), bytes(row["signature"]))
    except SignatureInvalid:
        return "signature does not verify over the payload"
    if row["kind"] in ARMING_KINDS and not Window().contains(row["issued_at"], row["recorded_at"]):
        # Intake ledgers an arm at once; an old signed arm appended later is a replay.
        return f"{row['kind']} issued at {row['issued_at']} was recorded outside the replay window"
    # Signed bytes of another kind (an operator's trip refused as stale, say) appended as an arm
    # verify too: the signed document must be the entry the row says it is.
    return payload_mismatch(
        bytes(row["payload"]),
        {
            "kind": row["kind"],
            "agent_id": row["agent_id"],
            "command_id": row["command_id"],
            "account": FLOOR_WIDE,
        },
    )


def _command(payload: bytes) -> Command | None:
    """The signed breaker command of an entry (None when the payload is not one: the checks
    after say why)."""
    try:
        return Command.from_json_dict(json.loads(payload))
    except (ValueError, CommandInvalid):
        return None
