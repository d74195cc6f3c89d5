"""A software WebAuthn authenticator and the browser around it, for tests.

It answers the options JSON the server sends (``PublicKeyCredentialCreationOptions`` /
``RequestOptions`` in their ``toJSON()`` form) with the credential JSON a browser's
``PublicKeyCredential.toJSON()`` gives: a real ES256 key (``cryptography``), real authenticator
data, a real signature over ``authenticatorData || SHA-256(clientDataJSON)``. The knobs make it
misbehave the ways the server must refuse: another origin or rp id, ``crossOrigin: true``, no
user verification, a sign count that does not increase (a cloned authenticator) or stays zero
(a synced passkey), a broken signature.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import struct
from dataclasses import dataclass, field
from typing import Any, Literal

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

SignCount = Literal["increasing", "fixed", "zero"]

_UP = 0x01
_UV = 0x04
_BE = 0x08
_BS = 0x10
_AT = 0x40
_AAGUID = bytes(16)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class SoftCredential:
    credential_id: bytes
    rp_id: str
    user_handle: bytes
    key: ec.EllipticCurvePrivateKey
    count: int = 0


@dataclass
class SoftwareAuthenticator:
    origin: str = "http://localhost:8000"
    """The origin the "browser" puts in clientDataJSON."""
    rp_id: str | None = None
    """The rp id the authenticator signs for; None: the one the options name."""
    cross_origin: bool = False
    user_verified: bool = True
    sign_count: SignCount = "increasing"
    backup_eligible: bool = False
    credentials: list[SoftCredential] = field(default_factory=list)

    def create(self, options_json: str) -> str:
        """``navigator.credentials.create()``: a new credential for the options' user."""
        options = json.loads(options_json)
        rp_id = self.rp_id or options["rp"]["id"]
        credential = SoftCredential(
            credential_id=secrets.token_bytes(16),
            rp_id=rp_id,
            user_handle=unb64url(options["user"]["id"]),
            key=ec.generate_private_key(ec.SECP256R1()),
        )
        self.credentials.append(credential)
        numbers = credential.key.public_key().public_numbers()
        cose = cbor2.dumps(
            {1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")}
        )
        attested = (
            _AAGUID + struct.pack(">H", len(credential.credential_id)) + credential.credential_id + cose
        )
        auth_data = self._auth_data(rp_id, self._count(credential), _AT) + attested
        client_data = self._client_data("webauthn.create", options["challenge"])
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return json.dumps(
            {
                "id": b64url(credential.credential_id),
                "rawId": b64url(credential.credential_id),
                "type": "public-key",
                "response": {
                    "clientDataJSON": b64url(client_data),
                    "attestationObject": b64url(attestation),
                    "transports": ["internal"],
                },
                "clientExtensionResults": {},
                "authenticatorAttachment": "platform",
            }
        )

    def get(self, options_json: str, *, break_signature: bool = False) -> str:
        """``navigator.credentials.get()``: an assertion by the first credential the options
        allow (any for this rp id when they list none: a discoverable passkey)."""
        options = json.loads(options_json)
        rp_id = options.get("rpId")
        credential = self._pick(rp_id, [unb64url(c["id"]) for c in options.get("allowCredentials", [])])
        auth_data = self._auth_data(self.rp_id or credential.rp_id, self._count(credential), 0)
        client_data = self._client_data("webauthn.get", options["challenge"])
        signature = credential.key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        if break_signature:
            signature = signature[:-1] + bytes([signature[-1] ^ 0x01])
        return json.dumps(
            {
                "id": b64url(credential.credential_id),
                "rawId": b64url(credential.credential_id),
                "type": "public-key",
                "response": {
                    "clientDataJSON": b64url(client_data),
                    "authenticatorData": b64url(auth_data),
                    "signature": b64url(signature),
                    "userHandle": b64url(credential.user_handle),
                },
                "clientExtensionResults": {},
                "authenticatorAttachment": "platform",
            }
        )

    def _pick(self, rp_id: str | None, allowed: list[bytes]) -> SoftCredential:
        for credential in self.credentials:
            if (not allowed or credential.credential_id in allowed) and (
                rp_id is None or credential.rp_id == rp_id
            ):
                return credential
        raise LookupError("no credential of this authenticator matches the options")

    def _count(self, credential: SoftCredential) -> int:
        if self.sign_count == "increasing":
            credential.count += 1
        elif self.sign_count == "zero":
            credential.count = 0
        return credential.count

    def _auth_data(self, rp_id: str, count: int, extra_flags: int) -> bytes:
        flags = _UP | extra_flags
        if self.user_verified:
            flags |= _UV
        if self.backup_eligible:
            flags |= _BE | _BS
        return hashlib.sha256(rp_id.encode()).digest() + bytes([flags]) + struct.pack(">I", count)

    def _client_data(self, kind: str, challenge: str) -> bytes:
        doc: dict[str, Any] = {"type": kind, "challenge": challenge, "origin": self.origin}
        if self.cross_origin:
            doc["crossOrigin"] = True
        return json.dumps(doc, separators=(",", ":")).encode()
