"""Charles Schwab through schwab-py: the :class:`~brokers.base.Broker` for the accounts the floor
routes to Schwab (``FLOOR_BROKER_ACCOUNTS=...,ACCOUNT=schwab``).

Layers, each a module of its own:

* :mod:`brokers.schwab_auth`: schwab-py's async client on a token file (refreshes, the paper
  redirect, :class:`LoginRequired`);
* :mod:`brokers.schwab_wire`: Schwab's order JSON to and from the interface's messages;
* :mod:`brokers.schwab_orders`: the order map (order_ref -> Schwab's id chain) and the request budget;
* :mod:`brokers.schwab_order_path`: place, cancel, cancel all and modify;
* :mod:`brokers.schwab_sync`: Schwab's order objects -> broker events, polling, reconciliation;
* :mod:`brokers.schwab_stream` and :mod:`brokers.schwab_market`: the streamer, quotes and books.

A *session* here is the streamer's socket with REST behind it: an epoch opens at connect and at
every relogin after a drop (``CONNECTED`` / ``RECONNECTED``), reconciles, and only then lets
orders go; while the streamer is down orders wait (``DISCONNECTED``), as they do at IB. When
Schwab refuses the refresh token the adapter stops (``NotConnected``), records
``schwab.login_required`` (a :class:`~brokers.base.BrokerNotice` with ``ops_kind``) and says
which command logs in again; nothing it retries could fix it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from brokers.base import (
    BrokerEvent,
    BrokerOrder,
    DepthSnapshot,
    EventHandler,
    Executed,
    NotConnected,
    OpenOrder,
    Placement,
    Position,
    Quote,
    ReadOnlySession,
    SessionChange,
    SessionChanged,
    SessionRole,
    Subscription,
    Trade,
)
from brokers.schwab_auth import (
    LOGIN_REQUIRED,
    TOKEN_AGING,
    LoginRequired,
    Unauthorized,
    build_client,
    is_login_error,
    refresh_now,
)
from brokers.schwab_context import SchwabConfig, SchwabContext, log
from brokers.schwab_market import MarketData
from brokers.schwab_order_path import OrderPath
from brokers.schwab_stream import Streamer
from brokers.schwab_sync import OrderSync, list_orders
from brokers.schwab_wire import error_text, loads

__all__ = ["LoginRequired", "SchwabBroker", "SchwabConfig"]


def _drop(_: BrokerEvent) -> None:
    pass


class SchwabBroker:
    """The schwab-py adapter; see the module docstring and :class:`brokers.base.Broker`."""

    name = "schwab"

    def __init__(self, config: SchwabConfig) -> None:
        self.config = config
        self._handler: EventHandler = _drop
        self.ctx = SchwabContext(config, self._emit)
        self.market = MarketData()
        self.ctx.mids = self.market.mid
        self.sync = OrderSync(self.ctx)
        self.orders = OrderPath(self.ctx, self.sync.refresh, self._request_failed)
        self.sync.resend = self.orders.resend
        self.sync.found = self.orders.found
        self.stream = Streamer(
            self.ctx, self.market, self._activity, self._stream_down, self._stream_up, self._login_refused
        )
        self._tasks: set[asyncio.Task[Any]] = set()
        self._poller: asyncio.Task[None] | None = None
        self._closing = False
        self._ready_event = asyncio.Event()
        self._refreshing = False
        self._up = False
        """An epoch was announced and its end not yet reported."""

    def _emit(self, event: BrokerEvent) -> None:
        try:
            self._handler(event)
        except Exception:  # noqa: BLE001 - one bad consumer must not stop the session
            log.exception("schwab: event handler failed on %s", type(event).__name__)

    # --- lifecycle ------------------------------------------------------------------------

    def set_event_handler(self, handler: EventHandler) -> None:
        self._handler = handler

    @property
    def connected(self) -> bool:
        return self.ctx.ready and self.ctx.login_required is None

    @property
    def epoch(self) -> int:
        return self.ctx.epoch

    async def wait_connected(self) -> None:
        while not self.connected:
            self._ready_event.clear()
            await self._ready_event.wait()

    async def connect(self) -> None:
        ctx = self.ctx
        try:
            ctx.client = build_client(
                self.config.token_path,
                self.config.app_key,
                self.config.app_secret,
                self.config.base_url,
                self.config.request_timeout_s,
            )
        except LoginRequired as exc:
            self._login_refused(exc)
            raise
        self._warn_token_age()
        try:
            await self._lookup_accounts()
            await self._seed_positions()
            await self.stream.start()
        except Exception as exc:
            if is_login_error(exc):
                self._login_refused(exc)
                raise self._login_error(exc) from exc
            raise ConnectionError(f"Schwab API at {self.config.gateway} not usable: {exc}") from exc
        self.orders.start()
        await self._open_epoch(SessionChange.CONNECTED, "connected")
        self._poller = asyncio.get_running_loop().create_task(self._poll(), name="schwab-poll")

    async def close(self, emit: bool = True) -> None:
        self._closing = True
        was_ready = self.ctx.ready
        self.ctx.ready = False
        if self._poller is not None:
            self._poller.cancel()
        for task in [*self._tasks]:
            task.cancel()
        await self.stream.close()
        await self.orders.close()
        if self.ctx.client is not None:
            with contextlib.suppress(Exception):
                await self.ctx.client.close_async_session()
        if emit and (was_ready or self.ctx.epoch):
            self._session_event(SessionChange.CLOSED, "close() called")

    # --- session --------------------------------------------------------------------------

    def _login_error(self, exc: BaseException) -> LoginRequired:
        return LoginRequired(
            self.config.token_path, f"Schwab refused the refresh token: {exc}", self.config.app_key
        )

    def _login_refused(self, exc: BaseException) -> None:
        """Schwab refused the refresh token (or there is none): stop, say so once, hold orders."""
        if self.ctx.login_required is not None:
            return
        error = exc if isinstance(exc, LoginRequired) else self._login_error(exc)
        self.ctx.login_required = str(error)
        self.ctx.ready = False
        log.critical("%s", error)
        self.ctx.notice(401, str(error), ops_kind=LOGIN_REQUIRED, severity="critical")
        self._down(f"{LOGIN_REQUIRED}: {error.detail}")

    def _warn_token_age(self) -> None:
        age = int(self.ctx.client.token_age())
        if self.config.token_warn_age_s and age >= self.config.token_warn_age_s:
            self.ctx.notice(
                0,
                f"the Schwab login in {self.config.token_path} is {age / 86400:.1f} days old; its refresh "
                f"token lapses about 7 days after the login: log in again (schwab-generate-token.py) "
                f"before it does",
                ops_kind=TOKEN_AGING,
                severity="warning",
            )

    async def _lookup_accounts(self) -> None:
        resp = await self.ctx.client.get_account_numbers()
        if resp.is_error:
            raise ConnectionError(f"account numbers: {error_text(resp.status_code, resp.content)}")
        hashes = {str(row["accountNumber"]): str(row["hashValue"]) for row in loads(resp.content)}
        missing = [a for a in self.config.accounts if a not in hashes]
        if missing:
            raise ConnectionError(
                f"the Schwab login in {self.config.token_path} does not reach account(s) "
                f"{', '.join(missing)} (it reaches {', '.join(sorted(hashes)) or 'none'}): fix "
                f"FLOOR_BROKER_ACCOUNTS or log in as their owner"
            )
        self.ctx.hashes = {a: hashes[a] for a in self.config.accounts}
        for _, tracked in self.ctx.book.live():
            tracked.account_hash = self.ctx.hash_of(tracked.order.account)

    async def _seed_positions(self) -> None:
        for position in await self.positions():
            self.ctx.positions[(position.account, position.symbol)] = position.quantity

    def _session_event(self, change: SessionChange, cause: str) -> None:
        self._emit(
            SessionChanged(
                change=change,
                gateway=self.config.gateway,
                role=SessionRole.PRIMARY,
                cause=cause,
                epoch=self.ctx.epoch,
                time=datetime.now(UTC),
                held_orders=self.orders.held(),
                accounts=tuple(self.config.accounts),
            )
        )

    async def _open_epoch(self, change: SessionChange, cause: str) -> None:
        """A new epoch: announced, reconciled, and then orders flow."""
        self.ctx.epoch += 1
        epoch = self.ctx.epoch
        self._session_event(change, cause)
        # Open from its announcement: one that fails before its reconciliation is ended
        # (DISCONNECTED) by the drop that follows, never left open under the next one.
        self._up = True
        if not self.config.readonly:
            listing = await self.sync.reconcile(epoch)
            if epoch != self.ctx.epoch or self._closing:
                return
            self._emit(listing)
        self.ctx.ready = True
        self._up = True
        self._ready_event.set()
        self.orders.resume()

    def _stream_down(self, cause: str) -> None:
        self.ctx.ready = False
        self._down(cause)

    def _down(self, cause: str) -> None:
        """The session that carried orders is gone: said once, until the next epoch."""
        if self._up and not self._closing:
            self._up = False
            self._session_event(SessionChange.DISCONNECTED, cause)

    async def _stream_up(self) -> None:
        try:
            await self._open_epoch(SessionChange.RECONNECTED, "streamer logged in again")
        except Exception as exc:  # noqa: BLE001 - the next drop or poll tries again
            if is_login_error(exc):
                self._login_refused(exc)
                return
            log.warning("schwab: reconciliation after relogin failed: %s; dropping the socket to retry", exc)
            await self.stream.drop_socket()

    def _request_failed(self, exc: BaseException) -> None:
        if is_login_error(exc):
            self._login_refused(exc)
        elif isinstance(exc, Unauthorized):
            self._refresh_access(str(exc))
        else:
            log.warning("schwab: request failed: %s", exc)

    def _refresh_access(self, why: str) -> None:
        """Schwab refused the access token before its time: orders wait while it is refreshed."""
        if self._refreshing or self.ctx.login_required is not None or self.ctx.client is None:
            return
        self._refreshing = True
        was_ready, self.ctx.ready = self.ctx.ready, False
        log.warning("schwab: access token refused (%s); refreshing it", why)

        async def refresh() -> None:
            try:
                await refresh_now(self.ctx.client)
            except Exception as exc:  # noqa: BLE001 - sorted: a refused refresh needs a login
                if is_login_error(exc):
                    self._login_refused(exc)
                    return
                log.warning("schwab: token refresh failed: %s; tried again at the next refusal", exc)
            finally:
                self._refreshing = False
            if was_ready and self.ctx.login_required is None and self.stream.up:
                self.ctx.ready = True
                self._ready_event.set()
                self.orders.resume()

        self._spawn(refresh())

    def _activity(self, order_ids: list[int]) -> None:
        for order_id in order_ids:
            self._spawn(self.sync.refresh_id(order_id))

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                exc = t.exception()
                assert exc is not None
                self._request_failed(exc)

        task.add_done_callback(done)

    async def _poll(self) -> None:
        while not self._closing:
            await asyncio.sleep(self.config.poll_s)
            if not self.ctx.ready or self.ctx.login_required is not None:
                continue
            try:
                await self.sync.poll()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a poll that failed is tried next time
                self._request_failed(exc)

    # --- order path -----------------------------------------------------------------------

    def _writable(self) -> OrderPath:
        if self.config.readonly:
            raise ReadOnlySession("this Schwab connection is for market data only")
        return self.orders

    def place(self, order: BrokerOrder) -> Placement:
        return self._writable().place(order)

    def cancel(self, order_ref: str) -> int:
        return self._writable().cancel(order_ref)

    def cancel_all(self) -> int:
        return self._writable().cancel_all()

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
        order_id = listed.order_id if listed is not None else broker_order_id
        self._writable().adopt(order, filled, acknowledged, order_id, sent_after)

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

    def set_order_limit(self, per_min: int) -> None:
        """The app's order limit changed (0: unpaced): each account's window starts empty."""
        self.ctx.order_limit_per_min = per_min
        self.ctx.budgets.clear()

    # --- queries --------------------------------------------------------------------------

    async def _account(self, account: str, positions: bool = False) -> dict[str, Any]:
        client = self.ctx.require_client()
        account_hash = self.ctx.hashes.get(account)
        if account_hash is None:
            raise NotConnected(f"account {account} is not served by this Schwab connection")
        fields = [client.Account.Fields.POSITIONS] if positions else None
        resp = await client.get_account(account_hash, fields=fields)
        if resp.is_error:
            raise NotConnected(f"account {account}: {error_text(resp.status_code, resp.content)}")
        body: dict[str, Any] = loads(resp.content)
        return body

    async def net_liquidation(self, account: str) -> Decimal:
        body = await self._account(account)
        aggregated = body.get("aggregatedBalance") or {}
        current = (body.get("securitiesAccount") or {}).get("currentBalances") or {}
        for value in (
            aggregated.get("liquidationValue"),
            aggregated.get("currentLiquidationValue"),
            current.get("liquidationValue"),
            current.get("equity"),
        ):
            if value is not None:
                return Decimal(str(value))
        raise NotConnected(f"Schwab reports no liquidation value for {account}")

    async def open_orders(self) -> list[OpenOrder]:
        return [self.sync.open_order(o) for o in await list_orders(self.ctx, open_only=True)]

    async def executions(self, since: datetime | None = None) -> list[Executed]:
        return self.sync.executions_of(await list_orders(self.ctx), since)

    async def positions(self) -> list[Position]:
        out: list[Position] = []
        for account in self.ctx.hashes:
            body = await self._account(account, positions=True)
            for row in (body.get("securitiesAccount") or {}).get("positions") or ():
                symbol = (row.get("instrument") or {}).get("symbol")
                quantity = int(Decimal(str(row.get("longQuantity", 0)))) - int(
                    Decimal(str(row.get("shortQuantity", 0)))
                )
                if symbol and quantity:
                    out.append(Position(account, symbol, quantity, Decimal(str(row.get("averagePrice", 0)))))
        return out

    # --- market data ----------------------------------------------------------------------

    async def _subscribe(self, kind: str, symbol: str, handler: Callable[[Any], None]) -> Subscription:
        subscription = self.market.add(kind, symbol, handler)
        await self.stream.subscribe(kind, symbol)
        return subscription

    async def subscribe_quotes(self, symbol: str, handler: Callable[[Quote], None]) -> Subscription:
        return await self._subscribe("quotes", symbol, handler)

    async def subscribe_depth(
        self, symbol: str, handler: Callable[[DepthSnapshot], None], rows: int = 10
    ) -> Subscription:
        return await self._subscribe("depth", symbol, handler)

    async def subscribe_trades(self, symbol: str, handler: Callable[[Trade], None]) -> Subscription:
        """Trades as L1 shows them (Schwab streams no tape): see :mod:`brokers.schwab_market`."""
        return await self._subscribe("trades", symbol, handler)

    async def unsubscribe(self, subscription: Subscription) -> None:
        if self.market.remove(subscription):
            still_l1 = subscription.symbol in self.market.l1_symbols()
            if subscription.kind == "depth" or not still_l1:
                await self.stream.unsubscribe(subscription.kind, subscription.symbol)
