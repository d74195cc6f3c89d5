"""Who is calling the API: a trader (web session cookie) or a program (bearer API token).

Placeholder with the agreed interface until the identity tables exist: nobody authenticates.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.db import Db

SESSION_COOKIE = "floor_session"


@dataclass(frozen=True)
class Principal:
    name: str
    kind: str
    role: str
    accounts: frozenset[str]
    session_id: str | None

    def sees(self, account: str) -> bool:
        return "*" in self.accounts or account in self.accounts

    @property
    def is_ops(self) -> bool:
        return self.role == "ops"


async def authenticate(db: Db, *, cookie: str | None, bearer: str | None) -> Principal | None:
    return None
