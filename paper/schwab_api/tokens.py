"""OAuth tokens of the paper Schwab emulator, and the schwab-py token file that carries them.

Schwab issues an access token for 30 minutes and a refresh token for about seven days from the
first login; refreshing renews the access token only. The emulator's tokens are stateless:
each is its claims signed with a key derived from the app secret, so a token file written by
:func:`write_token_file` (no browser login) is accepted by any emulator with the same app
secret, across its restarts. What a test needs to change at run time (lifetimes, revoking
every refresh token, expiring every access token) lives in :class:`TokenPolicy`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ACCESS_TTL_S = 30 * 60
REFRESH_TTL_S = 7 * 24 * 3600


@dataclass
class TokenPolicy:
    """Lifetimes and revocations, changeable while the emulator runs (its control route)."""

    access_ttl_s: float = ACCESS_TTL_S
    refresh_ttl_s: float = REFRESH_TTL_S
    refresh_not_before: float = 0.0
    """Refresh tokens of logins before this time (epoch s) are revoked."""
    access_not_before: float = 0.0
    """Access tokens issued before this time are no longer accepted."""


class TokenIssuer:
    """Mints and checks the tokens of one app (key and secret)."""

    def __init__(self, app_key: str, app_secret: str, policy: TokenPolicy | None = None) -> None:
        self.app_key = app_key
        self.app_secret = app_secret
        self.policy = policy or TokenPolicy()
        self._key = hashlib.sha256(b"paper-schwab-token-key:" + app_secret.encode()).digest()

    def client_matches(self, app_key: str, app_secret: str) -> bool:
        return hmac.compare_digest(app_key.encode(), self.app_key.encode()) and hmac.compare_digest(
            app_secret.encode(), self.app_secret.encode()
        )

    # ---------------------------------------------------------------- minting

    def _sign(self, claims: dict[str, Any]) -> str:
        body = base64.urlsafe_b64encode(json.dumps(claims, separators=(",", ":")).encode()).rstrip(b"=")
        mac = base64.urlsafe_b64encode(hmac.digest(self._key, body, "sha256")).rstrip(b"=")
        return f"{body.decode()}.{mac.decode()}@"

    def _claims(self, token: str) -> dict[str, Any] | None:
        body, _, mac = token.rstrip("@").partition(".")
        expected = base64.urlsafe_b64encode(hmac.digest(self._key, body.encode(), "sha256")).rstrip(b"=")
        if not mac or not hmac.compare_digest(mac.encode(), expected):
            return None
        try:
            claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except ValueError:
            return None
        return claims if isinstance(claims, dict) else None

    def access_token(self, now: float, ttl_s: float | None = None) -> tuple[str, int]:
        """A new access token and its lifetime in whole seconds (``expires_in``)."""
        ttl = self.policy.access_ttl_s if ttl_s is None else ttl_s
        token = self._sign({"k": "a", "iat": now, "exp": now + ttl, "n": secrets.token_hex(6)})
        return token, int(ttl)

    def refresh_token(self, login_time: float) -> str:
        return self._sign({"k": "r", "login": login_time, "n": secrets.token_hex(6)})

    def token_body(self, now: float, refresh_token: str) -> dict[str, Any]:
        """The token endpoint's answer: Schwab's fields, the refresh token kept as it was."""
        access, expires_in = self.access_token(now)
        return {
            "expires_in": expires_in,
            "token_type": "Bearer",
            "scope": "api",
            "refresh_token": refresh_token,
            "access_token": access,
            "id_token": self._sign({"k": "i", "iat": now}),
        }

    # ---------------------------------------------------------------- checking

    def access_valid(self, token: str, now: float) -> bool:
        claims = self._claims(token)
        return (
            claims is not None
            and claims.get("k") == "a"
            and float(claims.get("exp", 0)) > now
            and float(claims.get("iat", 0)) >= self.policy.access_not_before
        )

    def refresh_valid(self, token: str, now: float) -> bool:
        """Known, not revoked, and younger than the refresh lifetime (counted from the login:
        a refresh does not extend it)."""
        claims = self._claims(token)
        if claims is None or claims.get("k") != "r":
            return False
        login = float(claims.get("login", 0))
        return login >= self.policy.refresh_not_before and now - login < self.policy.refresh_ttl_s


def token_file_body(
    issuer: TokenIssuer, *, now: float | None = None, login_time: float | None = None,
    access_ttl_s: float | None = None,
) -> dict[str, Any]:  # fmt: skip
    """What schwab-py keeps in its token file after a login at ``login_time`` (default now):
    ``creation_timestamp`` (the seven-day clock) around the OAuth token with ``expires_at``."""
    now = time.time() if now is None else now
    login = now if login_time is None else login_time
    token = issuer.token_body(now, issuer.refresh_token(login))
    if access_ttl_s is not None:
        token["access_token"], token["expires_in"] = issuer.access_token(now, access_ttl_s)
    token["expires_at"] = int(now + token["expires_in"])
    return {"creation_timestamp": int(login), "token": token}


def write_token_file(
    path: Path, app_key: str, app_secret: str, *, now: float | None = None,
    login_time: float | None = None, access_ttl_s: float | None = None,
) -> Path:  # fmt: skip
    """Write a schwab-py token file the emulator with this app key and secret accepts, as if a
    person had logged in at ``login_time``: what ``floor up`` and the tests hand the adapter
    instead of a browser login. ``access_ttl_s`` <= 0 writes an already expired access token
    (the client refreshes it before its first request). Written privately (0600) and renamed
    into place, so a reader never sees half a file."""
    body = token_file_body(
        TokenIssuer(app_key, app_secret), now=now, login_time=login_time, access_ttl_s=access_ttl_s
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(body, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    return path
