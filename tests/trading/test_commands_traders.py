"""A trader's commands on the wire: the ``authorization`` evidence, manual enters (no edge,
the trader's own quantity, an optional ``stop_loss``), strictly validated and round-tripping."""

from __future__ import annotations

import base64
import hashlib
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.factories import authorization
from tests.trading.test_commands import enter_dict
from trading.authorization import Authorization, AuthorizationInvalid, Ceremony, trader_agent_id
from trading.commands import Command, CommandInvalid, CommandKind, canonical_bytes

HASH = hashlib.sha256(b"x").hexdigest()


def auth_dict(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "trader": "alice",
        "credential_id": "AAECAwQFBgcICQoLDA0ODxAREhM",
        "sign_count": 7,
        "authenticator_data_sha256": HASH,
        "client_data_sha256": HASH,
        "ceremony": "arming",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def manual_dict(**overrides: Any) -> dict[str, Any]:
    return enter_dict(edge=None, quantity=100, **overrides)


def test_an_authorised_manual_enter_round_trips_exactly() -> None:
    data = manual_dict(stop_loss="185.00", authorization=auth_dict(ceremony="step_up", order_hash=HASH))
    command = Command.from_json_dict(data)
    assert command.edge is None and command.quantity == 100 and command.stop_loss == Decimal("185.00")
    assert command.authorization == Authorization(
        "alice", "AAECAwQFBgcICQoLDA0ODxAREhM", 7, HASH, HASH, Ceremony.STEP_UP, HASH
    )
    assert command.to_json_dict() == data
    # The constructor agrees with the decoder, so what the API builds is what the hot path reads.
    rebuilt = Command(**{f: getattr(command, f) for f in command.__dataclass_fields__})
    assert canonical_bytes(rebuilt) == canonical_bytes(command)


@pytest.mark.parametrize(
    "kind_data",
    [
        {"kind": "exit", "symbol": "AAPL", "side": "SELL", "order_type": "MKT", "tif": "DAY", "quantity": 5},
        {"kind": "cancel", "target_command_id": "cmd-0"},
        {"kind": "cancel_all", "symbol": "AAPL"},
        {"kind": "breaker_trip", "account": "*"},
        {"kind": "breaker_arm", "account": "*"},
    ],
)
def test_every_kind_a_trader_signs_carries_an_authorization(kind_data: dict[str, Any]) -> None:
    data = {
        "v": 1, "command_id": "cmd-1", "agent_id": "trader.alice", "account": "DU100", "nonce": "n-1",
        "issued_at": "2026-11-24T04:48:34.123Z", **kind_data, "authorization": auth_dict(),
    }  # fmt: skip
    assert Command.from_json_dict(data).to_json_dict() == data


def test_an_iceberg_carries_no_authorization() -> None:
    data = {
        "v": 1, "kind": "iceberg", "command_id": "cmd-1", "agent_id": "a", "account": "DU100", "nonce": "n",
        "issued_at": "2026-11-24T04:48:34.123Z", "symbol": "AAPL", "side": "BUY", "tif": "DAY",
        "edge": {"p": "0.55", "b": "1.5", "stop_price": "185"}, "quantity": 10, "display_size": 5,
        "authorization": auth_dict(),
    }  # fmt: skip
    with pytest.raises(CommandInvalid) as info:
        Command.from_json_dict(data)
    assert info.value.field == "authorization"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"edge": None}, "edge"),  # neither an edge nor a quantity: nothing says how many
        ({"stop_loss": "180"}, "stop_loss"),  # an edge's stop is edge.stop_price
        ({"edge": None, "quantity": 10, "stop_loss": "-1"}, "stop_loss"),
        ({"edge": None, "quantity": 10, "stop_loss": "0"}, "stop_loss"),
        ({"edge": None, "quantity": 10, "stop_loss": 180}, "stop_loss"),
        ({"edge": None, "quantity": 10, "parent_id": "iceberg-cmd-0"}, "parent_id"),
        ({"edge": None, "quantity": 0}, "quantity"),
    ],
)
def test_a_bad_manual_enter_names_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(CommandInvalid) as info:
        Command.from_json_dict(enter_dict(**overrides))
    assert info.value.field == field


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"trader": ""}, "authorization.trader"),
        ({"trader": "al ice"}, "authorization.trader"),
        ({"trader": "a" * 65}, "authorization.trader"),
        ({"trader": None}, "authorization.trader"),
        ({"credential_id": "AAECAw=="}, "authorization.credential_id"),  # padded
        ({"credential_id": "AAEC+w"}, "authorization.credential_id"),  # base64, not base64url
        ({"credential_id": "A"}, "authorization.credential_id"),  # not a whole byte
        ({"credential_id": "AB"}, "authorization.credential_id"),  # stray bits: not canonical
        ({"credential_id": "A" * 1368}, "authorization.credential_id"),  # over 1023 bytes
        ({"sign_count": -1}, "authorization.sign_count"),
        ({"sign_count": 2**32}, "authorization.sign_count"),
        ({"sign_count": True}, "authorization.sign_count"),
        ({"sign_count": "7"}, "authorization.sign_count"),
        ({"authenticator_data_sha256": HASH[:-1]}, "authorization.authenticator_data_sha256"),
        ({"client_data_sha256": HASH.upper()}, "authorization.client_data_sha256"),
        ({"client_data_sha256": HASH[:-1] + "g"}, "authorization.client_data_sha256"),
        ({"ceremony": "login"}, "authorization.ceremony"),
        ({"ceremony": "step_up"}, "authorization.order_hash"),  # a step-up names its order
        ({"order_hash": HASH}, "authorization.order_hash"),  # an arming grant names none
        ({"ceremony": "session", "order_hash": HASH}, "authorization.order_hash"),  # nor does sign-in
        ({"ceremony": "step_up", "order_hash": "00"}, "authorization.order_hash"),
        ({"user_verified": True}, "authorization.user_verified"),
    ],
)
def test_a_bad_authorization_names_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(CommandInvalid) as info:
        Command.from_json_dict(manual_dict(authorization=auth_dict(**overrides)))
    assert info.value.field == field


def test_an_authorization_must_be_an_object() -> None:
    with pytest.raises(CommandInvalid) as info:
        Command.from_json_dict(manual_dict(authorization="alice"))
    assert info.value.field == "authorization"


def test_the_constructor_refuses_what_the_decoder_refuses() -> None:
    with pytest.raises(AuthorizationInvalid) as info:
        authorization("alice", ceremony=Ceremony.ARMING, order_hash=HASH)
    assert info.value.field == "authorization.order_hash"
    with pytest.raises(AuthorizationInvalid) as info:
        Authorization("alice", "AAECAw", -1, HASH, HASH, Ceremony.ARMING)
    assert info.value.field == "authorization.sign_count"
    assert Authorization("alice", "AAECAw", 0, HASH, HASH, "arming").ceremony is Ceremony.ARMING  # type: ignore[arg-type]


def test_describe_names_the_trader_the_passkey_the_count_and_the_ceremony() -> None:
    step_up = authorization("alice", ceremony=Ceremony.STEP_UP, sign_count=7)
    assert step_up.describe() == "authorised by trader alice, passkey AAECAwQFBgcI, sign count 7, step-up"
    assert authorization("bob", sign_count=0).describe().endswith("sign count 0, arming")
    assert authorization("carol", ceremony=Ceremony.SESSION).describe().endswith("sign count 7, sign-in")
    assert trader_agent_id(step_up.trader) == "trader.alice"


@given(
    trader=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", fullmatch=True),
    credential=st.binary(min_size=1, max_size=1023),
    sign_count=st.integers(0, 2**32 - 1),
    digests=st.tuples(st.binary(), st.binary(), st.binary()),
    ceremony=st.sampled_from([c.value for c in Ceremony]),
    stop_loss=st.one_of(st.none(), st.decimals(Decimal("0.01"), Decimal("99999"), places=2)),
)
def test_any_valid_authorization_round_trips_exactly(
    trader: str,
    credential: bytes,
    sign_count: int,
    digests: tuple[bytes, bytes, bytes],
    ceremony: str,
    stop_loss: Decimal | None,
) -> None:
    auth = auth_dict(
        trader=trader,
        credential_id=base64.urlsafe_b64encode(credential).rstrip(b"=").decode(),
        sign_count=sign_count,
        authenticator_data_sha256=hashlib.sha256(digests[0]).hexdigest(),
        client_data_sha256=hashlib.sha256(digests[1]).hexdigest(),
        ceremony=ceremony,
        order_hash=hashlib.sha256(digests[2]).hexdigest() if ceremony == "step_up" else None,
    )
    data = manual_dict(authorization=auth, stop_loss=None if stop_loss is None else format(stop_loss, "f"))
    command = Command.from_json_dict(data)
    assert command.kind is CommandKind.ENTER and command.to_json_dict() == data
    assert command.authorization is not None and command.authorization.to_json_dict() == auth
    assert Command.from_json_dict(command.to_json_dict()) == command
