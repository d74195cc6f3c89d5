"""Keeps intake's copy of the key registry and the risk profiles current.

Postgres announces every change to either on the ``floor_registry`` channel when the change
commits (migration 0007); :class:`RegistryWatch` listens on a connection of its own and reloads
both at once, so a tightened limit or a revoked key applies to the next command. It also
reloads every ``refresh_s`` whatever it heard, because a notification sent while its connection
was down is lost. (A revoked key is refused by the ledger itself in any case: see migration
0006.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Protocol

import asyncpg

log = logging.getLogger(__name__)

CHANNEL = "floor_registry"
REFRESH_S = 30.0
"""The periodic reload behind the notifications."""
RECONNECT_S = 1.0


class Reloadable(Protocol):
    async def refresh_keys(self) -> None: ...

    async def refresh_profiles(self) -> None: ...


class RegistryWatch:
    def __init__(
        self,
        dsn: str,
        target: Reloadable,
        *,
        refresh_s: float = REFRESH_S,
        on_reload: Callable[[], None] | None = None,
    ) -> None:
        self._dsn = dsn
        self._target = target
        self._refresh_s = refresh_s
        self._on_reload = on_reload
        self._changed = asyncio.Event()

    async def run(self) -> None:
        """Until cancelled: listen, and reload on every announcement and every ``refresh_s``."""
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self._dsn)
                await conn.add_listener(CHANNEL, self._heard)
                # Wake up when the connection goes, to reconnect rather than wait out a period.
                conn.add_termination_listener(self._heard)
                # Changes made while nobody listened are picked up by this first reload.
                self._changed.set()
                await self._reload_loop(conn)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                log.exception("registry watch lost its connection; reconnecting in %.0f s", RECONNECT_S)
                await asyncio.sleep(RECONNECT_S)  # back off before reconnecting
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()

    async def _reload_loop(self, conn: asyncpg.Connection) -> None:
        while not conn.is_closed():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), self._refresh_s)
            self._changed.clear()
            try:
                await self._target.refresh_keys()
                await self._target.refresh_profiles()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                log.exception("key registry / risk profile reload failed; the previous copy stays")
                continue
            except Exception:
                # A bug in one reload must not end them all (keys and limits would then never
                # change again in this process): said loudly, tried again at the next one.
                log.exception("key registry / risk profile reload failed (a bug); the previous copy stays")
                continue
            if self._on_reload is not None:
                self._on_reload()

    def _heard(self, *_: Any) -> None:
        self._changed.set()
