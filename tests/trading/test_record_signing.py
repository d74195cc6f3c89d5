"""Signed records: what verifies, and the named refusal for everything else."""

from __future__ import annotations

import json

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from trading.record_signing import (
    BAD_SIGNATURE,
    KEY_REVOKED,
    MALFORMED,
    NOT_A_WRITER,
    UNKNOWN_KEY,
    UNSIGNED,
    RecordRefused,
    WriterKey,
    canonical,
    record_claims,
    sign_record,
    verify_record,
)
from trading.signing import generate_private_key, key_id, public_key_bytes

HOTPATH = generate_private_key()
AGENT = generate_private_key()


def _key(private: object, agent_id: str, role: str = "service", revoked: bool = False) -> WriterKey:
    return WriterKey(key_id(private), agent_id, public_key_bytes(private), role, revoked)  # type: ignore[arg-type]


KEYS = {
    key_id(HOTPATH): _key(HOTPATH, "floor-hotpath"),
    key_id(AGENT): _key(AGENT, "alpha", role="agent"),
}
RECORD = json.dumps({"v": 1, "event_id": "e1", "kind": "cancelled", "filled_qty": 0}).encode()


def _refusal(topic: str, raw: bytes, keys: dict[str, WriterKey] = KEYS) -> str:
    with pytest.raises(RecordRefused) as refused:
        verify_record(topic, raw, keys)
    return refused.value.reason


def test_a_record_signed_by_the_hot_path_verifies_with_its_fields_intact() -> None:
    record = verify_record("orders.events", sign_record("orders.events", RECORD, HOTPATH), KEYS)
    assert {k: v for k, v in record.items() if k != "proof"} == json.loads(RECORD)


def test_each_way_of_not_being_the_writer_is_refused_by_name() -> None:
    signed = sign_record("orders.events", RECORD, HOTPATH)
    assert _refusal("orders.events", RECORD) == UNSIGNED
    assert _refusal("orders.events", b"[1]") == MALFORMED
    assert (
        _refusal("orders.events", sign_record("orders.events", RECORD, generate_private_key())) == UNKNOWN_KEY
    )
    assert _refusal("orders.events", sign_record("orders.events", RECORD, AGENT)) == NOT_A_WRITER
    revoked = {**KEYS, key_id(HOTPATH): _key(HOTPATH, "floor-hotpath", revoked=True)}
    assert _refusal("orders.events", signed, revoked) == KEY_REVOKED
    # Signed for one topic, replayed on another.
    assert _refusal("broker.sessions", signed) == BAD_SIGNATURE
    # The reconciliation key writes orders.events but not broker.sessions.
    reconcile = generate_private_key()
    keys = {**KEYS, key_id(reconcile): _key(reconcile, "floor-reconcile")}
    assert verify_record("orders.events", sign_record("orders.events", RECORD, reconcile), keys)
    assert (
        _refusal("broker.sessions", sign_record("broker.sessions", RECORD, reconcile), keys) == NOT_A_WRITER
    )


@pytest.mark.parametrize(
    ("kind", "written"),
    [("filled", True), ("partially_filled", True), ("cancelled", True), ("accepted", False),
     ("rejected", False), ("submitted", False), ("expired", False), (None, False)],
)  # fmt: skip
def test_the_reconciliation_key_signs_only_the_record_kinds_reconciliation_writes(
    kind: str | None, written: bool
) -> None:
    reconcile = generate_private_key()
    keys = {**KEYS, key_id(reconcile): _key(reconcile, "floor-reconcile")}
    raw = sign_record(
        "orders.events", json.dumps({"v": 1, "event_id": "e1", "kind": kind}).encode(), reconcile
    )
    if written:
        assert verify_record("orders.events", raw, keys)["kind"] == kind
    else:
        assert _refusal("orders.events", raw, keys) == NOT_A_WRITER
    # The hot path writes every kind.
    assert verify_record("orders.events", sign_record("orders.events", raw, HOTPATH), keys)["kind"] == kind


@given(field=st.sampled_from(["event_id", "kind", "filled_qty", "v"]), value=st.integers() | st.text())
def test_changing_any_field_after_signing_breaks_the_signature(field: str, value: object) -> None:
    signed = json.loads(sign_record("orders.events", RECORD, HOTPATH))
    if signed[field] == value:
        return
    signed[field] = value
    assert _refusal("orders.events", json.dumps(signed).encode()) in (BAD_SIGNATURE, MALFORMED)


def test_a_field_added_by_a_newer_writer_is_covered_by_the_signature() -> None:
    newer = json.dumps({**json.loads(RECORD), "venue": "X"}).encode()
    signed = json.loads(sign_record("orders.events", newer, HOTPATH))
    assert verify_record("orders.events", json.dumps(signed).encode(), KEYS)["venue"] == "X"
    del signed["venue"]
    assert _refusal("orders.events", json.dumps(signed).encode()) == BAD_SIGNATURE


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


@given(JSON)
def test_the_fast_canonical_form_is_exactly_rfc_8785(value: object) -> None:
    """Signers and verifiers on either side of the fast path must agree byte for byte: control
    characters, non-ASCII and astral keys (UTF-16 order), big integers and floats included."""
    try:
        expected = rfc8785.dumps(value)  # type: ignore[arg-type]
    except rfc8785.CanonicalizationError:
        with pytest.raises(rfc8785.CanonicalizationError):
            canonical(value)
        return
    assert canonical(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        {"\U0001f600": 1, "\uffff": 2, "a": 3},  # UTF-16 order puts the astral key first
        {"k": '\x00\x1f\x7f\\"\u2028 é'},
        {"n": 2**53 - 1, "m": -(2**53) + 1},
        [2**53],
        {"f": 1.0, "g": 1e21, "h": 5e-324},
        {"s": "\ud800"},  # a lone surrogate: refused by both
    ],
)
def test_the_fast_canonical_form_matches_rfc_8785_at_the_edges(value: object) -> None:
    test_the_fast_canonical_form_is_exactly_rfc_8785.hypothesis.inner_test(value)  # type: ignore[attr-defined]


def test_a_depth_record_signed_by_the_hot_path_verifies() -> None:
    depth = json.dumps(
        {"v": 1, "symbol": "AAPL", "ts": "2026-11-24T05:00:00.123456+00:00",
         "bids": [{"price": "229.86", "size": 300}], "asks": [{"price": "229.87", "size": 100}]}
    ).encode()  # fmt: skip
    assert (
        verify_record("market.depth", sign_record("market.depth", depth, HOTPATH), KEYS)["symbol"] == "AAPL"
    )
    assert _refusal("market.depth", sign_record("market.depth", depth, AGENT)) == NOT_A_WRITER
    assert _refusal("market.depth", depth) == UNSIGNED


def test_a_record_nested_past_the_parser_is_malformed_not_an_error() -> None:
    """json.loads raises RecursionError, not ValueError, on nesting deeper than it recurses: a
    consumer that caught only ValueError would die on one such record."""
    deep = b"[" * 100_000
    with pytest.raises(RecordRefused) as refused:
        verify_record("orders.events", deep, {})
    assert refused.value.reason == MALFORMED
    assert record_claims(deep) == {}
