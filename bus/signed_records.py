"""Signing records on the way out and verifying them on the way in (:mod:`trading.record_signing`).

A writer wraps its producer in :class:`SigningProducer`, which signs every record for a topic
in :data:`~trading.record_signing.RECORD_WRITERS` with the process's key and passes the rest
(``security.events``, commands) through untouched. A consumer checks each
record with :class:`RecordVerifier` before acting on it.

The verifier keeps a copy of the key registry. It reloads it when a record names a key it has
not seen (a writer's key made after the copy was taken), at most once per ``min_reload_s``, and
every ``refresh_s`` whatever happens, so a revoked writer key stops verifying within that.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from trading.record_signing import (
    RECORD_WRITERS,
    UNKNOWN_KEY,
    RecordRefused,
    WriterKey,
    sign_record,
    verify_record,
)

REFRESH_S = 30.0
MIN_RELOAD_S = 1.0

KeyLoader = Callable[[], Awaitable[Mapping[str, WriterKey]]]


class SigningProducer:
    """A producer whose records on signed topics carry this process's proof."""

    def __init__(self, inner: Any, private_key: Ed25519PrivateKey) -> None:
        self._inner = inner
        self._key = private_key

    def _value(self, topic: str, value: bytes | None) -> bytes | None:
        if value is None or topic not in RECORD_WRITERS:
            return value
        return sign_record(topic, value, self._key)

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Any:
        # Headers (a trace context) are not signed: nothing the floor decides reads them.
        if headers:
            return await self._inner.send(topic, self._value(topic, value), key=key, headers=headers)
        return await self._inner.send(topic, self._value(topic, value), key=key)

    async def send_and_wait(self, topic: str, value: bytes | None = None, key: bytes | None = None) -> Any:
        return await self._inner.send_and_wait(topic, self._value(topic, value), key=key)

    def __getattr__(self, name: str) -> Any:
        # start, stop, flush ...: the wrapped producer's own.
        return getattr(self._inner, name)


class RecordVerifier:
    def __init__(
        self, load_keys: KeyLoader, *, refresh_s: float = REFRESH_S, min_reload_s: float = MIN_RELOAD_S
    ) -> None:
        self._load = load_keys
        self._refresh_s = refresh_s
        self._min_reload_s = min_reload_s
        self._keys: Mapping[str, WriterKey] = {}
        self._loaded_at: float | None = None

    @property
    def keys(self) -> Mapping[str, WriterKey]:
        return self._keys

    async def reload(self) -> None:
        self._keys = await self._load()
        self._loaded_at = time.monotonic()

    async def verify(self, topic: str, raw: bytes) -> dict[str, Any]:
        """The record as a dict if a writer of ``topic`` signed it; else :class:`RecordRefused`."""
        now = time.monotonic()
        if self._loaded_at is None or now - self._loaded_at >= self._refresh_s:
            await self.reload()
        try:
            return verify_record(topic, raw, self._keys)
        except RecordRefused as exc:
            assert self._loaded_at is not None
            if exc.reason != UNKNOWN_KEY or time.monotonic() - self._loaded_at < self._min_reload_s:
                raise
        await self.reload()
        return verify_record(topic, raw, self._keys)
