"""Signed records: what verifies, and the named refusal for everything else."""

from __future__ import annotations

import json

import pytest
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
