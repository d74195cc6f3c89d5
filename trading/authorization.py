"""What authorised a trader's command: the WebAuthn assertion behind it, by its hashes.

A trader's commands are signed by the API with the trader's own key (agent
``trader.<name>``, :func:`trader_agent_id`) only after the trader's WebAuthn checks passed, and
carry what the assertion was in their ``authorization`` (:class:`Authorization`), so the ledger
entry records who authorised each (:mod:`trading.commands` for the command it rides in,
:mod:`trading.sentry` for who may carry one).
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
from dataclasses import dataclass
from typing import Any

from trading.field_invalid import FieldInvalid

TRADER_AGENT_PREFIX = "trader."
"""A trader's signing key belongs to agent ``trader.<name>``."""

_TRADER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_SHA256_HEX_RE = re.compile(r"[0-9a-f]{64}")
# WebAuthn credential ids are 1 to 1023 bytes: 2 to 1364 base64url characters, unpadded.
_CREDENTIAL_ID_RE = re.compile(r"[A-Za-z0-9_-]{2,1364}")
MAX_SIGN_COUNT = 2**32 - 1
"""A WebAuthn signature counter is an unsigned 32-bit integer."""


def trader_agent_id(trader: str) -> str:
    """The agent id a trader's commands are signed as."""
    return f"{TRADER_AGENT_PREFIX}{trader}"


class AuthorizationInvalid(FieldInvalid):
    """An ``authorization`` that does not satisfy the schema; ``field`` names the offending key
    (``authorization.<key>``). The command decoder reports it as a
    :class:`~trading.commands.CommandInvalid` of the same field."""


class Ceremony(enum.StrEnum):
    """Which WebAuthn ceremony produced a command's :class:`Authorization`."""

    ARMING = "arming"
    """The session's arming grant: one assertion for every order within the trader's limits."""
    STEP_UP = "step_up"
    """An assertion over this very order (its challenge derived from the order's hash)."""
    SESSION = "session"
    """The sign-in assertion that opened the trader's web session: it authorises only taking
    risk off (cancels and the breaker's trip, :data:`trading.sentry.SIGN_IN_KINDS`), which must
    never wait for arming."""


@dataclass(frozen=True)
class Authorization:
    """What authorised a trader's command: the WebAuthn assertion behind it, by its hashes.

    JSON (the ``authorization`` key)::

        {"trader": "alice", "credential_id": "<base64url, no padding>", "sign_count": 7,
         "authenticator_data_sha256": "<64 hex>", "client_data_sha256": "<64 hex>",
         "ceremony": "arming" | "step_up" | "session", "order_hash": "<64 hex>"}

    ``order_hash`` is present exactly when ``ceremony`` is ``step_up``. Hex is lower case; the
    credential id is canonical unpadded base64url (it decodes to 1-1023 bytes and encodes back
    to itself), so one credential has one spelling in the ledger.
    """

    trader: str
    """The trader's name; its key's agent id is ``trader.<name>``."""
    credential_id: str
    sign_count: int
    authenticator_data_sha256: str
    client_data_sha256: str
    ceremony: Ceremony
    order_hash: str | None = None
    """SHA-256 (hex) of the canonical order a step-up assertion authorised."""

    def __post_init__(self) -> None:
        check_authorization(self.to_json_dict())
        if not isinstance(self.ceremony, Ceremony):
            object.__setattr__(self, "ceremony", Ceremony(self.ceremony))

    def to_json_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "trader": self.trader,
            "credential_id": self.credential_id,
            "sign_count": self.sign_count,
            "authenticator_data_sha256": self.authenticator_data_sha256,
            "client_data_sha256": self.client_data_sha256,
            "ceremony": self.ceremony.value if isinstance(self.ceremony, Ceremony) else self.ceremony,
        }
        if self.order_hash is not None:
            out["order_hash"] = self.order_hash
        return out

    @classmethod
    def from_json_dict(cls, data: Any) -> Authorization:
        """Decode and validate; raises :class:`AuthorizationInvalid` naming ``authorization.<key>``."""
        check_authorization(data)
        return cls.from_checked(data)

    @classmethod
    def from_checked(cls, data: dict[str, Any]) -> Authorization:
        """Build from JSON :func:`check_authorization` accepted (a command's decoder checks it
        with the rest), without validating again."""
        authorization = object.__new__(cls)
        for name, value in (
            ("trader", data["trader"]),
            ("credential_id", data["credential_id"]),
            ("sign_count", data["sign_count"]),
            ("authenticator_data_sha256", data["authenticator_data_sha256"]),
            ("client_data_sha256", data["client_data_sha256"]),
            ("ceremony", Ceremony(data["ceremony"])),
            ("order_hash", data.get("order_hash")),
        ):
            object.__setattr__(authorization, name, value)
        return authorization

    def describe(self) -> str:
        """One line for people: ``authorised by trader alice, passkey AbCdEfGhIjKl, sign count
        7, step-up`` (the credential id cut to its first 12 characters; the ceremony is
        ``arming``, ``step-up`` or ``sign-in``)."""
        return (
            f"authorised by trader {self.trader}, passkey {self.credential_id[:12]},"
            f" sign count {self.sign_count}, {_CEREMONY_NAMES[self.ceremony]}"
        )


_CEREMONY_NAMES = {Ceremony.ARMING: "arming", Ceremony.STEP_UP: "step-up", Ceremony.SESSION: "sign-in"}


def check_authorization(data: Any) -> None:
    """Validate the JSON of an ``authorization``; raises :class:`AuthorizationInvalid` naming
    ``authorization.<key>``."""
    if not isinstance(data, dict):
        raise AuthorizationInvalid("authorization", "must be an object")
    keys = {
        "trader",
        "credential_id",
        "sign_count",
        "authenticator_data_sha256",
        "client_data_sha256",
        "ceremony",
    }
    for key in data:
        if key not in keys and key != "order_hash":
            raise AuthorizationInvalid(f"authorization.{key}", "not allowed in authorization")
    for key in sorted(keys):
        if data.get(key) is None:
            raise AuthorizationInvalid(f"authorization.{key}", "required")
    trader = data["trader"]
    if not isinstance(trader, str) or _TRADER_RE.fullmatch(trader) is None:
        raise AuthorizationInvalid(
            "authorization.trader", f"must be 1-64 characters of A-Z a-z 0-9 . _ -, got {trader!r}"
        )
    if not _is_canonical_base64url(data["credential_id"]):
        raise AuthorizationInvalid(
            "authorization.credential_id",
            f"must be unpadded base64url of 1-1023 bytes, got {data['credential_id']!r}",
        )
    count = data["sign_count"]
    if type(count) is not int or not 0 <= count <= MAX_SIGN_COUNT:
        raise AuthorizationInvalid(
            "authorization.sign_count", f"must be an integer in [0, {MAX_SIGN_COUNT}], got {count!r}"
        )
    for key in ("authenticator_data_sha256", "client_data_sha256", "order_hash"):
        value = data.get(key)
        if value is not None and (not isinstance(value, str) or _SHA256_HEX_RE.fullmatch(value) is None):
            raise AuthorizationInvalid(
                f"authorization.{key}", f"must be 64 lower-case hex digits, got {value!r}"
            )
    ceremony = data["ceremony"]
    if not isinstance(ceremony, str) or ceremony not in {c.value for c in Ceremony}:
        raise AuthorizationInvalid(
            "authorization.ceremony", f"must be one of {sorted(c.value for c in Ceremony)}"
        )
    if ("order_hash" in data) != (ceremony == Ceremony.STEP_UP.value):
        raise AuthorizationInvalid("authorization.order_hash", "present exactly when the ceremony is step_up")


def _is_canonical_base64url(value: Any) -> bool:
    """Unpadded base64url that decodes and encodes back to itself (no stray trailing bits)."""
    if not isinstance(value, str) or _CREDENTIAL_ID_RE.fullmatch(value) is None or len(value) % 4 == 1:
        return False
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return False
    return 1 <= len(raw) <= 1023 and base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == value
