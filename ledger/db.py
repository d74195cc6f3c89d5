"""What the ledger modules need from a database handle: an asyncpg ``Connection`` or ``Pool``,
or a :class:`DedicatedConnection` for a latency-critical writer."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol

import asyncpg

UNREACHABLE: tuple[type[Exception], ...] = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
)
"""What asyncpg raises when the database cannot be reached or went away mid-call (refused or
lost connections, a server shutting down or not yet accepting): worth retrying, unlike a
query the database refused."""


class Db(Protocol):
    async def execute(self, query: str, *args: Any) -> str: ...

    async def fetch(self, query: str, *args: Any) -> list[Any]: ...

    async def fetchrow(self, query: str, *args: Any) -> Any: ...

    async def fetchval(self, query: str, *args: Any, column: int = 0) -> Any: ...


async def keep_session(conn: asyncpg.Connection) -> None:
    """A pool's ``reset``: give a connection back as it is, without the reset query.

    asyncpg resets a released connection with ``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
    RESET ALL``, a round trip after every pooled query (6% of the hot path's CPU under a burst,
    where each order event's state row is one such query). It still rolls back a transaction
    left open and drops listeners (``Connection._reset``, always run first). For pools whose
    users leave no session state behind: no session ``SET`` (only ``SET LOCAL``), no
    ``LISTEN``, no advisory locks, no cursors outside a transaction."""
    return None


class DedicatedConnection:
    """One connection kept open for one writer, such as the hot path's write-ahead appends.

    Why not the pool: every ``Pool.fetchrow`` releases its connection with a reset query
    (``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``), one more round trip to
    the server before the caller resumes, and waits for a free connection when other writers
    hold them all. Appends are serialised by the ledger's head row anyway, so one connection
    costs the writer no throughput.

    Calls are serialised here (an asyncpg connection runs one query at a time). The connection
    is opened on first use and opened again after it was lost; a call that fails because the
    connection broke is not retried, since it may have committed: the caller gets the error
    and decides (for an append, the ledger's unique indexes refuse a second copy).
    """

    def __init__(self, dsn: str, **connect_kwargs: Any) -> None:
        self._dsn = dsn
        self._connect_kwargs = connect_kwargs
        self._conn: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(self._dsn, **self._connect_kwargs)
        return self._conn

    def is_in_transaction(self) -> bool:
        """Never between calls: each call is its own transaction, committed when it returns."""
        return self._conn is not None and not self._conn.is_closed() and self._conn.is_in_transaction()

    async def connect(self) -> None:
        """Open the connection now rather than on the first call (start-up fails early)."""
        async with self._lock:
            await self._connection()

    async def execute(self, query: str, *args: Any) -> str:
        return str(await self._call("execute", query, *args))

    async def fetch(self, query: str, *args: Any) -> list[Any]:
        return list(await self._call("fetch", query, *args))

    async def fetchrow(self, query: str, *args: Any) -> Any:
        return await self._call("fetchrow", query, *args)

    async def fetchval(self, query: str, *args: Any, column: int = 0) -> Any:
        return await self._call("fetchval", query, *args, column=column)

    async def fetchmany(self, query: str, args: Sequence[Sequence[Any]]) -> list[Any]:
        """``query`` once per argument set, in one round trip and one implicit transaction."""
        return list(await self._call("fetchmany", query, args))

    async def close(self) -> None:
        async with self._lock:
            if self._conn is not None:
                await self._conn.close()
                self._conn = None

    async def _call(self, method: str, query: str, *args: Any, **kwargs: Any) -> Any:
        async with self._lock:
            conn = await self._connection()
            try:
                return await getattr(conn, method)(query, *args, **kwargs)
            except BaseException as exc:
                if _breaks_connection(exc) or conn.is_closed():
                    # Whatever state the session is in, the next call starts on a fresh one.
                    conn.terminate()
                    self._conn = None
                raise


_SESSION_FATAL_SQLSTATE_CLASSES = ("08", "57")
"""Connection exception, operator intervention (the server ended the session)."""


def _breaks_connection(exc: BaseException) -> bool:
    """Whether the connection can no longer be trusted after ``exc``: anything but an error the
    server reported for the statement (a unique violation leaves the session healthy)."""
    if isinstance(exc, asyncpg.PostgresError):
        return str(exc.sqlstate or "")[:2] in _SESSION_FATAL_SQLSTATE_CLASSES
    return True
