"""Append to the ledger: one statement, one round trip, committed when it returns.

Write-ahead rule: the hot path calls :func:`append_command` with ``Decision.ACCEPTED`` and
awaits it *before* the broker call; when it returns (outside an explicit transaction) the entry
is durable. The database assigns ``seq`` (gapless, in commit order), ``recorded_at`` and the
chained hash (see :mod:`ledger.chain`) inside ``ledger_append()``.

Several entries can be committed together, in order, in one transaction
(:func:`append_entries`, the hot path's group commit): each is chained to the one before it as
single appends are, and the commit covering all of them has happened when it returns.

Replays cannot be appended: the same authenticated signature, the same (agent, nonce) or the
same command id a second time raises :class:`ReplayRefused` naming which, and nothing is
written. Nor can a revoked key's word: an authenticated entry whose signer's key is revoked
raises :class:`SignerRevoked`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import asyncpg
import rfc8785

from ledger.db import Db
from trading.commands import Command
from trading.signing import SignedCommand, signature_hash

_APPEND_SQL = (
    "SELECT seq, entry_hash, recorded_at"
    " FROM ledger_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
)

_UNIQUE_FIELDS = {
    "ledger_entries_signature_hash": "signature_hash",
    "ledger_entries_agent_nonce": "nonce",
    "ledger_entries_command_id": "command_id",
}

KIND_UNVERIFIED = "unverified"
"""``kind`` of an entry whose payload could not be authenticated (a sentry refusal)."""


class Decision(enum.StrEnum):
    ACCEPTED = "accepted"
    """Passed sentry, sizing and risk; the order may now go to the broker."""
    REJECTED = "rejected"
    """Refused by the floor; ``reason`` names the rule."""
    APPLIED = "applied"
    """An administrative change (a risk profile) that took effect."""


class LedgerError(Exception):
    """Base of the ledger's named errors."""


class ReplayRefused(LedgerError):
    """The ledger already holds this signature / (agent, nonce) / command id."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field} already in the ledger: {detail}")
        self.field = field


class SignerRevoked(LedgerError):
    """The signer's key is revoked: the ledger appends no authenticated entry it signed (see
    migration 0006); record the refusal with :func:`append_refusal`."""


SIGNER_REVOKED_SQLSTATE = "FLK01"


class EntryInvalid(LedgerError):
    """An entry the ledger's rules refuse (e.g. a rejection without a reason)."""


@dataclass(frozen=True)
class LedgerRecord:
    seq: int
    entry_hash: bytes
    recorded_at: datetime


@dataclass(frozen=True)
class ReplayKey:
    """What the sentry remembers per accepted command (see ``trading.sentry.ReplayGuard``)."""

    agent_id: str
    nonce: str
    signature_hash: str
    issued_at: datetime


async def append_command(
    db: Db,
    signed: SignedCommand,
    *,
    decision: Decision,
    reason: str | None = None,
    received_at: datetime | None = None,
    detail: Mapping[str, Any] | None = None,
) -> LedgerRecord:
    """Record a verified command and the floor's decision on it.

    Only call this for an envelope whose signature the sentry verified: the entry is marked
    authenticated and ``floor ledger verify`` will re-check the signature.

    ``detail`` is what the floor worked out (for an accepted order at least ``quantity``, the
    shares sent; also entry price, bankroll, binding limit ...): JSON values only, decimals as
    strings. It is stored as canonical JSON and covered by the chain.
    """
    if decision is Decision.APPLIED:
        raise EntryInvalid("a command is accepted or rejected, not applied")
    in_transaction = getattr(db, "is_in_transaction", None)
    if decision is Decision.ACCEPTED and in_transaction is not None and in_transaction():
        # Inside a caller's transaction the entry is not durable when this returns, so a broker
        # call made next would break the write-ahead rule.
        raise EntryInvalid(
            "append an accepted command outside any transaction: it must be committed on return"
        )
    command: Command = signed.command
    return await append_signed(
        db,
        kind=command.kind.value,
        payload=signed.canonical,
        signer=signed.signer,
        scheme=signed.scheme,
        signature=signed.signature,
        account=command.account,
        agent_id=command.agent_id,
        command_id=command.command_id,
        nonce=command.nonce,
        issued_at=command.issued_at,
        decision=decision,
        reason=reason,
        received_at=received_at,
        detail=detail,
    )


async def append_signed(
    db: Db,
    *,
    kind: str,
    payload: bytes,
    signer: str,
    scheme: str,
    signature: bytes,
    account: str | None,
    agent_id: str,
    command_id: str,
    nonce: str,
    issued_at: datetime,
    decision: Decision,
    reason: str | None = None,
    received_at: datetime | None = None,
    detail: Mapping[str, Any] | None = None,
) -> LedgerRecord:
    """Record any authenticated signed document (commands, risk profile changes).

    The columns (account, agent_id, command_id, nonce, issued_at) must be the payload's own
    values; ``floor ledger verify`` checks that they are.
    """
    entry = _entry(
        kind, account, agent_id, command_id, nonce, issued_at, payload, signer, scheme, signature, True,
        decision, reason, received_at, detail,
    )  # fmt: skip
    return await append_entry(db, entry)


async def append_refusal(
    db: Db,
    *,
    payload: bytes,
    signer: str,
    signature: bytes,
    reason: str,
    scheme: str = "ed25519",
    received_at: datetime | None = None,
    detail: Mapping[str, Any] | None = None,
) -> LedgerRecord:
    """Record input the sentry refused because it could not be authenticated (unknown key,
    bad signature). The raw payload is kept as evidence; the entry is ``rejected`` and
    unauthenticated, so it never blocks a genuine command's signature, nonce or id."""
    entry = refusal_entry(
        payload=payload, signer=signer, signature=signature, reason=reason, scheme=scheme,
        received_at=received_at, detail=detail,
    )  # fmt: skip
    return await append_entry(db, entry)


@dataclass(frozen=True)
class AppendEntry:
    """One entry's arguments to ``ledger_append()``, checked and encoded, not yet written: what
    :func:`append_entries` commits several of at once."""

    args: tuple[Any, ...]
    agent_id: str | None
    command_id: str | None


def command_entry(
    signed: SignedCommand,
    *,
    decision: Decision,
    reason: str | None = None,
    received_at: datetime | None = None,
    detail: Mapping[str, Any] | None = None,
) -> AppendEntry:
    """The entry :func:`append_command` would write (the same rules), to append later."""
    if decision is Decision.APPLIED:
        raise EntryInvalid("a command is accepted or rejected, not applied")
    command: Command = signed.command
    return _entry(
        command.kind.value, command.account, command.agent_id, command.command_id, command.nonce,
        command.issued_at, signed.canonical, signed.signer, signed.scheme, signed.signature, True,
        decision, reason, received_at, detail,
    )  # fmt: skip


def refusal_entry(
    *,
    payload: bytes,
    signer: str,
    signature: bytes,
    reason: str,
    scheme: str = "ed25519",
    received_at: datetime | None = None,
    detail: Mapping[str, Any] | None = None,
) -> AppendEntry:
    """The entry :func:`append_refusal` would write, to append later."""
    return _entry(
        KIND_UNVERIFIED, None, None, None, None, None, payload, signer, scheme, signature, False,
        Decision.REJECTED, reason, received_at, detail,
    )  # fmt: skip


def _entry(
    kind: str,
    account: str | None,
    agent_id: str | None,
    command_id: str | None,
    nonce: str | None,
    issued_at: datetime | None,
    payload: bytes,
    signer: str,
    scheme: str,
    signature: bytes,
    authenticated: bool,
    decision: Decision,
    reason: str | None,
    received_at: datetime | None,
    detail: Mapping[str, Any] | None,
) -> AppendEntry:
    if decision is Decision.REJECTED and not reason:
        raise EntryInvalid("a rejected entry needs a reason")
    if reason == "":
        raise EntryInvalid("reason must be None or non-empty")
    args = (
        kind,
        account,
        agent_id,
        command_id,
        nonce,
        issued_at,
        payload,
        signer,
        scheme,
        signature,
        signature_hash(signature),
        authenticated,
        decision.value,
        reason,
        received_at or datetime.now(UTC),
        _canonical_detail(detail),
    )
    return AppendEntry(args, agent_id, command_id)


async def append_entry(db: Db, entry: AppendEntry) -> LedgerRecord:
    """Write one entry: one statement, committed when it returns (outside a transaction)."""
    try:
        row = await db.fetchrow(_APPEND_SQL, *entry.args)
    except asyncpg.PostgresError as exc:
        raise _named(exc, entry) from None
    return LedgerRecord(row["seq"], bytes(row["entry_hash"]), row["recorded_at"])


class BatchDb(Db, Protocol):
    """A handle that runs one statement for many argument sets in one round trip."""

    async def fetchmany(self, query: str, args: Sequence[Sequence[Any]]) -> list[Any]: ...


class GroupRefused(LedgerError):
    """The database refused one entry of a group (a replay, a revoked signer, a rule), so it
    wrote none of them: append them one at a time to learn which, each with its own answer."""

    def __init__(self, cause: LedgerError) -> None:
        super().__init__(f"an entry of the group was refused, none written: {cause}")
        self.cause = cause


async def append_entries(db: BatchDb, entries: Sequence[AppendEntry]) -> list[LedgerRecord]:
    """Write ``entries`` in this order in ONE transaction, committed when it returns: one round
    trip and one commit (one flush of the write-ahead log) for all of them, each entry chained
    to the one before it exactly as single appends would be. All or nothing: a refusal of any
    entry raises :class:`GroupRefused` and nothing is written; a lost connection raises as
    asyncpg raises it (the group may have committed, every entry alike).

    Outside an explicit transaction the extended query protocol runs every statement up to the
    one Sync asyncpg sends in a single implicit transaction, committed at that Sync, which is
    before this returns: the write-ahead rule holds for each entry of the group."""
    in_transaction = getattr(db, "is_in_transaction", None)
    if in_transaction is not None and in_transaction():
        raise EntryInvalid("append a group outside any transaction: it must be committed on return")
    try:
        rows = await db.fetchmany(_APPEND_SQL, [entry.args for entry in entries])
    except asyncpg.PostgresError as exc:
        named = _named(exc, None)
        if isinstance(named, LedgerError):
            raise GroupRefused(named) from None
        raise
    return [LedgerRecord(row["seq"], bytes(row["entry_hash"]), row["recorded_at"]) for row in rows]


def _named(exc: asyncpg.PostgresError, entry: AppendEntry | None) -> Exception:
    """The ledger's name for a refusal the database made (else ``exc`` itself)."""
    if isinstance(exc, asyncpg.UniqueViolationError):
        field = _UNIQUE_FIELDS.get(exc.constraint_name or "")
        if field is None:
            return exc
        who = f"agent {entry.agent_id}, command {entry.command_id}" if entry is not None else "an entry"
        return ReplayRefused(field, who)
    if isinstance(exc, asyncpg.CheckViolationError):
        return EntryInvalid(str(exc))
    if exc.sqlstate == SIGNER_REVOKED_SQLSTATE:
        return SignerRevoked(str(exc))
    return exc


def _canonical_detail(detail: Mapping[str, Any] | None) -> str | None:
    if detail is None:
        return None
    try:
        return rfc8785.dumps(dict(detail)).decode()
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise EntryInvalid(f"detail must hold JSON values only (decimals as strings): {exc}") from None


async def load_replay_keys(db: Db, since: datetime) -> list[ReplayKey]:
    """Authenticated entries issued at or after ``since``, oldest first: warm the sentry's
    replay guard with these at start-up (``since`` = now minus the acceptance window)."""
    rows = await db.fetch(
        "SELECT agent_id, nonce, signature_hash, issued_at FROM ledger_entries"
        " WHERE authenticated AND issued_at >= $1 ORDER BY issued_at",
        since,
    )
    return [ReplayKey(r["agent_id"], r["nonce"], r["signature_hash"], r["issued_at"]) for r in rows]


async def ledger_head(db: Db) -> tuple[int, bytes]:
    """(seq, entry_hash) of the newest entry; (0, 32 zero bytes) for an empty ledger."""
    row = await db.fetchrow("SELECT seq, entry_hash FROM ledger_head")
    return int(row["seq"]), bytes(row["entry_hash"])


async def entries_for_command(db: Db, command_id: str) -> list[int]:
    """Sequence numbers of the authenticated entries for ``command_id`` (at most one)."""
    rows = await db.fetch(
        "SELECT seq FROM ledger_entries WHERE command_id = $1 AND authenticated ORDER BY seq", command_id
    )
    return [int(r["seq"]) for r in rows]
