"""Re-check the whole ledger: the chain, every signature, and that stored columns say what the
signed payload says. Stops at, and names, the first bad entry.

Reads the key registry, the head row, the newest entry's seq and the risk profiles in one short
consistent snapshot (a read-only REPEATABLE READ transaction), then the entries up to that seq
in pages of :data:`PAGE` by ``seq``, each page on its own, so memory stays flat on a big ledger
and no snapshot is held while the appends go on; after each page it calls
``progress(done, total)`` so a CLI can draw a bar.

Per entry, in order (the first failing check is the reported problem):

1. ``seq`` is the previous one plus 1 (no gap, starting at 1);
2. ``prev_hash`` is the previous entry's hash (the genesis hash for the first);
3. ``entry_hash`` is :func:`ledger.chain.compute_entry_hash` of the row;
4. ``signature_hash`` is SHA-256 of ``signature``;
5. authenticated entries: the signer is a registered key, not revoked before the entry was
   recorded, of the agent the entry names; the scheme is Ed25519; the signature verifies
   over ``payload``; the payload parses (a command, a risk profile change signed by an
   operator key, or an automatic breaker trip signed by a service key; a breaker command
   must be an operator key's or an authorised trader's; a trader's key signs only with that
   trader's authorization, and no other key's command carries one) and its fields equal the
   stored columns;
6. unauthenticated entries are rejections (a refused forgery kept as evidence).

An entry whose command carries a trader's authorization (:class:`trading.authorization.Authorization`)
is told to ``on_authorised`` once it verified, so ``floor ledger verify`` can show who authorised
it (the trader, the passkey, the sign count and the ceremony).

Entries at the seq of a given :class:`Anchor` must carry its hash, and so must entries at the seq
of a signed checkpoint (:mod:`ledger.checkpoints`; a checkpoint line not signed by a registered
``floor-ledger`` key is itself a problem). Then the head row must point at the last entry, every
anchor must lie within the chain, no checkpoint may lie beyond its end (the first entry past the
end is reported missing), and each ``risk_profiles`` row must be the newest change the ledger
holds for its account.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from ledger.append import KIND_UNVERIFIED
from ledger.chain import GENESIS_HASH, LedgerRow, compute_entry_hash
from ledger.checkpoints import Checkpoint, CheckpointLine, authentic
from ledger.key_changes import KINDS as KEY_CHANGE_KINDS
from ledger.key_changes import KeyChange, KeyChangeInvalid
from ledger.keys import ROLE_OPERATOR, KeyRecord, load_keys
from ledger.risk_profiles import KIND_RISK_PROFILE_SET, ChangeInvalid, RiskProfileChange
from trading.authorization import Authorization
from trading.circuit_breaker_state import BREAKER_KINDS as BREAKER_ENTRY_KINDS
from trading.circuit_breaker_state import KIND_TRIPPED, TripRecord, TripRecordInvalid, signer_problem
from trading.commands import FLOOR_WIDE, Command, CommandInvalid, CommandKind
from trading.sentry import authority_problem
from trading.signing import (
    SCHEME_ED25519,
    SignatureInvalid,
    public_key_from_bytes,
    signature_hash,
    verify_bytes,
)
from trading.sizing import RiskProfile

PAGE = 2000

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Authorised:
    """A verified entry of a command a trader authorised with WebAuthn."""

    seq: int
    kind: str
    command_id: str
    decision: str
    authorization: Authorization

    def __str__(self) -> str:
        what = f"{self.kind} {self.command_id}, {self.decision}"
        return f"entry {self.seq} ({what}): {self.authorization.describe()}"


OnAuthorised = Callable[[Authorised], None]

_COMMAND_KINDS = frozenset(k.value for k in CommandKind)
_ROW_COLUMNS = ", ".join(LedgerRow.__dataclass_fields__)


@dataclass(frozen=True)
class BadEntry:
    seq: int
    problem: str

    def __str__(self) -> str:
        return f"entry {self.seq}: {self.problem}"


@dataclass(frozen=True)
class VerifyReport:
    entries: int
    """Entries checked (all of them when ``ok``)."""
    head_seq: int
    first_bad: BadEntry | None
    problems: tuple[str, ...] = ()
    """Problems outside the chain (head row, risk profile projection, checkpoint lines)."""
    checkpoints: int = 0
    """Signed checkpoints the chain was checked against."""

    @property
    def ok(self) -> bool:
        return self.first_bad is None and not self.problems


class _Bad(Exception):
    pass


@dataclass(frozen=True)
class Anchor:
    """A (seq, entry_hash) pair recorded outside the database (``floor ledger head``).

    A superuser who rewrites an entry *and* re-chains everything after it produces a ledger
    that is internally consistent; only a hash kept elsewhere exposes that. Pass anchors taken
    earlier and verify checks the ledger still holds them.
    """

    seq: int
    entry_hash: bytes

    @classmethod
    def parse(cls, text: str) -> Anchor:
        """``SEQ:HEX`` as printed by ``floor ledger head``."""
        seq, _, digest = text.partition(":")
        try:
            anchor = cls(int(seq), bytes.fromhex(digest))
        except ValueError:
            raise ValueError(f"an anchor is SEQ:HEX (64 hex digits), got {text!r}") from None
        if anchor.seq < 1 or len(anchor.entry_hash) != 32:
            raise ValueError(f"an anchor is SEQ:HEX (64 hex digits), got {text!r}")
        return anchor

    def __str__(self) -> str:
        return f"{self.seq}:{self.entry_hash.hex()}"


async def verify_ledger(
    dsn_or_conn: str | asyncpg.Connection,
    progress: Progress | None = None,
    anchors: tuple[Anchor, ...] = (),
    checkpoints: list[CheckpointLine] | None = None,
    on_authorised: OnAuthorised | None = None,
) -> VerifyReport:
    """Verify the ledger behind a DSN or an open connection (see the module docstring).
    ``checkpoints``: the lines of the checkpoint file, read before this is called (so none is
    newer than the ledger this sees). ``on_authorised``: told each verified entry a trader
    authorised, in ledger order."""
    lines = checkpoints or []
    if isinstance(dsn_or_conn, str):
        conn = await asyncpg.connect(dsn_or_conn)
        try:
            return await _verify(conn, progress, anchors, lines, on_authorised)
        finally:
            await conn.close()
    return await _verify(dsn_or_conn, progress, anchors, lines, on_authorised)


async def _verify(
    conn: asyncpg.Connection,
    progress: Progress | None,
    anchors: tuple[Anchor, ...],
    lines: list[CheckpointLine],
    on_authorised: OnAuthorised | None = None,
) -> VerifyReport:
    if conn.is_in_transaction():
        # The caller's transaction is the snapshot (e.g. an investigation inside a transaction).
        return await _check(conn, await _fixed_view(conn), progress, anchors, lines, on_authorised)
    # Only what must agree with itself is read in one snapshot: keys, head, extent, profiles.
    # The entries up to that extent are then read page by page, each page a snapshot of its
    # own: committed entries never change, and a snapshot held for the whole run would keep
    # every version of the ledger_head row the appends leave meanwhile, which each append
    # then steps over (on a big ledger, minutes of slower appends on the order path).
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        view = await _fixed_view(conn)
    return await _check(conn, view, progress, anchors, lines, on_authorised)


@dataclass(frozen=True)
class _View:
    keys: dict[str, KeyRecord]
    head_seq: int
    head_hash: bytes
    top: int
    """The newest entry's seq when the view was taken: the chain is checked up to here."""
    total: int
    profiles: list[Any]


async def _fixed_view(conn: asyncpg.Connection) -> _View:
    head = await conn.fetchrow("SELECT seq, entry_hash FROM ledger_head")
    extent = await conn.fetchrow("SELECT coalesce(max(seq), 0) AS top, count(*) AS total FROM ledger_entries")
    return _View(
        keys=await load_keys(conn),
        head_seq=int(head["seq"]),
        head_hash=bytes(head["entry_hash"]),
        top=int(extent["top"]),
        total=int(extent["total"]),
        profiles=list(
            await conn.fetch("SELECT account, profile, ledger_seq FROM risk_profiles ORDER BY account")
        ),
    )


async def _check(
    conn: asyncpg.Connection,
    view: _View,
    progress: Progress | None,
    anchors: tuple[Anchor, ...],
    lines: list[CheckpointLine],
    on_authorised: OnAuthorised | None = None,
) -> VerifyReport:
    signed, checkpoint_problems = authentic(
        lines, {k: (rec.agent_id, rec.public_key) for k, rec in view.keys.items()}
    )
    checker = _Checker(view.keys, anchors, signed, on_authorised)
    done = 0
    if progress:
        progress(0, view.total)
    last_seq = 0
    while True:
        rows = await conn.fetch(
            f"SELECT {_ROW_COLUMNS} FROM ledger_entries WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3",
            last_seq,
            view.top,
            PAGE,
        )
        if not rows:
            break
        for record in rows:
            row = _row(record)
            try:
                checker.check(row)
            except _Bad as bad:
                return VerifyReport(
                    done, view.head_seq, BadEntry(row.seq, str(bad)), tuple(checkpoint_problems), len(signed)
                )
            done += 1
        last_seq = int(rows[-1]["seq"])
        if progress:
            progress(done, view.total)

    beyond = [c for c in signed if c.seq > checker.prev_seq]
    if beyond:
        last = max(beyond, key=lambda c: c.seq)
        missing = BadEntry(
            checker.prev_seq + 1,
            f"missing: the floor's signed checkpoint of {last.taken_at:%Y-%m-%d %H:%M:%S}Z shows the ledger"
            f" held entries up to seq {last.seq}, but the chain ends at seq {checker.prev_seq}"
            " (tail truncated)",
        )
        return VerifyReport(done, view.head_seq, missing, tuple(checkpoint_problems), len(signed))
    problems: list[str] = list(checkpoint_problems)
    for anchor in anchors:
        if anchor.seq > checker.prev_seq:
            problems.append(f"anchor {anchor.seq} is beyond the end of the chain (entries removed)")
    if view.head_seq != checker.prev_seq or view.head_hash != checker.prev_hash:
        problems.append(
            f"ledger_head says seq {view.head_seq} but the chain ends at seq {checker.prev_seq}"
            " (entries removed or head altered)"
        )
    for r in view.profiles:
        latest = checker.latest_profile.get(r["account"])
        stored = RiskProfile.from_json_dict(json.loads(r["profile"]))
        if latest is None or latest[0] != r["ledger_seq"] or latest[1] != stored:
            problems.append(f"risk profile of {r['account']} is not the newest ledgered change")
    return VerifyReport(done, view.head_seq, None, tuple(problems), len(signed))


def _floor_ms(ts: datetime) -> datetime:
    return ts.replace(microsecond=ts.microsecond - ts.microsecond % 1000)


def _row(record: Any) -> LedgerRow:
    values = dict(record)
    for name in ("prev_hash", "entry_hash", "payload", "signature"):
        values[name] = bytes(values[name])
    return LedgerRow(**values)


class _Checker:
    def __init__(
        self,
        keys: dict[str, KeyRecord],
        anchors: tuple[Anchor, ...] = (),
        checkpoints: Sequence[Checkpoint] = (),
        on_authorised: OnAuthorised | None = None,
    ) -> None:
        self.keys = keys
        self.on_authorised = on_authorised
        self._authorised: Authorization | None = None
        """The authorization of the entry being checked, told once the entry verified."""
        self.anchors = {a.seq: a.entry_hash for a in anchors}
        self.checkpoints: dict[int, list[Checkpoint]] = {}
        for checkpoint in checkpoints:
            self.checkpoints.setdefault(checkpoint.seq, []).append(checkpoint)
        self.checkpointed = 0
        """The newest seq a checkpoint confirmed so far."""
        self.prev_seq = 0
        self.prev_hash = GENESIS_HASH
        self.latest_profile: dict[str, tuple[int, RiskProfile]] = {}

    def check(self, row: LedgerRow) -> None:
        if row.seq != self.prev_seq + 1:
            raise _Bad(f"sequence gap: expected seq {self.prev_seq + 1}")
        if row.prev_hash != self.prev_hash:
            raise _Bad("prev_hash does not match the previous entry's hash (chain broken)")
        if compute_entry_hash(self.prev_hash, row) != row.entry_hash:
            raise _Bad("entry_hash does not match the entry's contents (entry altered)")
        anchored = self.anchors.get(row.seq)
        if anchored is not None and anchored != row.entry_hash:
            raise _Bad("entry_hash differs from the anchor recorded earlier (history rewritten)")
        for checkpoint in self.checkpoints.get(row.seq, ()):
            if checkpoint.entry_hash != row.entry_hash:
                # A re-chained ledger is consistent with itself; only the checkpoint sees the
                # rewrite, somewhere after the last entry a checkpoint still confirms.
                raise _Bad(
                    "entry_hash differs from the floor's signed checkpoint of"
                    f" {checkpoint.taken_at:%Y-%m-%d %H:%M:%S}Z: history rewritten at or before this"
                    f" entry, after seq {self.checkpointed} (the last entry a checkpoint confirms)"
                )
        if row.seq in self.checkpoints:
            self.checkpointed = row.seq
        if signature_hash(row.signature) != row.signature_hash:
            raise _Bad("signature_hash is not SHA-256 of the signature")
        self._authorised = None
        if row.authenticated:
            self._check_authenticated(row)
        elif row.decision != "rejected" or row.kind != KIND_UNVERIFIED:
            raise _Bad("an unauthenticated entry must be a rejected 'unverified' entry")
        if self._authorised is not None and self.on_authorised is not None:
            assert row.command_id is not None
            self.on_authorised(Authorised(row.seq, row.kind, row.command_id, row.decision, self._authorised))
        self.prev_seq = row.seq
        self.prev_hash = row.entry_hash

    def _check_authenticated(self, row: LedgerRow) -> None:
        key = self.keys.get(row.signer)
        if key is None:
            raise _Bad(f"signer {row.signer} is not a registered key")
        # recorded_at is floored to the millisecond; compare at that resolution.
        if _floor_ms(key.created_at) > row.recorded_at:
            raise _Bad(f"key {row.signer} was registered after the entry was recorded")
        if key.revoked_at is not None and key.revoked_at <= row.recorded_at:
            raise _Bad(f"key {row.signer} was revoked before the entry was recorded")
        if key.agent_id != row.agent_id:
            raise _Bad(f"key {row.signer} belongs to {key.agent_id}, entry names {row.agent_id}")
        if row.scheme != SCHEME_ED25519:
            raise _Bad(f"unsupported signature scheme {row.scheme!r}")
        try:
            verify_bytes(public_key_from_bytes(key.public_key), row.payload, row.signature)
        except SignatureInvalid:
            raise _Bad("signature does not verify over the payload") from None
        fields = self._payload_fields(row, key)
        stored = (row.kind, row.account, row.agent_id, row.command_id, row.nonce, row.issued_at)
        if fields != stored:
            raise _Bad("stored columns differ from the signed payload")

    def _payload_fields(self, row: LedgerRow, key: KeyRecord) -> tuple[Any, ...]:
        try:
            data = json.loads(row.payload)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise _Bad("payload is not JSON") from None
        kind = data.get("kind") if isinstance(data, dict) else None
        if kind in _COMMAND_KINDS:
            try:
                command = Command.from_json_dict(data)
            except CommandInvalid as exc:
                raise _Bad(f"payload is not a valid command ({exc})") from None
            self._check_role(command.kind.value, key, command)
            self._authorised = command.authorization
            return (
                command.kind.value,
                command.account,
                command.agent_id,
                command.command_id,
                command.nonce,
                command.issued_at,
            )
        if kind == KIND_RISK_PROFILE_SET:
            try:
                change = RiskProfileChange.from_json_dict(data)
            except ChangeInvalid as exc:
                raise _Bad(f"payload is not a valid risk profile change ({exc})") from None
            if key.role != ROLE_OPERATOR:
                raise _Bad(f"risk profile change signed by a {key.role} key, not an operator key")
            if row.decision == "applied":
                self.latest_profile[change.account] = (row.seq, change.profile)
            return (
                KIND_RISK_PROFILE_SET,
                change.account,
                change.agent_id,
                change.command_id,
                change.nonce,
                change.issued_at,
            )
        if kind == KIND_TRIPPED:
            try:
                trip = TripRecord.from_json_dict(data)
            except TripRecordInvalid as exc:
                raise _Bad(f"payload is not a valid breaker trip ({exc})") from None
            self._check_role(KIND_TRIPPED, key, None)
            return (KIND_TRIPPED, FLOOR_WIDE, trip.agent_id, trip.command_id, trip.nonce, trip.issued_at)
        if kind in KEY_CHANGE_KINDS:
            try:
                key_change = KeyChange.from_canonical(row.payload)
            except KeyChangeInvalid as exc:
                raise _Bad(f"payload is not a valid key change ({exc})") from None
            if key.role != ROLE_OPERATOR:
                raise _Bad(f"key change signed by a {key.role} key, not an operator key")
            return (
                key_change.kind,
                None,
                key_change.agent_id,
                key_change.command_id,
                key_change.nonce,
                key_change.issued_at,
            )
        raise _Bad(f"unknown payload kind {kind!r}")

    @staticmethod
    def _check_role(kind: str, key: KeyRecord, command: Command | None) -> None:
        """Breaker entries carry authority only from the roles that may make them; a trader's
        key only with that trader's authorization, and no other key's command carries one."""
        if kind in BREAKER_ENTRY_KINDS:
            # The breaker agent is the hot path's configuration; any service key's trip verifies here.
            problem = signer_problem(kind, key.role, key.agent_id, None, command)
            if problem is not None:
                raise _Bad(problem)
        problem = None if command is None else authority_problem(command, key.role, key.agent_id)
        if problem is not None:
            raise _Bad(problem)
