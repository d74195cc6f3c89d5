from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from decimal import Decimal

import pytest

from tests.factories import enter_command
from trading.commands import Command, canonical_bytes
from trading.signing import (
    EnvelopeInvalid,
    KeyInvalid,
    SignatureInvalid,
    SignedCommand,
    generate_private_key,
    key_id,
    private_key_from_pem,
    private_key_to_pem,
    public_key_bytes,
    public_key_from_bytes,
    sign_command,
)


def make_command(**changes: object) -> Command:
    base = enter_command("alpha", command_id="cmd-1", nonce="n-1")
    return replace(base, **changes)  # type: ignore[arg-type]


def test_signed_command_verifies_and_survives_the_wire() -> None:
    key = generate_private_key()
    signed = sign_command(make_command(), key)
    assert signed.signer == key_id(key)
    assert signed.signature_hash == hashlib.sha256(signed.signature).hexdigest()
    received = SignedCommand.from_wire(signed.to_wire())
    assert received == signed
    received.verify(key.public_key())


def test_any_change_to_the_command_breaks_the_signature() -> None:
    key = generate_private_key()
    signed = sign_command(make_command(), key)
    forged = SignedCommand(make_command(limit_price=Decimal("189.51")), signed.signer, signed.signature)
    with pytest.raises(SignatureInvalid):
        forged.verify(key.public_key())


def test_tampered_wire_json_fails_verification() -> None:
    key = generate_private_key()
    wire = json.loads(sign_command(make_command(), key).to_wire())
    wire["command"]["account"] = "DU999"
    with pytest.raises(SignatureInvalid):
        SignedCommand.from_wire(json.dumps(wire)).verify(key.public_key())


def test_other_key_is_refused_even_if_signer_is_copied() -> None:
    key, other = generate_private_key(), generate_private_key()
    signed = sign_command(make_command(), key)
    with pytest.raises(SignatureInvalid):
        signed.verify(other.public_key())
    relabelled = SignedCommand(signed.command, key_id(other), sign_command(make_command(), other).signature)
    with pytest.raises(SignatureInvalid):
        relabelled.verify(key.public_key())


def test_signature_is_over_canonical_bytes() -> None:
    key = generate_private_key()
    command = make_command()
    signed = sign_command(command, key)
    key.public_key().verify(signed.signature, canonical_bytes(command))


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda w: w.update(signature="00" * 63), "signature"),
        (lambda w: w.update(signature="ZZ" * 64), "signature"),
        (lambda w: w.update(signer="alpha"), "signer"),
        (lambda w: w.update(scheme="rsa"), "scheme"),
        (lambda w: w.update(extra=1), "extra"),
        (lambda w: w.pop("command"), "command"),
    ],
)
def test_malformed_envelope_names_the_field(mutate: object, field: str) -> None:
    wire = json.loads(sign_command(make_command(), generate_private_key()).to_wire())
    mutate(wire)  # type: ignore[operator]
    with pytest.raises(EnvelopeInvalid) as err:
        SignedCommand.from_wire(json.dumps(wire))
    assert err.value.field == field


def test_float_prices_on_the_wire_are_refused() -> None:
    wire = json.loads(sign_command(make_command(), generate_private_key()).to_wire())
    raw = json.dumps(wire).replace('"189.50"', "189.50")
    with pytest.raises(EnvelopeInvalid):
        SignedCommand.from_wire(raw)


def test_key_material_round_trips() -> None:
    key = generate_private_key()
    again = private_key_from_pem(private_key_to_pem(key))
    assert public_key_bytes(again) == public_key_bytes(key)
    assert key_id(public_key_from_bytes(public_key_bytes(key))) == key_id(key)
    assert len(key_id(key)) == 32
    with pytest.raises(KeyInvalid):
        public_key_from_bytes(b"short")
    with pytest.raises(KeyInvalid):
        private_key_from_pem(b"not a key")
