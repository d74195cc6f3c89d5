"""What the WebAuthn ceremonies answer (:mod:`api.webauthn_ceremonies`): a challenge to give the
browser, the proof of a verified assertion, an arming grant, or a named :class:`Refusal`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

MALFORMED = "webauthn.malformed"
UNKNOWN_CREDENTIAL = "webauthn.unknown_credential"
CHALLENGE_UNKNOWN = "webauthn.challenge_unknown"
"""No such challenge for this ceremony and session, already answered, or the assertion answers
another challenge (a replayed assertion)."""
CHALLENGE_EXPIRED = "webauthn.challenge_expired"
ORIGIN_MISMATCH = "webauthn.origin_mismatch"
RP_ID_MISMATCH = "webauthn.rp_id_mismatch"
CROSS_ORIGIN = "webauthn.cross_origin"
USER_NOT_VERIFIED = "webauthn.user_not_verified"
BAD_SIGNATURE = "webauthn.bad_signature"
SIGN_COUNT_REPLAYED = "webauthn.sign_count_replayed"
WRONG_ORDER = "webauthn.wrong_order"
ENROLMENT_INVALID = "webauthn.enrolment_invalid"
CREDENTIAL_REVOKED = "webauthn.credential_revoked"
"""The operator revoked this passkey (``floor traders revoke-passkey``, or the trader disabled)."""
TRADER_DISABLED = "webauthn.trader_disabled"
TOO_MANY_CHALLENGES = "webauthn.too_many_challenges"
"""Too many sign-ins begun and not answered: a new one waits until some expire."""
PASSKEY_NOT_CONFIRMED = "auth.passkey_not_confirmed"
"""A passkey addition that no existing passkey of the trader confirmed (or whose confirmation
ran out, was used, or whose confirming passkey was revoked meanwhile)."""

BREACHES = frozenset({BAD_SIGNATURE, SIGN_COUNT_REPLAYED})
"""Refusals that mean someone forged an assertion or holds a copy of an authenticator: each is
recorded as a ``Critical Security Breach``; the rest as a ``Security Refusal``."""


@dataclass(frozen=True)
class Refusal:
    reason: str
    """One of the ``webauthn.*`` names above."""
    detail: str
    """What went wrong and what to do next, for the trader."""


@dataclass(frozen=True)
class Challenge:
    challenge_id: str
    options_json: str
    """``PublicKeyCredentialCreationOptions`` / ``RequestOptions`` as JSON (``toJSON()`` shape,
    binary values base64url): what the page passes to ``PublicKeyCredential.parse*OptionsFromJSON``."""
    expires_at: datetime


@dataclass(frozen=True)
class AssertionProof:
    """A verified assertion: what a signed command's ``authorization`` records of it."""

    trader: str
    credential_id: str
    """base64url, no padding."""
    sign_count: int
    authenticator_data_sha256: str
    client_data_sha256: str
    synced: bool
    """A synced (multi-device) passkey, or one that keeps no sign count: a copy of it cannot be
    told from the original."""


@dataclass(frozen=True)
class GrantLimits:
    """What a trader allows itself while armed; None = no limit of that kind."""

    symbols: frozenset[str] | None
    max_quantity: int | None
    max_notional: Decimal | None


@dataclass(frozen=True)
class ArmingGrant:
    grant_id: str
    trader: str
    session_id: str
    limits: GrantLimits
    expires_at: datetime
    proof: AssertionProof


@dataclass(frozen=True)
class AuthenticatorInfo:
    credential_id: str
    """base64url, no padding."""
    created_at: datetime
    last_used_at: datetime | None
    sign_count: int
    transports: tuple[str, ...]
    backup_eligible: bool
    backed_up: bool

    @property
    def synced(self) -> bool:
        """Synced passkey (backup-eligible, or keeping no sign count) vs device-bound."""
        return self.backup_eligible or self.sign_count == 0
