"""The checks of a WebAuthn response, each mapped to its named refusal.

py_webauthn verifies a response but names every failure the same way (one exception type, a
message meant for logs), does not enforce ``crossOrigin`` and checks user verification only when
told. So the checks that have a name of their own run here first, in the order a browser would
fail them, and py_webauthn's own verification runs last with ``require_user_verification=True``
as the final word.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from webauthn import verify_authentication_response, verify_registration_response
from webauthn.helpers import (
    decode_credential_public_key,
    decoded_public_key_to_cryptography,
    parse_attestation_object,
    parse_authentication_credential_json,
    parse_authenticator_data,
    parse_client_data_json,
    parse_registration_credential_json,
    verify_signature,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticationCredential,
    AuthenticatorData,
    CredentialDeviceType,
    RegistrationCredential,
)

from api import webauthn_results as r
from api.webauthn_results import Refusal

CREATE = "webauthn.create"
GET = "webauthn.get"


@dataclass(frozen=True)
class Expected:
    challenge: bytes
    rp_id: str
    origin: str


@dataclass(frozen=True)
class VerifiedRegistration:
    credential_id: bytes
    public_key: bytes
    sign_count: int
    transports: list[str]
    backup_eligible: bool
    backed_up: bool


@dataclass(frozen=True)
class VerifiedAssertion:
    credential_id: bytes
    sign_count: int
    backup_eligible: bool
    backed_up: bool
    authenticator_data_sha256: str
    client_data_sha256: str


def parse_registration(credential_json: str) -> RegistrationCredential | Refusal:
    try:
        return parse_registration_credential_json(credential_json)
    except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
        return Refusal(r.MALFORMED, f"not a registration credential in toJSON() form: {exc}")


def parse_assertion(credential_json: str) -> AuthenticationCredential | Refusal:
    try:
        return parse_authentication_credential_json(credential_json)
    except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
        return Refusal(r.MALFORMED, f"not an authentication credential in toJSON() form: {exc}")


def _client_data(raw: bytes, kind: str, expected: Expected) -> Refusal | None:
    try:
        client = parse_client_data_json(raw)
    except (WebAuthnException, ValueError, TypeError) as exc:
        return Refusal(r.MALFORMED, f"clientDataJSON does not parse: {exc}")
    if client.type != kind:
        return Refusal(r.MALFORMED, f"clientDataJSON type is {client.type!r}, this ceremony needs {kind!r}")
    if client.challenge != expected.challenge:
        return Refusal(
            r.CHALLENGE_UNKNOWN,
            "the response answers another challenge (a replayed or mixed-up response); begin again",
        )
    if client.origin != expected.origin:
        return Refusal(
            r.ORIGIN_MISMATCH,
            f"the ceremony ran on {client.origin!r}; the floor accepts only {expected.origin!r}:"
            " open that address",
        )
    if client.cross_origin:
        return Refusal(
            r.CROSS_ORIGIN, "the ceremony ran in a frame of another site; open the floor's page itself"
        )
    return None


def _authenticator_data(data: AuthenticatorData, expected: Expected) -> Refusal | None:
    if data.rp_id_hash != hashlib.sha256(expected.rp_id.encode()).digest():
        return Refusal(
            r.RP_ID_MISMATCH,
            f"the passkey answered for another site than {expected.rp_id!r}; use this floor's passkey",
        )
    if not data.flags.up or not data.flags.uv:
        return Refusal(
            r.USER_NOT_VERIFIED,
            "the authenticator did not verify you (fingerprint, face or PIN);"
            " use one that can, with verification on",
        )
    return None


def check_registration(
    credential: RegistrationCredential, expected: Expected
) -> VerifiedRegistration | Refusal:
    refusal = _client_data(credential.response.client_data_json, CREATE, expected)
    if refusal is not None:
        return refusal
    try:
        auth_data = parse_attestation_object(credential.response.attestation_object).auth_data
    except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
        return Refusal(r.MALFORMED, f"attestationObject does not parse: {exc}")
    refusal = _authenticator_data(auth_data, expected)
    if refusal is not None:
        return refusal
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=expected.challenge,
            expected_rp_id=expected.rp_id,
            expected_origin=expected.origin,
            require_user_verification=True,
        )
    except WebAuthnException as exc:
        return Refusal(r.MALFORMED, f"the registration does not verify: {exc}")
    if not verified.user_verified:
        return Refusal(r.USER_NOT_VERIFIED, "the authenticator did not verify you")
    return VerifiedRegistration(
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=[t.value for t in credential.response.transports or []],
        backup_eligible=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
        backed_up=verified.credential_backed_up,
    )


@dataclass(frozen=True)
class CountReplayed:
    """The signature is good but the count did not increase: a cloned authenticator or a replay."""

    stored: int
    presented: int


def check_assertion(
    credential: AuthenticationCredential, expected: Expected, public_key: bytes, stored_count: int
) -> VerifiedAssertion | CountReplayed | Refusal:
    """Everything but the stored count's update (the caller's compare-and-swap)."""
    response = credential.response
    refusal = _client_data(response.client_data_json, GET, expected)
    if refusal is not None:
        return refusal
    try:
        auth_data = parse_authenticator_data(response.authenticator_data)
    except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
        return Refusal(r.MALFORMED, f"authenticatorData does not parse: {exc}")
    refusal = _authenticator_data(auth_data, expected)
    if refusal is not None:
        return refusal
    # The signature before the count: only a genuine assertion's count says anything.
    signed = response.authenticator_data + hashlib.sha256(response.client_data_json).digest()
    try:
        decoded = decode_credential_public_key(public_key)
        verify_signature(
            public_key=decoded_public_key_to_cryptography(decoded),
            signature_alg=decoded.alg,
            signature=response.signature,
            data=signed,
        )
    except (InvalidSignature, WebAuthnException, ValueError, TypeError):
        return Refusal(
            r.BAD_SIGNATURE, "the assertion's signature does not verify with this passkey's public key"
        )
    if (auth_data.sign_count > 0 or stored_count > 0) and auth_data.sign_count <= stored_count:
        return CountReplayed(stored_count, auth_data.sign_count)
    try:
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=expected.challenge,
            expected_rp_id=expected.rp_id,
            expected_origin=expected.origin,
            credential_public_key=public_key,
            credential_current_sign_count=stored_count,
            require_user_verification=True,
        )
    except WebAuthnException as exc:
        return Refusal(r.BAD_SIGNATURE, f"the assertion does not verify: {exc}")
    if not verified.user_verified:
        return Refusal(r.USER_NOT_VERIFIED, "the authenticator did not verify you")
    return VerifiedAssertion(
        credential_id=verified.credential_id,
        sign_count=verified.new_sign_count,
        backup_eligible=auth_data.flags.be,
        backed_up=verified.credential_backed_up,
        authenticator_data_sha256=hashlib.sha256(response.authenticator_data).hexdigest(),
        client_data_sha256=hashlib.sha256(response.client_data_json).hexdigest(),
    )
