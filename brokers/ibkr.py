"""Interactive Brokers through ib_async: the :class:`~brokers.base.Broker` the hot path uses.

Layers, each a module of its own:

* :mod:`brokers.ib_transport`: the bound, timestamped socket under ib_async (the codec);
* :mod:`brokers.ib_session`: one kept-alive session per gateway (connect, heartbeat, reconnect);
* :mod:`brokers.ib_router`: the Router, which session carries orders (primary, hot standby,
  failover) and the epochs it opens;
* :mod:`brokers.ib_reconcile`: the reconciliation that starts every epoch;
* :mod:`brokers.ib_order_path`: place, cancel, cancel all and modify;
* :mod:`brokers.ib_event_translator`: ib_async's callbacks to :data:`~brokers.base.BrokerEvent`;
* :mod:`brokers.ib_orders`: the floor's own order map (the state they share);
* :mod:`brokers.ib_queries` and :mod:`brokers.ib_market`: queries and market data;
* :mod:`brokers.ib_internals`: every use of ib_async's private members.

:class:`IbkrBroker` composes them. With ``IbkrConfig(readonly=True)`` it is a market-data
connection (ib_async's read-only mode, as the Temporal worker's quotes need): every order call
raises :class:`~brokers.base.ReadOnlySession` and no epoch reconciles orders.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from ib_async import IB

from brokers.base import (
    BrokerEvent,
    BrokerOrder,
    DepthSnapshot,
    EventHandler,
    Executed,
    OpenOrder,
    Placement,
    Position,
    Quote,
    ReadOnlySession,
    SessionRole,
    Subscription,
    Trade,
)
from brokers.ib_event_translator import EventTranslator
from brokers.ib_market import MarketData
from brokers.ib_order_path import OrderPath
from brokers.ib_orders import OrderMap
from brokers.ib_queries import Queries
from brokers.ib_reconcile import EpochReconciler
from brokers.ib_router import Router
from brokers.ib_session import GatewaySession, SessionConfig, call_safely, compact_trade_logs
from config.settings import FloorSettings


@dataclass(frozen=True)
class IbkrConfig:
    host: str
    port: int
    standby_port: int | None = None
    standby_host: str | None = None
    client_id: int = 1
    standby_client_id: int | None = None
    """Defaults to ``client_id`` so the standby may manage the primary's orders."""
    source_address: str | None = None
    connect_timeout: float = 4.0
    heartbeat_interval: float = 0.25
    heartbeat_timeout: float = 0.05
    """Seconds a probe may wait for an answer (see :mod:`brokers.ib_liveness`)."""
    heartbeat_misses: int = 3
    reconcile_timeout: float = 4.0
    client_id_wait: float = 15.0
    """Seconds a first connection waits for a client id the gateway says is in use (see
    :class:`brokers.ib_session.SessionConfig`)."""
    max_requests_per_s: int = 45
    readonly: bool = False
    """Market data and queries only: ib_async's read-only mode, and no order calls."""

    @classmethod
    def from_settings(cls, settings: FloorSettings, **overrides: Any) -> IbkrConfig:
        """The gateways, client id, source address and pacing the floor's settings name."""
        values: dict[str, Any] = {
            "host": settings.ib_gateway_host,
            "port": settings.ib_port,
            "standby_port": settings.ib_standby_port,
            "client_id": settings.ib_client_id,
            "source_address": settings.ib_source_address,
            "max_requests_per_s": settings.ib_max_requests_per_s,
            "heartbeat_interval": settings.ib_heartbeat_ms / 1000,
            "heartbeat_timeout": settings.ib_answer_ms / 1000,
            "heartbeat_misses": settings.ib_heartbeat_misses,
        }
        values.update(overrides)
        return cls(**values)

    def sessions(self) -> list[SessionConfig]:
        common = {
            "source_address": self.source_address,
            "connect_timeout": self.connect_timeout,
            "heartbeat_interval": self.heartbeat_interval,
            "heartbeat_timeout": self.heartbeat_timeout,
            "heartbeat_misses": self.heartbeat_misses,
            "max_requests_per_s": self.max_requests_per_s,
            "client_id_wait": self.client_id_wait,
            "readonly": self.readonly,
        }
        out = [SessionConfig(self.host, self.port, self.client_id, SessionRole.PRIMARY, **common)]  # type: ignore[arg-type]
        if self.standby_port is not None:
            cid = self.client_id if self.standby_client_id is None else self.standby_client_id
            host = self.standby_host or self.host
            out.append(SessionConfig(host, self.standby_port, cid, SessionRole.STANDBY, **common))  # type: ignore[arg-type]
        return out


def _drop(_: BrokerEvent) -> None:
    pass


class IbkrBroker:
    """The ib_async adapter; see the module docstring and :class:`brokers.base.Broker`."""

    name = "ibkr"

    def __init__(self, config: IbkrConfig) -> None:
        compact_trade_logs()
        self.config = config
        self._handler: EventHandler = _drop
        orders = OrderMap()
        self._market = MarketData()
        self.orders = OrderPath(orders, self._emit)
        self.translator = EventTranslator(orders, self.orders, self._market, self._emit)
        reconciler = EpochReconciler(
            orders,
            self.orders,
            self.translator,
            self._market,
            self._emit,
            config.reconcile_timeout,
            readonly=config.readonly,
        )
        self.router = Router(
            config.sessions(),
            write_hook=self.orders.write_hook,
            wire=self.translator.wire,
            session_up=self._session_up,
            reconcile=reconciler.run,
            held_orders=lambda: len(orders.held()),
            emit=self._emit,
            settle_timeout=config.reconcile_timeout + config.connect_timeout,
        )
        self.orders.router = self.translator.router = reconciler.router = self.router
        self._queries = Queries(self.router, self.translator)

    def _session_up(self, session: GatewaySession) -> None:
        self.orders.session_up(session)
        self.translator.session_up(session)

    def _emit(self, event: BrokerEvent) -> None:
        call_safely(self._handler, event)

    # --- lifecycle ------------------------------------------------------------------------

    def set_event_handler(self, handler: EventHandler) -> None:
        self._handler = handler

    @property
    def connected(self) -> bool:
        return self.router.connected

    async def wait_connected(self) -> None:
        """Return once orders are written to a socket again (not held)."""
        await self.router.wait_connected()

    @property
    def active_gateway(self) -> str | None:
        active = self.router.active
        return active.gateway if active is not None else None

    @property
    def epoch(self) -> int:
        return self.router.epoch

    async def connect(self) -> None:
        await self.router.connect()

    async def close(self, emit: bool = True) -> None:
        await self.router.close(emit)

    # --- order path -----------------------------------------------------------------------

    def _writable(self) -> OrderPath:
        if self.config.readonly:
            raise ReadOnlySession("this IB connection is for market data only")
        return self.orders

    def place(self, order: BrokerOrder) -> Placement:
        return self._writable().place(order)

    def cancel(self, order_ref: str) -> int:
        return self._writable().cancel(order_ref)

    def adopt(
        self,
        order: BrokerOrder,
        filled: int = 0,
        *,
        acknowledged: bool = True,
        listed: OpenOrder | None = None,
        broker_order_id: int | None = None,
        sent_after: datetime | None = None,
    ) -> None:
        # IB knows the order by its orderRef: broker_order_id and sent_after are not needed.
        self._writable().adopt(order, filled, acknowledged=acknowledged, listed=listed)

    def cancel_all(self) -> int:
        return self._writable().cancel_all()

    def modify(
        self,
        order_ref: str,
        *,
        quantity: int | None = None,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
        trailing_amount: Decimal | None = None,
        trailing_percent: Decimal | None = None,
    ) -> int:
        return self._writable().modify(
            order_ref,
            quantity=quantity,
            limit_price=limit_price,
            stop_price=stop_price,
            trailing_amount=trailing_amount,
            trailing_percent=trailing_percent,
        )

    def last_write_ns(self, order_ref: str) -> int:
        return self.orders.last_write_ns(order_ref)

    @property
    def last_cancel_all_ns(self) -> int:
        return self.orders.last_cancel_all_ns

    # --- queries --------------------------------------------------------------------------

    async def net_liquidation(self, account: str) -> Decimal:
        return await self._queries.net_liquidation(account)

    async def open_orders(self) -> list[OpenOrder]:
        """Working orders of every client on the account, asked fresh from the active session."""
        return await self._queries.open_orders()

    async def executions(self, since: datetime | None = None) -> list[Executed]:
        return await self._queries.executions(since)

    async def positions(self) -> list[Position]:
        return await self._queries.positions()

    # --- market data ---------------------------------------------------------------------

    async def subscribe_quotes(self, symbol: str, handler: Callable[[Quote], None]) -> Subscription:
        return await self._market.subscribe_quotes(symbol, handler, self._md_ib())

    async def subscribe_depth(
        self, symbol: str, handler: Callable[[DepthSnapshot], None], rows: int = 10
    ) -> Subscription:
        return await self._market.subscribe_depth(symbol, handler, rows, self._md_ib())

    async def subscribe_trades(self, symbol: str, handler: Callable[[Trade], None]) -> Subscription:
        return await self._market.subscribe_trades(symbol, handler, self._md_ib())

    async def unsubscribe(self, subscription: Subscription) -> None:
        self._market.unsubscribe(subscription, self._md_ib())

    def _md_ib(self) -> IB | None:
        session = self.router.active
        return session.ib if self.connected and session is not None else None
