"""Schwab's streamer socket, kept up: login, subscriptions, the read loop, and relogin after a
drop.

schwab-py's ``StreamClient`` logs in (it asks ``userPreference`` for the socket's URL and the
ids, with the REST client's fresh access token) and relabels each message for the handlers,
but it neither reconnects nor notices a dead socket: when ``handle_message`` raises, this
module logs in again with backoff, subscribes everything again (handlers survive in the
client) and tells the adapter, which starts a new session epoch. Schwab allows one streamer
connection per user, so one process (the hot path) owns it.

Account activity is a prompt only (see :mod:`brokers.schwab_sync`): of each row the adapter
reads the order id (``SchwabOrderID``, and a replace's ``ParentSchwabOrderID``) and asks REST.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from schwab.streaming import StreamClient

from brokers.schwab_auth import is_login_error
from brokers.schwab_context import SchwabContext, log
from brokers.schwab_market import MarketData

LOGIN_TIMEOUT_S = 10.0
LOGOUT_TIMEOUT_S = 1.0


def activity_order_ids(message: dict[str, Any]) -> list[int]:
    """The order ids an ACCT_ACTIVITY message names (the order, and a replace's parent)."""
    ids: list[int] = []
    for row in message.get("content", ()):
        data = row.get("MESSAGE_DATA")
        if not data or not isinstance(data, str):
            continue
        try:
            body = json.loads(data)
        except ValueError:
            continue
        if not isinstance(body, dict):
            continue
        event = body.get("BaseEvent")
        nested = [v for v in event.values() if isinstance(v, dict)] if isinstance(event, dict) else []
        for source in (body, *nested):
            for key in ("SchwabOrderID", "ParentSchwabOrderID"):
                value = source.get(key)
                if value is not None and str(value).isdigit() and int(value) not in ids:
                    ids.append(int(value))
    return ids


class Streamer:
    def __init__(
        self,
        ctx: SchwabContext,
        market: MarketData,
        on_activity: Callable[[list[int]], None],
        on_down: Callable[[str], None],
        on_up: Callable[[], Awaitable[None]],
        on_login_refused: Callable[[BaseException], None],
    ) -> None:
        self._ctx = ctx
        self._market = market
        self._on_activity = on_activity
        self._on_down = on_down
        self._on_up = on_up
        self._on_login_refused = on_login_refused
        self.client: StreamClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._subscribed: set[str] = set()
        """Services subscribed on the current socket (the first symbol SUBS, the next ADD)."""
        self.logins = 0
        self._read: asyncio.Task[None] | None = None
        self._paused_read: asyncio.Task[None] | None = None
        self._not_paused = asyncio.Event()
        self._not_paused.set()
        self._pause_lock = asyncio.Lock()

    @property
    def up(self) -> bool:
        return self.client is not None

    async def start(self) -> None:
        await self._login()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="schwab-stream")

    async def close(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self._drop()

    async def drop_socket(self) -> None:
        """Close the socket as if the network had (tests of the reconnect)."""
        client = self.client
        if client is not None and client._socket is not None:  # noqa: SLF001 - no public close
            await client._socket.close()  # noqa: SLF001

    async def _drop(self) -> None:
        client, self.client = self.client, None
        self._subscribed.clear()
        if client is None or client._socket is None:  # noqa: SLF001
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.logout(), LOGOUT_TIMEOUT_S)
        with contextlib.suppress(Exception):
            await client._socket.close()  # noqa: SLF001 - schwab-py keeps the socket private

    async def _login(self) -> None:
        client = StreamClient(self._ctx.require_client())
        # Handlers before any subscription: schwab-py drops data with no handler.
        client.add_level_one_equity_handler(self._market.on_level_one)
        client.add_nasdaq_book_handler(self._market.on_book)
        client.add_account_activity_handler(self._activity)
        try:
            await asyncio.wait_for(client.login(), LOGIN_TIMEOUT_S)
            self.client = client
            await asyncio.wait_for(client.account_activity_sub(), LOGIN_TIMEOUT_S)
            self._market.relogged()
            for symbol in self._market.l1_symbols():
                await self.subscribe("quotes", symbol)
            for symbol in self._market.book_symbols():
                await self.subscribe("depth", symbol)
        except BaseException:
            await self._drop()
            raise
        self.logins += 1

    @contextlib.asynccontextmanager
    async def _paused(self) -> AsyncIterator[None]:
        """The read loop stopped for a request of ours. schwab-py holds its lock while it waits
        for the next message, and a request needs that lock: with nothing subscribed yet the
        next message is the heartbeat, seconds away. Cancelling a websockets ``recv`` loses no
        message, so the read is cancelled, the request made, and the reading resumed."""
        async with self._pause_lock:
            self._not_paused.clear()
            read = self._read
            if read is not None and not read.done():
                self._paused_read = read
                read.cancel()
                await asyncio.wait([read])
            try:
                yield
            finally:
                self._not_paused.set()

    async def subscribe(self, kind: str, symbol: str) -> None:
        client = self.client
        if client is None:
            return  # subscribed at the next login
        service = "LEVELONE_EQUITIES" if kind in ("quotes", "trades") else "NASDAQ_BOOK"
        if service in self._subscribed:
            call = client.level_one_equity_add if service == "LEVELONE_EQUITIES" else client.nasdaq_book_add
        else:
            call = client.level_one_equity_subs if service == "LEVELONE_EQUITIES" else client.nasdaq_book_subs
        async with self._paused():
            await asyncio.wait_for(call([symbol]), LOGIN_TIMEOUT_S)
        self._subscribed.add(service)

    async def unsubscribe(self, kind: str, symbol: str) -> None:
        client = self.client
        if client is None:
            return
        call = client.nasdaq_book_unsubs if kind == "depth" else client.level_one_equity_unsubs
        async with self._paused():
            await asyncio.wait_for(call([symbol]), LOGIN_TIMEOUT_S)

    async def _read_until_drop(self, client: StreamClient) -> str:
        """Hand every message to its handlers until the socket fails; returns why."""
        while True:
            await self._not_paused.wait()
            read = self._read = asyncio.get_running_loop().create_task(client.handle_message())
            try:
                await read
            except asyncio.CancelledError:
                if read is self._paused_read and not self._closing:
                    continue  # stopped for a request of ours (see _paused)
                read.cancel()
                raise
            except Exception as exc:  # noqa: BLE001 - any end of the socket is a drop
                return f"streamer lost: {type(exc).__name__}: {exc}"

    def _activity(self, message: dict[str, Any]) -> None:
        ids = activity_order_ids(message)
        if ids:
            self._on_activity(ids)

    async def _run(self) -> None:
        backoff = self._ctx.config.reconnect_initial_s
        while not self._closing:
            client = self.client
            if client is not None:
                cause = await self._read_until_drop(client)
                await self._drop()
                if self._closing:
                    return
                self._on_down(cause)
            if self._ctx.login_required is not None:
                return  # nothing to log in with until a person does
            try:
                await self._login()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - retried with backoff below
                if is_login_error(exc):
                    self._on_login_refused(exc)
                    return
                log.info("schwab: streamer login failed (%s); again in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._ctx.config.reconnect_max_s)
                continue
            backoff = self._ctx.config.reconnect_initial_s
            await self._on_up()
