"""DataLoaders: a list whose items each need a lookup asks once for all of them.

Built per context without a cache: a WebSocket's context lives as long as the connection, and
a cache would keep (and keep serving) everything it ever loaded; batching is what counts."""

from __future__ import annotations

from collections.abc import Sequence

from strawberry.dataloader import DataLoader
from webauthn.helpers import base64url_to_bytes

from ledger.db import Db
from ledger.order_entries import OrderEntry, entries_of
from ledger.webauthn_store import backup_eligibility


class Loaders:
    def __init__(self, db: Db) -> None:
        async def load_entries(command_ids: Sequence[str]) -> list[OrderEntry | None]:
            found = await entries_of(db, command_ids)
            return [found.get(c) for c in command_ids]

        self.entries: DataLoader[str, OrderEntry | None] = DataLoader(load_entries, cache=False)

        async def load_backup_eligible(credential_ids: Sequence[str]) -> list[bool | None]:
            decoded = [_credential_bytes(c) for c in credential_ids]
            found = await backup_eligibility(db, [d for d in decoded if d is not None])
            return [None if d is None else found.get(d) for d in decoded]

        self.backup_eligible: DataLoader[str, bool | None] = DataLoader(load_backup_eligible, cache=False)
        """A credential's backup-eligible flag by its base64url id; None: no such credential."""


def _credential_bytes(credential_id: str) -> bytes | None:
    # An unauthenticated ledger entry may carry anything as a credential id.
    try:
        return base64url_to_bytes(credential_id)
    except ValueError:
        return None
