"""Each trader's Ed25519 signing key, with which the API signs that trader's commands once the
WebAuthn checks passed: ``<var>/keys/traders/trader.<name>.key``
(:attr:`config.settings.FloorSettings.trader_keys_dir`, made by ``floor traders add``).

The API process reads only that folder: the operator's, the breaker's and the hot path's keys
in ``<var>/keys`` are never opened by it. A key is read from disk in a worker thread (never on
the event loop) the first time it signs, then kept; a trader with no key kept is looked for
again on each command (a key made after start is found), and :meth:`TraderKeys.forget` drops
one the floor no longer accepts (revoked or replaced), so the next command reads it afresh.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from trading.authorization import trader_agent_id
from trading.signing import KeyInvalid, private_key_from_pem


class TraderKeys:
    def __init__(self, trader_keys_dir: Path) -> None:
        self._dir = trader_keys_dir
        self._keys: dict[str, Ed25519PrivateKey] = {}

    async def load(self, trader: str) -> Ed25519PrivateKey | None:
        """The trader's private key, or None when it has none (or the file is not a key)."""
        key = self._keys.get(trader)
        if key is None:
            key = await asyncio.to_thread(self._read, trader)
            if key is not None:
                self._keys[trader] = key
        return key

    def forget(self, trader: str) -> None:
        """Drop the kept key: the next :meth:`load` reads the file again."""
        self._keys.pop(trader, None)

    def _read(self, trader: str) -> Ed25519PrivateKey | None:
        path = self._dir / f"{trader_agent_id(trader)}.key"
        try:
            return private_key_from_pem(path.read_bytes())
        except (FileNotFoundError, KeyInvalid):
            return None
