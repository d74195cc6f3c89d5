"""What the ledger modules need from a database handle: an asyncpg ``Connection`` or ``Pool``."""

from __future__ import annotations

from typing import Any, Protocol


class Db(Protocol):
    async def execute(self, query: str, *args: Any) -> str: ...

    async def fetch(self, query: str, *args: Any) -> list[Any]: ...

    async def fetchrow(self, query: str, *args: Any) -> Any: ...

    async def fetchval(self, query: str, *args: Any, column: int = 0) -> Any: ...
