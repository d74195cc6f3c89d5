"""Signed checkpoints of the ledger head, kept where the database's roles cannot rewrite them.

A database superuser can truncate the ledger's tail, or rewrite an entry and re-chain everything
after it, and leave a chain that checks out on its own. A checkpoint is the floor's signed word,
taken at the time, that the ledger held entry ``seq`` with hash ``entry_hash``; the hot path
takes one each time the ledger has grown by ``FLOOR_LEDGER_CHECKPOINT_EVERY`` entries and when it
stops (hotpath/checkpoints.py), signs it with the ``floor-ledger`` service key and appends it to
``var/ledger/checkpoints.jsonl`` and to the ``ledger.checkpoints`` topic. ``floor ledger verify``
then refuses a ledger that no longer holds a checkpointed entry (tail truncated) or holds a
different one (history rewritten).

One checkpoint is one JSON line: the signed document (RFC 8785 canonical JSON of ``v``,
``kind``, ``seq``, ``entry_hash``, ``taken_at``) plus ``signer`` (key id) and ``signature`` (hex).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from trading.commands import CommandInvalid, format_timestamp_ms, parse_timestamp_ms, utc_now_ms
from trading.signing import SignatureInvalid, key_id, public_key_from_bytes, sign_bytes, verify_bytes

KIND_LEDGER_CHECKPOINT = "ledger_checkpoint"
CHECKPOINT_AGENT = "floor-ledger"
"""The service key that signs checkpoints (made and registered by floor/provision.py)."""
CHECKPOINTS_FILE = Path("ledger") / "checkpoints.jsonl"
"""Under the var directory."""


class CheckpointInvalid(ValueError):
    """A line that is not a checkpoint; the message says what is wrong with it."""


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    entry_hash: bytes
    taken_at: datetime
    signer: str
    signature: bytes

    def document(self) -> bytes:
        """The signed bytes."""
        return rfc8785.dumps(
            {
                "v": 1,
                "kind": KIND_LEDGER_CHECKPOINT,
                "seq": self.seq,
                "entry_hash": self.entry_hash.hex(),
                "taken_at": format_timestamp_ms(self.taken_at),
            }
        )

    def to_json(self) -> bytes:
        """One line (no newline): the document's fields, the signer and the signature."""
        data: dict[str, Any] = json.loads(self.document())
        data["signer"] = self.signer
        data["signature"] = self.signature.hex()
        return rfc8785.dumps(data)

    @classmethod
    def from_json(cls, raw: bytes | str) -> Checkpoint:
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CheckpointInvalid(f"not JSON: {exc}") from None
        if not isinstance(data, dict) or data.get("v") != 1 or data.get("kind") != KIND_LEDGER_CHECKPOINT:
            raise CheckpointInvalid("not a v1 ledger_checkpoint")
        try:
            seq = data["seq"]
            if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
                raise CheckpointInvalid("seq must be a positive integer")
            entry_hash = bytes.fromhex(data["entry_hash"])
            signature = bytes.fromhex(data["signature"])
            taken_at = parse_timestamp_ms(data["taken_at"])
            signer = data["signer"]
        except (KeyError, TypeError, ValueError, CommandInvalid) as exc:
            if isinstance(exc, CheckpointInvalid):
                raise
            raise CheckpointInvalid(f"malformed field: {exc}") from None
        if len(entry_hash) != 32 or not isinstance(signer, str):
            raise CheckpointInvalid("entry_hash must be 32 bytes and signer a key id")
        return cls(seq, entry_hash, taken_at, signer, signature)

    def verify(self, public_key: bytes) -> None:
        """Raises :class:`trading.signing.SignatureInvalid` unless ``public_key`` signed it."""
        verify_bytes(public_key_from_bytes(public_key), self.document(), self.signature)


def sign_checkpoint(
    key: Ed25519PrivateKey, seq: int, entry_hash: bytes, taken_at: datetime | None = None
) -> Checkpoint:
    unsigned = Checkpoint(seq, entry_hash, taken_at or utc_now_ms(), key_id(key), b"")
    signature = sign_bytes(key, unsigned.document())
    return Checkpoint(unsigned.seq, unsigned.entry_hash, unsigned.taken_at, unsigned.signer, signature)


def append_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """Append one line and flush it to disk before returning (the file is the copy verify reads
    by default)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, checkpoint.to_json() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class CheckpointLine:
    where: str
    """Where it was read, for messages: ``checkpoint line 3``, ``ledger.checkpoints offset 7``."""
    checkpoint: Checkpoint | None
    problem: str | None = None


def parse_checkpoint(where: str, raw: bytes) -> CheckpointLine:
    try:
        return CheckpointLine(where, Checkpoint.from_json(raw))
    except CheckpointInvalid as exc:
        return CheckpointLine(where, None, str(exc))


def read_checkpoints(path: Path) -> list[CheckpointLine]:
    """Every line of the file (none if it does not exist), parsed or with what is wrong with it."""
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return []
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            out.append(parse_checkpoint(f"checkpoint line {number}", line))
    return out


def authentic(
    lines: list[CheckpointLine], public_keys: dict[str, tuple[str, bytes]]
) -> tuple[list[Checkpoint], list[str]]:
    """The checkpoints signed by a registered ``floor-ledger`` key, and a problem for every other
    line. ``public_keys`` maps key id to (agent id, public key)."""
    good: list[Checkpoint] = []
    problems: list[str] = []
    for line in lines:
        where = line.where
        if line.checkpoint is None:
            problems.append(f"{where} is unreadable ({line.problem})")
            continue
        registered = public_keys.get(line.checkpoint.signer)
        if registered is None or registered[0] != CHECKPOINT_AGENT:
            problems.append(f"{where} is not signed by a registered {CHECKPOINT_AGENT} key")
            continue
        try:
            line.checkpoint.verify(registered[1])
        except SignatureInvalid:
            problems.append(f"{where}: signature does not verify (forged or altered)")
            continue
        good.append(line.checkpoint)
    return good, problems
