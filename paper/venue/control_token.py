"""The control API's bearer token: a secret file only the venue's owner can read.

The control port moves prices, kills gateways and closes the session, so it answers only a
caller who can read this file (``Authorization: Bearer <token>``). The venue makes the file at
its first start (0600 from creation, never rewritten) and refuses to start on one that others
may read; ``floor paper``, the tests and the benches read the same file.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
import stat
from pathlib import Path

SCHEME = "Bearer"


class TokenFileError(RuntimeError):
    """The token file is missing, empty or readable by others."""


def ensure_token(path: Path) -> str:
    """The token in ``path``, made on first use; raises :class:`TokenFileError` if others may
    read it (a secret everyone can read guards nothing)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Written under a private name and linked into place: a second venue starting at the
        # same moment either wins the link or reads a complete file, never a half-written one.
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(32) + "\n")
                f.flush()
                os.fsync(f.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise TokenFileError(f"{path} is readable by others (mode {mode:o}): chmod 600 {path}")
    return read_token(path)


def read_token(path: Path) -> str:
    """The token a client sends; raises :class:`TokenFileError` if the file is absent or empty."""
    try:
        token = path.read_text().strip()
    except FileNotFoundError as exc:
        raise TokenFileError(f"no control token at {path}: start the paper venue first") from exc
    if not token:
        raise TokenFileError(f"the control token file {path} is empty")
    return token


def authorization(token: str) -> dict[str, str]:
    """The header a control request carries."""
    return {"Authorization": f"{SCHEME} {token}"}


def matches(header: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header value carries ``token`` (compared in constant time)."""
    if header is None:
        return False
    scheme, _, presented = header.strip().partition(" ")
    if scheme.lower() != SCHEME.lower():
        return False
    return hmac.compare_digest(presented.strip().encode(), token.encode())
