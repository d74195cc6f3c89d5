"""Ed25519 signatures over canonical command bytes, and the signed envelope on the wire.

A signature covers :func:`trading.commands.canonical_bytes` of the command and nothing else.
The envelope names the signing key by its :func:`key_id` (a fingerprint of the public key), so
a verifier picks exactly one registered key and a rotated or revoked key can still be told
apart from its successor when an old ledger entry is re-checked.

Wire form of :class:`SignedCommand` (UTF-8 JSON object, unknown keys refused)::

    {"command": {...}, "signer": "<key id>", "scheme": "ed25519", "signature": "<128 hex>"}

``signature_hash`` is the lowercase hex SHA-256 of the raw 64 signature bytes; it is what
replay checks and the ledger index on.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from trading.commands import Command, CommandInvalid, canonical_bytes

SCHEME_ED25519 = "ed25519"
SIGNATURE_BYTES = 64
PUBLIC_KEY_BYTES = 32
_KEY_ID_RE = re.compile(r"[0-9a-f]{32}")
_SIGNATURE_RE = re.compile(r"[0-9a-f]{128}")


class SigningError(ValueError):
    """Base of every named signing failure."""


class SignatureInvalid(SigningError):
    """The signature does not verify over the canonical bytes with the given key."""


class EnvelopeInvalid(SigningError):
    """A signed envelope that is not well formed; ``field`` names the offending key."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class KeyInvalid(SigningError):
    """Key material that is not an Ed25519 key of the expected form."""


def generate_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def public_key_bytes(key: Ed25519PublicKey | Ed25519PrivateKey) -> bytes:
    """The raw 32-byte public key (what the key registry stores)."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_from_bytes(raw: bytes) -> Ed25519PublicKey:
    if len(raw) != PUBLIC_KEY_BYTES:
        raise KeyInvalid(f"an Ed25519 public key is {PUBLIC_KEY_BYTES} bytes, got {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def key_id(key: Ed25519PublicKey | Ed25519PrivateKey | bytes) -> str:
    """Fingerprint naming a key: the first 32 hex digits (128 bits) of SHA-256(raw public key)."""
    raw = key if isinstance(key, bytes) else public_key_bytes(key)
    return hashlib.sha256(raw).hexdigest()[:32]


def private_key_to_pem(key: Ed25519PrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM; the file that holds it must be readable by its owner only."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def private_key_from_pem(pem: bytes) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyInvalid(f"not a PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyInvalid(f"expected an Ed25519 key, got {type(key).__name__}")
    return key


def signature_hash(signature: bytes) -> str:
    """Lowercase hex SHA-256 of the raw signature bytes."""
    return hashlib.sha256(signature).hexdigest()


def sign_bytes(private_key: Ed25519PrivateKey, message: bytes) -> bytes:
    return private_key.sign(message)


def verify_bytes(public_key: Ed25519PublicKey, message: bytes, signature: bytes) -> None:
    """Raise :class:`SignatureInvalid` unless ``signature`` is valid for ``message``."""
    try:
        public_key.verify(signature, message)
    except InvalidSignature:
        raise SignatureInvalid("signature does not verify") from None


@dataclass(frozen=True)
class SignedCommand:
    command: Command
    signer: str
    """:func:`key_id` of the signing key."""
    signature: bytes
    scheme: str = SCHEME_ED25519

    def __post_init__(self) -> None:
        if self.scheme != SCHEME_ED25519:
            raise EnvelopeInvalid("scheme", f"unsupported scheme {self.scheme!r}")
        if not isinstance(self.signer, str) or _KEY_ID_RE.fullmatch(self.signer) is None:
            raise EnvelopeInvalid("signer", "must be a key id (32 lowercase hex digits)")
        if not isinstance(self.signature, bytes) or len(self.signature) != SIGNATURE_BYTES:
            raise EnvelopeInvalid("signature", f"must be {SIGNATURE_BYTES} bytes")

    @cached_property
    def canonical(self) -> bytes:
        """The signed bytes (computed once per envelope)."""
        return canonical_bytes(self.command)

    @cached_property
    def signature_hash(self) -> str:
        return signature_hash(self.signature)

    def verify(self, public_key: Ed25519PublicKey) -> None:
        """Raise :class:`SignatureInvalid` unless this was signed by ``public_key``.

        Also refuses a key whose fingerprint differs from ``signer``: a valid signature by some
        other registered key is still the wrong signer.
        """
        if key_id(public_key) != self.signer:
            raise SignatureInvalid("key does not match the envelope's signer")
        verify_bytes(public_key, self.canonical, self.signature)

    def to_wire_dict(self) -> dict[str, Any]:
        return {
            "command": self.command.to_json_dict(),
            "signer": self.signer,
            "scheme": self.scheme,
            "signature": self.signature.hex(),
        }

    def to_wire(self) -> bytes:
        return json.dumps(self.to_wire_dict(), separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def from_wire(cls, raw: bytes | str) -> SignedCommand:
        """Decode an envelope; raises :class:`EnvelopeInvalid` or :class:`CommandInvalid`.

        Nothing is verified here: call :meth:`verify` with the registered key.
        """
        try:
            data = json.loads(raw, parse_float=_refuse_float)
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as exc:
            raise EnvelopeInvalid("envelope", f"not JSON: {exc}") from None
        return cls.from_wire_dict(data)

    @classmethod
    def from_wire_dict(cls, data: Any) -> SignedCommand:
        if not isinstance(data, dict):
            raise EnvelopeInvalid("envelope", "must be a JSON object")
        for key in data:
            if key not in ("command", "signer", "scheme", "signature"):
                raise EnvelopeInvalid(str(key), "not allowed in a signed envelope")
        signature_hex = data.get("signature")
        if not isinstance(signature_hex, str) or _SIGNATURE_RE.fullmatch(signature_hex) is None:
            raise EnvelopeInvalid("signature", "must be 128 lowercase hex digits")
        if "command" not in data:
            raise EnvelopeInvalid("command", "required")
        return cls(
            command=Command.from_json_dict(data["command"]),
            signer=data.get("signer"),  # type: ignore[arg-type]  # checked in __post_init__
            signature=bytes.fromhex(signature_hex),
            scheme=data.get("scheme", SCHEME_ED25519),
        )


def sign_command(command: Command, private_key: Ed25519PrivateKey) -> SignedCommand:
    """Sign the command's canonical bytes; the envelope names the key by :func:`key_id`."""
    return SignedCommand(
        command=command,
        signer=key_id(private_key),
        signature=sign_bytes(private_key, canonical_bytes(command)),
    )


def _refuse_float(text: str) -> Any:
    # A binary float never enters the floor; prices are decimal strings.
    raise CommandInvalid("command", f"JSON numbers with fractions are not allowed: {text}")


__all__ = [
    "CommandInvalid",
    "EnvelopeInvalid",
    "KeyInvalid",
    "SignatureInvalid",
    "SignedCommand",
    "SigningError",
    "generate_private_key",
    "key_id",
    "private_key_from_pem",
    "private_key_to_pem",
    "public_key_bytes",
    "public_key_from_bytes",
    "sign_bytes",
    "sign_command",
    "signature_hash",
    "verify_bytes",
]
