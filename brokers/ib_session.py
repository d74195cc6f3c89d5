"""One ib_async session to one gateway, kept alive: connect, watch, reconnect with backoff.

A :class:`GatewaySession` owns a fresh ``ib_async.IB`` per connection (ib_async clears its state
on disconnect anyway), bound to the configured source address through
:mod:`brokers.ib_transport`. While connected it watches two things:

* the socket: a closed connection (gateway killed, dropped) ends the session at once;
* a heartbeat (:mod:`brokers.ib_liveness`): ``reqCurrentTime`` whenever nothing has arrived for
  ``heartbeat_interval``; the heartbeats and the orders written are probes, and
  ``heartbeat_misses`` of them unanswered for ``heartbeat_timeout`` each end the session (a
  frozen gateway keeps its socket open but answers nothing);
* the gateway's own word (IB's 1100): its upstream is lost, so the session stops carrying
  orders but stays connected, heartbeat and all, until 1101 (restored, market data lost) or
  1102 (restored, data kept) brings it back (:meth:`GatewaySession.upstream_lost`,
  :meth:`GatewaySession.upstream_restored`).

Every change is reported to a :class:`SessionListener` (the Router, :mod:`brokers.ib_router`);
the session itself decides nothing about orders.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ib_async import IB, Trade
from ib_async.ib import StartupFetch, StartupFetchALL

from brokers.base import ClientIdInUse, SessionRole, SourceAddressRefused
from brokers.ib_internals import decode_known_orders, plan_parsing
from brokers.ib_liveness import LivenessRules
from brokers.ib_transport import BoundConnection, OrderWriteHook, install

log = logging.getLogger(__name__)

MIN_HEALTHY_UPTIME = 1.0
"""Seconds a session must stay up before its reconnect backoff starts over."""

ERR_CLIENT_ID_IN_USE = 326


@dataclass(frozen=True)
class SessionConfig:
    host: str
    port: int
    client_id: int
    role: SessionRole
    source_address: str | None = None
    connect_timeout: float = 4.0
    heartbeat_interval: float = 0.25
    heartbeat_timeout: float = 0.05
    """Seconds a probe (heartbeat or order) may wait for a byte before it counts as missed."""
    heartbeat_misses: int = 3
    backoff_initial: float = 0.05
    backoff_max: float = 2.0
    max_requests_per_s: int = 45
    """ib_async's client-side throttle (IB allows 50/s); 0 disables it."""
    client_id_wait: float = 15.0
    """Seconds a first connection keeps trying while the gateway says the client id is in use
    before it fails: after a crash the gateway frees the dead session's id only once it has
    read that socket's end, and a process started again at once must wait for that."""
    readonly: bool = False
    """ib_async's read-only mode: no order synchronisation at connect (market data only)."""

    @property
    def gateway(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def liveness(self) -> LivenessRules:
        return LivenessRules(self.heartbeat_interval, self.heartbeat_timeout, self.heartbeat_misses)


class SessionListener(Protocol):
    def session_up(self, session: GatewaySession) -> None: ...
    def session_down(self, session: GatewaySession, cause: str) -> None: ...
    def session_failed(self, session: GatewaySession, error: BaseException) -> None: ...
    def wire(self, session: GatewaySession, ib: IB) -> None:
        """Subscribe to ``ib``'s events (called before each connection attempt)."""
        ...


class GatewaySession:
    def __init__(
        self, config: SessionConfig, listener: SessionListener, on_order_write: OrderWriteHook
    ) -> None:
        self.config = config
        self._listener = listener
        self._on_order_write = on_order_write
        self.ib: IB | None = None
        self.conn: BoundConnection | None = None
        self.up = False
        self.last_error: BaseException | None = None
        self._down = asyncio.Event()
        self._down_cause = ""
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._first_attempt: asyncio.Future[None] | None = None
        self._upstream = asyncio.Event()
        """Set whenever the gateway's upstream state changed (1100, 1101, 1102)."""
        self._upstream_cause = ""
        self.upstream_up = True
        """False between the gateway's 1100 and its 1101/1102: connected, not carrying orders."""

    @property
    def gateway(self) -> str:
        return self.config.gateway

    @property
    def role(self) -> SessionRole:
        return self.config.role

    @property
    def label(self) -> str:
        return f"{self.config.role.value} {self.config.gateway}"

    def __repr__(self) -> str:
        return f"<GatewaySession {self.label} up={self.up}>"

    def start(self) -> asyncio.Future[None]:
        """Start the keep-alive loop; the returned future settles after the first attempt
        (result None when connected, the exception otherwise)."""
        loop = asyncio.get_running_loop()
        self._first_attempt = loop.create_future()
        # Nobody may await the standby's first attempt; its failure is reported to the listener.
        self._first_attempt.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._task = loop.create_task(self._run(), name=f"ib-session-{self.label}")
        return self._first_attempt

    async def close(self) -> None:
        self._closing = True
        self._mark_down("closed")
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._teardown()

    def kill(self, cause: str) -> None:
        """Declare the session dead now."""
        self._mark_down(cause)

    def patience(self, on: bool) -> None:
        """Silence is no verdict while ``on`` (the gateway is busy with the floor's own
        listings, see :mod:`brokers.ib_liveness`); the watch looks again when it ends."""
        if self.conn is not None:
            self.conn.liveness.patient = on
            self.conn.probed.set()

    def upstream_lost(self, cause: str) -> None:
        """The gateway lost IB (1100): stop carrying orders, stay connected for its 1101/1102."""
        if self.upstream_up:
            self.upstream_up = False
            self._upstream_cause = cause
            self._upstream.set()

    def upstream_restored(self) -> None:
        """The gateway has IB again (1101/1102)."""
        if not self.upstream_up:
            self.upstream_up = True
            self._upstream.set()

    # --- loop -----------------------------------------------------------------------------

    async def _run(self) -> None:
        backoff = self.config.backoff_initial
        started = time.monotonic()
        while not self._closing:
            try:
                await self._connect()
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # noqa: BLE001 - any failure is retried with backoff
                self._teardown()
                self.last_error = exc
                waiting = isinstance(exc, ClientIdInUse) and (
                    time.monotonic() - started < self.config.client_id_wait
                )
                if waiting:
                    log.warning("%s: %s; trying again (a dead session's id is freed late)", self.label, exc)
                else:
                    self._settle_first(exc)
                self._listener.session_failed(self, exc)
                # Backoff between reconnect attempts; no event exists that says "try again now".
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.config.backoff_max)
                continue
            self.last_error = None
            self.up = True
            up_at = time.monotonic()
            self._settle_first(None)
            self._listener.session_up(self)
            cause = await self._serve()
            reported = self.up
            self.up = False
            self._teardown()
            if not self._closing and reported:
                self._listener.session_down(self, cause)
            if time.monotonic() - up_at < MIN_HEALTHY_UPTIME:
                # A gateway that accepts and then drops us at once (e.g. it lost its own
                # upstream) must not be hammered: keep backing off.
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.config.backoff_max)
            else:
                backoff = self.config.backoff_initial

    def _settle_first(self, exc: BaseException | None) -> None:
        fut = self._first_attempt
        if fut is not None and not fut.done():
            if exc is None:
                fut.set_result(None)
            else:
                fut.set_exception(exc)

    async def _connect(self) -> None:
        cfg = self.config
        ib = IB()
        ib.client.MaxRequests = cfg.max_requests_per_s
        plan_parsing(ib.client)
        decode_known_orders(ib.client, ib.wrapper)
        conn = install(ib, cfg.source_address, cfg.liveness)
        conn.on_order_write = self._on_order_write
        self.ib, self.conn = ib, conn
        self._down = asyncio.Event()
        self._down_cause = ""
        self._upstream = asyncio.Event()
        self.upstream_up = True
        closed_early: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        def on_socket_closed(msg: str) -> None:
            if not closed_early.done():
                closed_early.set_result(msg or "connection closed by the gateway")
            self._mark_down(msg or "connection closed by the gateway")

        conn.disconnected += on_socket_closed
        refused_codes: set[int] = set()

        def on_error(req_id: int, code: int, *_: Any) -> None:
            if req_id == -1 and code == ERR_CLIENT_ID_IN_USE:
                refused_codes.add(code)

        ib.errorEvent += on_error
        ib.disconnectedEvent += lambda: self._mark_down("disconnected")
        self._listener.wire(self, ib)
        fetch: Any = StartupFetchALL & ~StartupFetch.ORDERS_COMPLETE
        try:
            connecting = asyncio.ensure_future(
                ib.connectAsync(
                    cfg.host,
                    cfg.port,
                    cfg.client_id,
                    timeout=cfg.connect_timeout,
                    readonly=cfg.readonly,
                    fetchFields=fetch,
                )
            )
            done, _ = await asyncio.wait({connecting, closed_early}, return_when=asyncio.FIRST_COMPLETED)
            if connecting not in done:
                connecting.cancel()
                with contextlib.suppress(BaseException):
                    await connecting
                raise self._refusal(refused_codes, closed_early.result())
            connecting.result()
        except OSError as exc:
            if cfg.source_address and exc.errno in (99, 49):  # EADDRNOTAVAIL on Linux / macOS
                raise SourceAddressRefused(cfg.source_address, cfg.gateway, str(exc)) from exc
            raise
        if not ib.isConnected() or self._down.is_set():
            raise ConnectionError(f"{self.label}: connection lost during synchronisation: {self._down_cause}")
        if not self.upstream_up:
            # Connected to a gateway that has no IB behind it: try again later (with backoff).
            raise ConnectionError(f"{self.label}: {self._upstream_cause}")

    def _refusal(self, codes: set[int], detail: str) -> BaseException:
        """Why the gateway closed the socket during the handshake. One that refuses the client
        id says so (326) before it closes; one that refuses the client's address closes it
        without a word. (ib_async forgets the handshake's server version as the socket closes,
        so the error is the only witness.)"""
        if ERR_CLIENT_ID_IN_USE in codes:
            return ClientIdInUse(self.config.client_id, self.config.gateway)
        return SourceAddressRefused(self.config.source_address or "(default)", self.config.gateway, detail)

    async def _serve(self) -> str:
        """Watch the connected session until it ends; return why. Between the gateway's 1100
        and its 1101/1102 the session is reported down but kept connected and watched."""
        while True:
            cause = await self._watch()
            if cause is not None:
                return cause
            if not self.upstream_up and self.up:
                self.up = False
                if not self._closing:
                    self._listener.session_down(self, self._upstream_cause)
            elif self.upstream_up and not self.up:
                self.up = True
                if not self._closing:
                    self._listener.session_up(self)

    async def _watch(self) -> str | None:
        """Until the session is dead (its cause) or the gateway's upstream changed (None)."""
        conn, ib = self.conn, self.ib
        assert conn is not None and ib is not None
        live = conn.liveness
        down = asyncio.ensure_future(self._down.wait())
        upstream = asyncio.ensure_future(self._upstream.wait())
        try:
            while True:
                now = time.monotonic()
                if live.dead(now):
                    return live.describe(now)
                if live.heartbeat_due(now):
                    # The answer comes as a byte like any other; the future itself is not needed.
                    sent = conn.numMsgSent
                    ib.client.reqCurrentTime()
                    now = time.monotonic()
                    if conn.numMsgSent == sent:
                        # Queued behind ib_async's pacing throttle: it counts from now, or the
                        # watch would ask again and again until the queue moves.
                        live.probed(now)
                conn.probed.clear()
                probed = asyncio.ensure_future(conn.probed.wait())
                wait = max(0.0, live.next_check(now) - now)
                done, _ = await asyncio.wait(
                    {down, upstream, probed}, timeout=wait, return_when=asyncio.FIRST_COMPLETED
                )
                probed.cancel()
                if down in done:
                    return self._down_cause
                if upstream in done:
                    self._upstream.clear()
                    return None
        except ConnectionError as exc:
            return f"heartbeat failed: {exc}"
        finally:
            down.cancel()
            upstream.cancel()

    def _mark_down(self, cause: str) -> None:
        if not self._down.is_set():
            self._down_cause = cause
            self._down.set()

    def _teardown(self) -> None:
        ib = self.ib
        self.up = False
        if ib is not None:
            with contextlib.suppress(Exception):
                ib.disconnect()
            if self.conn is not None and self.conn.transport is not None:
                # A frozen gateway never answers the FIN: drop the socket outright.
                self.conn.transport.abort()


def _compact_trade_repr(trade: Trade) -> str:
    order, status = trade.order, trade.orderStatus
    return (
        f"Trade(orderId={order.orderId}, clientId={order.clientId}, permId={order.permId}, "
        f"orderRef={order.orderRef!r}, status={status.status}, filled={status.filled})"
    )


def compact_trade_logs() -> None:
    """Make ib_async's ``Trade`` print in one short line.

    ib_async formats whole trades (contract, order with ~150 fields, log) into f-strings for
    its info logs on every order event, whatever the log level: ~40 µs each, several per order
    and session, all on the event loop the order path shares. The short form keeps the ids a
    log reader needs. Process-wide and idempotent.

    ib_async's per-message info lines (``openOrder``, ``orderStatus``, ``execDetails``,
    ``commissionReport``, ``position``: three to five per order) are left out too, unless its
    ``ib_async.wrapper`` logger was given a level on purpose: each costs a log record on the
    order path's loop (5,400 of them in a 600-command burst), and they repeat what the floor
    logs of each order event itself (:mod:`hotpath.broker_events`); the gateway's notices reach
    the floor as :class:`~brokers.base.BrokerNotice`. Its warnings and errors still log.
    """
    Trade.__repr__ = _compact_trade_repr  # type: ignore[method-assign,assignment]
    wrapper_log = logging.getLogger("ib_async.wrapper")
    if wrapper_log.level == logging.NOTSET:
        wrapper_log.setLevel(logging.WARNING)


def call_safely(fn: Callable[..., None], *args: Any) -> None:
    try:
        fn(*args)
    except Exception:  # noqa: BLE001 - a consumer's bug must not stop the broker session
        log.exception("broker event handler failed")
