"""Signed records: what a floor process publishes, with proof of which process wrote it.

Kafka authenticates nobody, so a record the floor acts on (``orders.events``,
``broker.sessions``, ``market.depth``, which the desk prices orders from, and
``market.trades``, which the HUD shows traders) carries the
writer's Ed25519 signature, by the same scheme as commands
(:mod:`trading.signing`). The record stays the JSON object its decoders know, with one more
key, ``proof``; decoders ignore unknown keys, so a reader that only displays records need not
change::

    {"v": 1, "event_id": "...", ..., "proof": {"signer": "<key id>", "scheme": "ed25519",
                                               "signature": "<128 hex>"}}

The signature covers the RFC 8785 canonical JSON of ``{"topic": <topic>, "record": <the
record without proof>}``: the topic is bound in, so a record signed for one topic is refused on
another. It is computed over the record as published, every key included, so a verifier checks
exactly what the writer signed even when the writer is newer than the verifier.

A record is trusted only when signed by an unrevoked ``service`` key of an agent the topic names
as its writer (:data:`RECORD_WRITERS`), of a kind that writer writes (:data:`WRITER_KINDS`);
anything else is refused with a named :class:`RecordRefused` reason, which the consumer turns
into a security event.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from trading.signing import (
    SCHEME_ED25519,
    KeyInvalid,
    SignatureInvalid,
    key_id,
    public_key_from_bytes,
    sign_bytes,
    verify_bytes,
)

PROOF = "proof"
ROLE_SERVICE = "service"
"""The registry role of the floor's own keys (``ledger.keys.ROLE_SERVICE``)."""

HOTPATH_WRITER = "floor-hotpath"
"""The hot path's key: signs every ``orders.events``, ``broker.sessions``, ``market.depth`` and
``market.trades`` record it writes."""
RECONCILE_WRITER = "floor-reconcile"
"""The key the Temporal worker's reconciliation signed its ``orders.events`` records with, when
it had one. Nothing signs with it any more (the hot path reconciles and signs as
``floor-hotpath``) and ``floor up`` no longer makes it; its records are still verified, with
the narrow kinds below, because running workflows that received one re-check it when they
replay. Revoke it (``floor keys revoke floor-reconcile``) once none of those runs is left."""

RECORD_WRITERS: Mapping[str, frozenset[str]] = {
    "orders.events": frozenset({HOTPATH_WRITER, RECONCILE_WRITER}),
    "broker.sessions": frozenset({HOTPATH_WRITER}),
    # The desk checks a trader's arming limits at the book's prices: a forged book would move
    # an order past them without a step-up.
    "market.depth": frozenset({HOTPATH_WRITER}),
    # The HUD's volume at price and last trade: a forged trade would paint a price that never
    # traded where a trader clicks.
    "market.trades": frozenset({HOTPATH_WRITER}),
}
"""Per topic, the agents whose service key may write it. A topic not named here is not signed."""

WRITER_KINDS: Mapping[tuple[str, str], frozenset[str]] = {
    ("orders.events", RECONCILE_WRITER): frozenset({"filled", "partially_filled", "cancelled"}),
}
"""(topic, writer) -> the record kinds that writer may sign there; a writer not named here may
sign any kind. Reconciliation writes missed fills and ends orders the broker no longer knows;
its key speaks for nothing else (an ``accepted`` or ``rejected`` record, say)."""

# Refusal reasons (dotted, like the sentry's).
MALFORMED = "record.malformed"
UNSIGNED = "record.unsigned"
UNKNOWN_KEY = "record.unknown_key"
NOT_A_WRITER = "record.not_a_writer"
KEY_REVOKED = "record.key_revoked"
BAD_SIGNATURE = "record.bad_signature"


class RecordRefused(ValueError):
    """A record that must not be acted on; ``reason`` is one of the names above."""

    def __init__(self, reason: str, detail: str, *, signer: str | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.signer = signer


@dataclass(frozen=True)
class WriterKey:
    """A registered key as a record verifier needs it."""

    key_id: str
    agent_id: str
    public_key: bytes
    role: str
    revoked: bool = False


def signed_bytes(topic: str, record: Mapping[str, Any]) -> bytes:
    """What the signature covers: the topic and the record without its proof, canonical."""
    body = {k: v for k, v in record.items() if k != PROOF}
    return canonical({"topic": topic, "record": body})


_INT_MAX = 2**53 - 1


def canonical(value: Any) -> bytes:
    """RFC 8785 bytes of ``value``, computed fast for the JSON records are made of.

    For strings, integers within the 53-bit range, booleans, null, lists, and objects with ASCII
    keys, RFC 8785 is exactly compact JSON with sorted keys and UTF-8 text (the same escapes;
    UTF-16 key order is code-point order for ASCII), which the C encoder writes many times
    faster than the ``rfc8785`` package: a depth record is signed for every book change. Any
    other value (a float, a non-ASCII key, a lone surrogate) goes to ``rfc8785`` itself."""
    if _plain(value):
        try:
            return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        except UnicodeEncodeError:
            pass  # a lone surrogate: rfc8785 refuses it by name
    return rfc8785.dumps(value)


def _plain(value: Any) -> bool:
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return -_INT_MAX <= value <= _INT_MAX
    if kind is list or kind is tuple:
        return all(_plain(v) for v in value)
    if kind is dict:
        return all(type(k) is str and k.isascii() and _plain(v) for k, v in value.items())
    return False


def sign_record(topic: str, raw: bytes, private_key: Ed25519PrivateKey) -> bytes:
    """``raw`` (a JSON object) with a ``proof`` by ``private_key`` added; compact, sorted keys."""
    record = _object(raw)
    record.pop(PROOF, None)
    record[PROOF] = {
        "signer": key_id(private_key),
        "scheme": SCHEME_ED25519,
        "signature": sign_bytes(private_key, signed_bytes(topic, record)).hex(),
    }
    return json.dumps(record, separators=(",", ":"), sort_keys=True).encode()


def verify_record(topic: str, raw: bytes | str, keys: Mapping[str, WriterKey]) -> dict[str, Any]:
    """The record as a dict (proof included) if a writer of ``topic`` signed it; otherwise
    raise :class:`RecordRefused`. ``keys``: the registry by key id, revoked keys included."""
    record = _object(raw)
    proof = record.get(PROOF)
    if proof is None:
        raise RecordRefused(UNSIGNED, f"a {topic} record must carry a proof")
    if not isinstance(proof, dict) or not isinstance(proof.get("signer"), str):
        raise RecordRefused(MALFORMED, "proof must be an object naming its signer")
    signer = proof["signer"]
    key = keys.get(signer)
    if key is None:
        raise RecordRefused(UNKNOWN_KEY, f"key {signer} is not registered", signer=signer)
    writers = RECORD_WRITERS.get(topic, frozenset())
    if key.agent_id not in writers or key.role != ROLE_SERVICE:
        raise RecordRefused(
            NOT_A_WRITER,
            f"key {signer} belongs to {key.agent_id} ({key.role}); {topic} is written by "
            f"{', '.join(sorted(writers)) or 'nobody'}",
            signer=signer,
        )
    if key.revoked:
        raise RecordRefused(KEY_REVOKED, f"key {signer} of {key.agent_id} is revoked", signer=signer)
    signature = proof.get("signature")
    if proof.get("scheme", SCHEME_ED25519) != SCHEME_ED25519 or not isinstance(signature, str):
        raise RecordRefused(MALFORMED, "proof must be an ed25519 signature in hex", signer=signer)
    try:
        verify_bytes(
            public_key_from_bytes(key.public_key), signed_bytes(topic, record), bytes.fromhex(signature)
        )
    except (ValueError, KeyInvalid, SignatureInvalid):
        raise RecordRefused(BAD_SIGNATURE, f"signature by {signer} does not verify", signer=signer) from None
    kinds = WRITER_KINDS.get((topic, key.agent_id))
    if kinds is not None and record.get("kind") not in kinds:
        raise RecordRefused(
            NOT_A_WRITER,
            f"{key.agent_id} writes only {', '.join(sorted(kinds))} records on {topic},"
            f" not {record.get('kind')!r}",
            signer=signer,
        )
    return record


def _object(raw: bytes | str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        # Nesting deeper than the parser recurses is a RecursionError, not a ValueError: a
        # malformed record all the same, never an error that stops a consumer.
        raise RecordRefused(MALFORMED, f"not JSON: {type(exc).__name__}: {exc}") from None
    if not isinstance(data, dict):
        raise RecordRefused(MALFORMED, "a record is a JSON object")
    return data


CLAIM_FIELDS = ("event_id", "command_id", "account")
CLAIM_MAX_CHARS = 128


def record_claims(raw: bytes) -> dict[str, str]:
    """What an unverified record claims to be about, for whoever investigates it: a few fields,
    each cut to a bounded length (the record itself stays in the topic)."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        f"claimed_{name}": str(data[name])[:CLAIM_MAX_CHARS]
        for name in CLAIM_FIELDS
        if isinstance(data.get(name), str)
    }
