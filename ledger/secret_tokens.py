"""Bearer secrets (enrolment tokens, session cookies, API tokens): random, handed out once, and
stored only as their SHA-256, so a copy of the database lets nobody present one."""

from __future__ import annotations

import hashlib
import secrets


def new_secret() -> str:
    """32 random bytes, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


def secret_hash(secret: str) -> bytes:
    """What the database keeps of ``secret`` and looks it up by."""
    return hashlib.sha256(secret.encode()).digest()
