"""Who is calling the API: a trader signed in with a passkey (the session cookie), or a program
holding an API token (``Authorization: Bearer``).

Nothing here is cached: :func:`authenticate` asks Postgres on every call, so a logout, an
expired session or a revoked token takes effect at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from ledger import api_tokens
from ledger.api_tokens import ROLE_OPS as ROLE_OPS
from ledger.api_tokens import ROLE_READ as ROLE_READ
from ledger.db import Db
from ledger.traders import ROLE_TRADER as ROLE_TRADER
from ledger.traders import get_trader
from ledger.webauthn_store import session_for_cookie
from trading.sentry import ANY_ACCOUNT

SESSION_COOKIE = "floor_session"

KIND_TRADER = "trader"
KIND_TOKEN = "token"


@dataclass(frozen=True)
class Principal:
    name: str
    """The trader's name, or the token's."""
    kind: str
    """``trader`` or ``token``."""
    role: str
    """``trader``, ``ops`` (a trader added with --ops, or an ops token) or ``read``."""
    accounts: frozenset[str]
    """What it may see (and, for a trader, trade); ``*`` = every account."""
    session_id: str | None
    """The trader's web session; None for a token."""
    step_up_every_order: bool = False
    """The trader asked for a WebAuthn ceremony on every order, not one per arming."""

    def sees(self, account: str) -> bool:
        return ANY_ACCOUNT in self.accounts or account in self.accounts

    @property
    def is_ops(self) -> bool:
        return self.role == ROLE_OPS

    @property
    def trader_session(self) -> str | None:
        """The web session of a trader signed in with a passkey; None for a program (arming,
        step-up and the desk need one)."""
        return self.session_id if self.kind == KIND_TRADER else None


async def authenticate(
    db: Db, *, cookie: str | None, bearer: str | None, now: datetime | None = None
) -> Principal | None:
    """The caller a session cookie or a bearer token names, or None when neither opens anything
    (unknown, expired, revoked). A bearer token is tried first: a program sends no cookie, and a
    page that sends both means the token."""
    now = now or datetime.now(UTC)
    if bearer:
        found = await api_tokens.token_role(db, bearer)
        if found is not None:
            name, role = found
            return Principal(name, KIND_TOKEN, role, frozenset({ANY_ACCOUNT}), None)
        return None
    if cookie:
        session = await session_for_cookie(db, cookie, now)
        if session is None:
            return None
        session_id, name = session
        return await trader_principal(db, name, session_id)
    return None


async def trader_principal(db: Db, name: str, session_id: str) -> Principal | None:
    trader = await get_trader(db, name)
    if trader is None or trader.disabled_at is not None:
        return None
    return Principal(
        trader.name,
        KIND_TRADER,
        trader.role,
        trader.accounts,
        session_id,
        step_up_every_order=trader.step_up_every_order,
    )
