"""DataLoaders: a list whose items each need a lookup asks once for all of them.

Built per context without a cache: a WebSocket's context lives as long as the connection, and
a cache would keep (and keep serving) everything it ever loaded; batching is what counts."""

from __future__ import annotations

from collections.abc import Sequence

from strawberry.dataloader import DataLoader

from ledger.db import Db
from ledger.order_entries import OrderEntry, entries_of


class Loaders:
    def __init__(self, db: Db) -> None:
        async def load_entries(command_ids: Sequence[str]) -> list[OrderEntry | None]:
            found = await entries_of(db, command_ids)
            return [found.get(c) for c in command_ids]

        self.entries: DataLoader[str, OrderEntry | None] = DataLoader(load_entries, cache=False)
