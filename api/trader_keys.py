"""Each trader's Ed25519 signing key, ``<var>/keys/trader.<name>.key`` (made by
``floor traders add``), with which the API signs that trader's commands once the WebAuthn
checks passed. Read from disk on every use, so a key replaced by the operator is the one used
next (and a missing one is a named refusal, not a crash)."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from trading.commands import TRADER_AGENT_PREFIX
from trading.signing import KeyInvalid, private_key_from_pem


def trader_agent_id(trader: str) -> str:
    """The agent id a trader's commands are signed as."""
    return f"{TRADER_AGENT_PREFIX}{trader}"


class TraderKeys:
    def __init__(self, keys_dir: Path) -> None:
        self._dir = keys_dir

    def load(self, trader: str) -> Ed25519PrivateKey | None:
        """The trader's private key, or None when it has none (or the file is not a key)."""
        path = self._dir / f"{trader_agent_id(trader)}.key"
        try:
            return private_key_from_pem(path.read_bytes())
        except (FileNotFoundError, KeyInvalid):
            return None
