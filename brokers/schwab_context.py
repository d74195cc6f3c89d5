"""What the Schwab adapter's parts share: the client, the accounts, the order map, the budgets,
the session's state, and the one place events leave by."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from brokers.base import BrokerEvent, BrokerNotice, NotConnected
from brokers.schwab_orders import OrderBook, RequestBudget

log = logging.getLogger("brokers.schwab")

SESSION_LABEL = "schwab"


@dataclass(frozen=True)
class SchwabConfig:
    token_path: Path
    app_key: str
    app_secret: str
    accounts: tuple[str, ...]
    """Plain account numbers (the floor's); the adapter looks up their hashes."""
    base_url: str | None = None
    """Where ``https://api.schwabapi.com`` is reached instead (the paper emulator)."""
    poll_s: float = 2.0
    order_limit_per_min: int = 120
    token_warn_age_s: int = 6 * 86400
    request_timeout_s: float = 10.0
    reconnect_initial_s: float = 0.2
    reconnect_max_s: float = 5.0
    readonly: bool = False

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> SchwabConfig:
        accounts = tuple(a for a, broker in settings.account_brokers.items() if broker == "schwab")
        values: dict[str, Any] = {
            "token_path": settings.schwab_token_file,
            "app_key": settings.schwab_app_key,
            "app_secret": settings.schwab_app_secret,
            "accounts": accounts,
            "base_url": settings.schwab_base_url,
            "poll_s": settings.schwab_poll_s,
            "order_limit_per_min": settings.schwab_order_rate_per_min,
            "token_warn_age_s": settings.schwab_token_warn_age_s,
        }
        values.update(overrides)
        return cls(**values)

    @property
    def gateway(self) -> str:
        return self.base_url or "api.schwabapi.com"


@dataclass
class SchwabContext:
    config: SchwabConfig
    emit: Callable[[BrokerEvent], None]
    client: Any = None
    """schwab-py's AsyncClient once connected."""
    hashes: dict[str, str] = field(default_factory=dict)
    """Plain account number -> Schwab's account hash."""
    book: OrderBook = field(default_factory=OrderBook)
    budgets: dict[str, RequestBudget] = field(default_factory=dict)
    positions: dict[tuple[str, str], int] = field(default_factory=dict)
    mids: Callable[[str], Decimal | None] = lambda _symbol: None
    ready: bool = False
    """Orders go out now (session up and its epoch reconciled)."""
    login_required: str | None = None
    """Why Schwab refused the refresh token; set once, and nothing is retried after it."""
    epoch: int = 0
    order_limit_per_min: int | None = None
    """Overrides the configuration's (:meth:`brokers.schwab.SchwabBroker.set_order_limit`)."""

    def budget(self, account_hash: str) -> RequestBudget:
        budget = self.budgets.get(account_hash)
        if budget is None:
            limit = self.order_limit_per_min
            limit = self.config.order_limit_per_min if limit is None else limit
            budget = self.budgets[account_hash] = RequestBudget(limit)
        return budget

    def hash_of(self, account: str) -> str:
        """Schwab's hash of a plain account number; unknown before connect (then the account
        itself stands in until the lookup, and is replaced at bind time)."""
        return self.hashes.get(account, account)

    def account_of(self, account_hash: str) -> str:
        for account, h in self.hashes.items():
            if h == account_hash:
                return account
        return account_hash

    def require_client(self) -> Any:
        if self.client is None or self.login_required is not None:
            raise NotConnected(self.login_required or "the Schwab session is not connected")
        return self.client

    def notice(self, code: int, message: str, ops_kind: str | None = None, severity: str = "info") -> None:
        log.log(logging.WARNING if severity != "info" else logging.INFO, "schwab: %s", message)
        self.emit(
            BrokerNotice(
                code=code,
                message=message,
                req_id=-1,
                session=SESSION_LABEL,
                time=datetime.now(UTC),
                ops_kind=ops_kind,
                severity=severity,
            )
        )
