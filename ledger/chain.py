"""The ledger's hash chain, specified byte for byte (pure; no database).

Each entry's hash is::

    entry_hash = SHA-256( prev_hash || F(seq) || F(kind) || F(account) || F(agent_id)
                          || F(command_id) || F(nonce) || F(issued_at_ms) || F(payload)
                          || F(signer) || F(scheme) || F(signature) || F(signature_hash)
                          || F(authenticated) || F(decision) || F(reason)
                          || F(received_at_ms) || F(recorded_at_ms) [|| F(detail)] )

where ``F(x)`` is a 4-byte big-endian signed length followed by the bytes of ``x`` (text as
UTF-8, integers and millisecond timestamps as ASCII decimal, ``authenticated`` as ``t``/``f``),
and ``F(NULL)`` is the length -1 with no bytes, so NULL and the empty string differ.
``F(detail)`` is appended only when ``detail`` is not NULL (it was added by migration 0004;
entries without it keep the hashes they were written with). The first
entry's ``prev_hash`` is :data:`GENESIS_HASH` (32 zero bytes); ``seq`` starts at 1.

The database computes the same function (``ledger_entry_hash`` in
``ledger/migrations/0002_ledger.sql``) when appending; :mod:`ledger.verify` recomputes it here.
Every column is covered, so editing any of them breaks the chain from that entry on.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

GENESIS_HASH = bytes(32)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NULL = (-1).to_bytes(4, "big", signed=True)


def epoch_ms(ts: datetime) -> int:
    """Whole milliseconds since the Unix epoch, floored, exact (no float)."""
    return (ts - _EPOCH) // timedelta(milliseconds=1)


@dataclass(frozen=True)
class LedgerRow:
    """One ``ledger_entries`` row, as stored."""

    seq: int
    prev_hash: bytes
    entry_hash: bytes
    kind: str
    account: str | None
    agent_id: str | None
    command_id: str | None
    nonce: str | None
    issued_at: datetime | None
    payload: bytes
    signer: str
    scheme: str
    signature: bytes
    signature_hash: str
    authenticated: bool
    decision: str
    reason: str | None
    received_at: datetime
    recorded_at: datetime
    detail: str | None = None
    """The floor's particulars of the decision, RFC 8785 canonical JSON (an object), or None."""


def _field(value: bytes | None) -> bytes:
    if value is None:
        return _NULL
    return len(value).to_bytes(4, "big", signed=True) + value


def _text(value: str | None) -> bytes:
    return _field(None if value is None else value.encode())


def _ms(value: datetime | None) -> bytes:
    return _text(None if value is None else str(epoch_ms(value)))


def compute_entry_hash(prev_hash: bytes, row: LedgerRow) -> bytes:
    """The hash ``row`` must carry when it follows an entry whose hash is ``prev_hash``."""
    h = hashlib.sha256(prev_hash)
    for part in (
        _text(str(row.seq)),
        _text(row.kind),
        _text(row.account),
        _text(row.agent_id),
        _text(row.command_id),
        _text(row.nonce),
        _ms(row.issued_at),
        _field(row.payload),
        _text(row.signer),
        _text(row.scheme),
        _field(row.signature),
        _text(row.signature_hash),
        _text("t" if row.authenticated else "f"),
        _text(row.decision),
        _text(row.reason),
        _ms(row.received_at),
        _ms(row.recorded_at),
    ):
        h.update(part)
    if row.detail is not None:
        h.update(_text(row.detail))
    return h.digest()
