"""The venue process: the deterministic :class:`~paper.venue.engine.Venue` behind a socket.

One asyncio loop owns the venue. A driver task runs the order-flow model in step with the
market clock; each gateway connection's requests are applied at the clock's current time.
Everything the venue emits during one loop turn is written to each gateway as one frame:
order, execution, position and account events to every gateway (they all serve the account),
ticks and depth only to the gateways subscribed to that symbol.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from paper.venue import codec, counters, wire
from paper.venue.clock import MarketClock
from paper.venue.counters import Counters
from paper.venue.engine import Venue, VenueConfig
from paper.venue.events import (
    AccountEvent,
    DepthSnapshotEvent,
    DropClients,
    FreezeGateway,
    KillGateway,
    LoseUpstream,
    TickEvent,
    TradeEvent,
    VenueReset,
)
from paper.venue.flow import NEVER
from paper.venue.messages import (
    ERR_BAD_REQUEST,
    ERR_NO_SECURITY_DEFINITION,
    AccountValuesRequest,
    CancelOrder,
    CompletedOrdersRequest,
    ContractList,
    ContractRequest,
    ContractsRequest,
    DepthRequest,
    ExecutionList,
    ExecutionsRequest,
    GlobalCancel,
    GlobalCancelResult,
    Hello,
    MarketDataRequest,
    NextId,
    NextIdRequest,
    OpenOrdersRequest,
    OrderList,
    PlaceOrder,
    PositionList,
    PositionsRequest,
    RequestFailed,
    Tick,
    TimeRequest,
    VenueTime,
    Welcome,
)
from paper.venue.state import SymbolState
from paper.venue.symbols import with_event_rate

log = logging.getLogger(__name__)

COUNTERS_SAVE_INTERVAL = 1.0
MIN_SLEEP = 0.001
MAX_SLEEP = 0.05
MAX_BUFFERED = 256 * 1024 * 1024
"""A gateway that lets this much pile up unread is cut off rather than exhaust memory."""


class UnknownGateway(KeyError):
    """No connected gateway has that name."""


class Connection(asyncio.Protocol):
    def __init__(self, server: VenueServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.decoder = wire.FrameDecoder()
        self.gateway: str | None = None
        self.outbox: list[list[Any]] = []
        self.ticks: set[str] = set()
        self.depth: set[str] = set()
        self.peer = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.peer = str(transport.get_extra_info("peername"))
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        log.info("gateway %s (%s) disconnected", self.gateway, self.peer)

    def data_received(self, data: bytes) -> None:
        try:
            items = self.decoder.feed(data)
        except codec.CodecError as exc:
            log.warning("closing %s: bad frame: %s", self.peer, exc)
            self.close()
            return
        self.server.handle(self, items)

    def send(self, item: list[Any]) -> None:
        self.outbox.append(item)

    def write_out(self) -> None:
        if not self.outbox or self.transport is None:
            return
        items, self.outbox = self.outbox, []
        if self.transport.is_closing():
            return
        self.transport.write(wire.encode_frame(items))
        if self.transport.get_write_buffer_size() > MAX_BUFFERED:
            log.warning("closing %s (%s): it stopped reading", self.gateway, self.peer)
            self.close()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _event(message: Any) -> list[Any]:
    return [wire.EVENT, 0, codec.encode_message(message)]


class VenueServer:
    def __init__(
        self,
        config: VenueConfig,
        seed: int,
        *,
        time_scale: float = 1.0,
        paused: bool = False,
        start_ns: int | None = None,
        counters_path: Path | None = None,
    ) -> None:
        self.config = config
        self.clock = MarketClock(time_scale, origin_ns=start_ns, paused=paused)
        self.epoch = 0
        self.counters_path = counters_path
        start = Counters()
        if counters_path is not None and counters_path.exists():
            start = counters.load(counters_path).after_restart()
        self.venue = Venue(
            config,
            seed,
            self.clock.now_ns(),
            first_perm_id=start.next_perm_id,
            highest_order_ids=start.highest_order_ids,
            first_exec_seq=start.exec_seq,
        )
        self._saved: Counters | None = None
        self._saved_at = 0.0
        self.connections: set[Connection] = set()
        self._server: asyncio.Server | None = None
        self._driver: asyncio.Task[None] | None = None
        self._wake: asyncio.Future[None] | None = None
        self._sent_ticks: dict[str, Tick] = {}
        self._price_text: dict[tuple[int, int], str] = {}
        self._handlers: dict[type, Callable[[Connection, Any], Any]] = {
            ContractRequest: self._contract,
            ContractsRequest: lambda c, m: ContractList(tuple(s.contract for s in self.venue.states)),
            PlaceOrder: lambda c, m: self.venue.place(m, self.clock.now_ns()),
            CancelOrder: lambda c, m: self.venue.cancel(m.client_id, m.order_id, self.clock.now_ns()),
            GlobalCancel: lambda c, m: GlobalCancelResult(
                self.venue.global_cancel(self.clock.now_ns(), m.account)
            ),
            OpenOrdersRequest: lambda c, m: OrderList(self.venue.open_orders(m.client_id)),
            CompletedOrdersRequest: lambda c, m: OrderList(self.venue.completed_orders(m.client_id)),
            ExecutionsRequest: lambda c, m: ExecutionList(self.venue.executions_matching(m.filter)),
            PositionsRequest: lambda c, m: PositionList(self.venue.positions(m.account)),
            AccountValuesRequest: lambda c, m: self.venue.account_snapshot(m.account),
            MarketDataRequest: self._market_data,
            DepthRequest: self._depth,
            NextIdRequest: lambda c, m: NextId(m.client_id, self.venue.next_valid_id(m.client_id)),
            TimeRequest: lambda c, m: VenueTime(self.clock.now_ns()),
        }

    # ================================================================== lifecycle

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (0: any free port) and start the model; returns the port."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: Connection(self), host, port)
        self._driver = asyncio.create_task(self._drive(), name="venue-driver")
        bound: int = self._server.sockets[0].getsockname()[1]
        return bound

    async def stop(self) -> None:
        if self._driver is not None:
            self._driver.cancel()
        self.save_counters(force=True)
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.close()

    async def _drive(self) -> None:
        while True:
            try:
                self.venue.advance(self.clock.now_ns())
                self.flush()
                self.save_counters()
            except Exception:
                log.exception("venue step failed")
            due = self.venue.next_due_ns()
            delay = MAX_SLEEP if due == NEVER else self.clock.wall_delay(due)
            delay = min(MAX_SLEEP, max(MIN_SLEEP, delay))
            # A bare future and a timer: cheaper than wait_for, which makes a task per sleep.
            loop = asyncio.get_running_loop()
            self._wake = wake = loop.create_future()
            timer = loop.call_later(delay, _settle, wake)
            await wake
            timer.cancel()

    def save_counters(self, *, force: bool = False) -> None:
        """Persist permId and order-id high-water marks, at most once a second."""
        if self.counters_path is None:
            return
        now = time.monotonic()
        if not force and now - self._saved_at < COUNTERS_SAVE_INTERVAL:
            return
        self._saved_at = now
        current = Counters(self.venue.next_perm_id, dict(self.venue.highest_ids), self.venue.exec_seq)
        if current != self._saved:
            try:
                counters.save(self.counters_path, current)
            except OSError as exc:  # a full disk must not stop the market; retried next second
                log.error("cannot save venue counters to %s: %s", self.counters_path, exc)
                return
            self._saved = current

    def wake(self) -> None:
        """Re-plan the driver's sleep (the rate or the clock changed)."""
        if self._wake is not None:
            _settle(self._wake)

    # ================================================================== requests

    def handle(self, conn: Connection, items: list[list[Any]]) -> None:
        venue = self.venue
        venue.advance(self.clock.now_ns())
        self._collect()
        for kind, rid, body in items:
            if kind != wire.REQUEST:
                continue
            try:
                message = codec.decode_message(body)
                reply = self._answer(conn, message)
            except codec.CodecError as exc:
                reply = RequestFailed(ERR_BAD_REQUEST, f"Error validating request: {exc}")
            except Exception as exc:  # a bug must not take the venue down for everyone
                log.exception("request failed: %r", body)
                reply = RequestFailed(ERR_BAD_REQUEST, f"Error processing request: {exc}")
            conn.send([wire.REPLY, rid, codec.encode_message(reply)])
            self._collect()
        conn.write_out()  # the requester first: its reply is what someone is waiting for
        self._write_all()

    def _answer(self, conn: Connection, message: Any) -> Any:
        if isinstance(message, Hello):
            conn.gateway = message.gateway
            log.info("gateway %s connected from %s", message.gateway, conn.peer)
            return Welcome(
                accounts=(self.config.account,),
                seed=self.venue.seed,
                time_scale=self.clock.scale,
                time_ns=self.clock.now_ns(),
                sub_accounts=self.config.sub_accounts,
            )
        if conn.gateway is None:
            return RequestFailed(ERR_BAD_REQUEST, "Hello first")
        handler = self._handlers.get(type(message))
        if handler is None:
            return RequestFailed(ERR_BAD_REQUEST, f"not a request: {type(message).__name__}")
        return handler(conn, message)

    def _unknown(self, what: str) -> RequestFailed:
        return RequestFailed(ERR_NO_SECURITY_DEFINITION, f"No security definition has been found for {what}")

    def _contract(self, conn: Connection, m: ContractRequest) -> Any:
        info = self.venue.contract(m.symbol, m.con_id)
        return info if info is not None else self._unknown(m.symbol or str(m.con_id))

    def _market_data(self, conn: Connection, m: MarketDataRequest) -> Any:
        if self.venue.contract(m.symbol) is None:
            return self._unknown(m.symbol)
        symbol = m.symbol.upper()
        (conn.ticks.add if m.subscribe else conn.ticks.discard)(symbol)
        return self.venue.tick(symbol)

    def _depth(self, conn: Connection, m: DepthRequest) -> Any:
        if self.venue.contract(m.symbol) is None:
            return self._unknown(m.symbol)
        symbol = m.symbol.upper()
        (conn.depth.add if m.subscribe else conn.depth.discard)(symbol)
        return self.venue.depth_snapshot(symbol)

    # ================================================================== output

    def flush(self) -> None:
        self._collect()
        self._write_all()

    def _collect(self) -> None:
        """Move everything the venue emitted into the gateways' outboxes, in venue order."""
        venue = self.venue
        events = venue.drain()
        conns = [c for c in self.connections if c.gateway is not None]
        if events and conns:
            items = [_event(e) for e in events]
            for conn in conns:
                conn.outbox.extend(items)
        # Drained whether or not anyone listens, so prints never pile up; each goes out before
        # the symbol's L1 of the same flush (the tick that shows the last of them).
        for s, prints in venue.drain_trades():
            trade_conns = [c for c in conns if s.symbol in c.ticks]
            if trade_conns:
                item = _event(TradeEvent(s.symbol, tuple(prints)))
                for conn in trade_conns:
                    conn.outbox.append(item)
        changed = venue.drain_depth()
        if not changed or not conns:
            return
        wall = time.time_ns()
        for s, changes in changed:
            symbol = s.symbol
            depth_conns = [c for c in conns if symbol in c.depth]
            if depth_conns:
                item = [wire.EVENT, 0, ["DepthEvent", symbol, self._depth_rows(s, changes), wall]]
                for conn in depth_conns:
                    conn.outbox.append(item)
            tick_conns = [c for c in conns if symbol in c.ticks]
            if tick_conns:
                tick = venue.tick(symbol)
                previous = self._sent_ticks.get(symbol)
                if previous is None or dataclasses.replace(previous, time_ns=tick.time_ns) != tick:
                    self._sent_ticks[symbol] = tick
                    item = _event(TickEvent(tick))
                    for conn in tick_conns:
                        conn.outbox.append(item)

    def _depth_rows(self, s: SymbolState, changes: list[tuple[int, int, int, int]]) -> list[list[Any]]:
        # The codec's LevelChange layout, built directly: this is the busiest path of the venue.
        texts = self._price_text
        index = s.index
        rows = []
        for seq, side, price, size in changes:
            key = (index, price)
            text = texts.get(key)
            if text is None:
                text = texts[key] = str(s.px(price))
            rows.append([seq, side, text, size])
        return rows

    def _write_all(self) -> None:
        for conn in list(self.connections):
            conn.write_out()

    # ================================================================== control

    def _gateways(self, name: str) -> list[Connection]:
        found = [c for c in self.connections if c.gateway == name]
        if not found:
            raise UnknownGateway(name)
        return found

    def gateway_names(self) -> list[str]:
        return sorted({c.gateway for c in self.connections if c.gateway is not None})

    def send_control(self, message: DropClients | FreezeGateway | KillGateway | LoseUpstream) -> None:
        """Forward a control instruction to the named gateway; :class:`UnknownGateway` if absent."""
        for conn in self._gateways(message.gateway):
            conn.send(_event(message))
            conn.write_out()

    def move_price(self, symbol: str, pct: Decimal, duration_ms: float) -> None:
        self.venue.move_price(symbol, pct, int(duration_ms * 1_000_000), self.clock.now_ns())
        self.flush()
        self.wake()

    def set_rate(self, symbol: str | None, rate: float) -> None:
        now = self.clock.now_ns()
        targets = [s.symbol for s in self.venue.states] if symbol is None else [symbol]
        for sym in targets:
            self.venue.set_event_rate(sym, rate, now)
        self.config = dataclasses.replace(
            self.config, symbols=with_event_rate(self.config.symbols, {sym: rate for sym in targets})
        )
        self.flush()
        self.wake()

    def cancel_by_ref(self, order_ref: str) -> list[int]:
        """Cancel every open order of ours with ``order_ref`` as an operator at the broker would
        (behind the client's back: the client learns it from the order's status); their permIds."""
        now = self.clock.now_ns()
        victims = [wo for wo in list(self.venue.open.values()) if wo.spec.order_ref == order_ref]
        for wo in victims:
            self.venue.cancel(wo.client_id, wo.order_id, now)
        self.flush()
        return [wo.perm_id for wo in victims]

    def session_close(self) -> int:
        n = self.venue.session_close(self.clock.now_ns())
        self.flush()
        return n

    def set_clock(self, *, paused: bool | None, advance_ms: float, time_scale: float | None) -> None:
        if time_scale is not None:
            self.clock.set_scale(time_scale)
        if paused is True:
            self.venue.advance(self.clock.now_ns())
            self.clock.pause()
        if advance_ms:
            self.clock.advance(int(advance_ms * 1_000_000))
        if paused is False:
            self.clock.resume()
        self.venue.advance(self.clock.now_ns())
        self.flush()
        self.wake()

    def reset(self, seed: int, *, paused: bool | None = None, time_ns: int | None = None) -> None:
        """Start over from ``seed``: a fresh book and account. Order-id high-water marks and
        permIds carry over, so ids never go backwards and permIds stay unique."""
        self.flush()
        old = self.venue
        if paused is True:
            self.clock.pause()
        if time_ns is not None:
            self.clock.set(time_ns)
        if paused is False:
            self.clock.resume()
        self.epoch += 1
        self.venue = Venue(
            self.config,
            seed,
            self.clock.now_ns(),
            epoch=self.epoch,
            first_perm_id=old.next_perm_id,
            highest_order_ids=old.highest_ids,
            first_exec_seq=old.exec_seq,
        )
        self._sent_ticks.clear()
        for conn in self.connections:
            if conn.gateway is None:
                continue
            conn.send(_event(VenueReset(seed, self.clock.now_ns())))
            for symbol in sorted(conn.depth):
                conn.send(_event(DepthSnapshotEvent(self.venue.depth_snapshot(symbol))))
            conn.send(_event(AccountEvent(self.venue.account_snapshot())))
        self._write_all()
        self.wake()

    def tape(self, symbol: str) -> dict[str, Any]:
        """The symbol's newest prints, oldest first, with the reset epoch they belong to."""
        prints = self.venue.tape(symbol)
        return {
            "symbol": symbol,
            "epoch": self.epoch,
            "prints": [
                {
                    "seq": p.seq,
                    "price": str(p.price),
                    "size": p.size,
                    "time_ns": p.time_ns,
                    "volume": p.volume,
                    "vwap": str(p.vwap),
                }
                for p in prints
            ],
        }

    def status(self) -> dict[str, Any]:
        venue = self.venue
        symbols = []
        for s in venue.states:
            tick = venue.tick(s.symbol)
            symbols.append(
                {
                    "symbol": s.symbol,
                    "bid": str(tick.bid) if tick.bid is not None else None,
                    "ask": str(tick.ask) if tick.ask is not None else None,
                    "mid": str(s.mark()),
                    "last": str(tick.last) if tick.last is not None else None,
                    "volume": tick.volume,
                    "event_rate": s.flow.params.event_rate,
                    "levels": [len(s.book.prices[1]), len(s.book.prices[0])],
                    "seq": s.book.seq,
                }
            )
        return {
            "seed": venue.seed,
            "flow": self.config.flow,
            "epoch": self.epoch,
            "time_ns": self.clock.now_ns(),
            "time_scale": self.clock.scale,
            "paused": self.clock.paused,
            "account": self.config.account,
            "sub_accounts": list(self.config.sub_accounts),
            "symbols": symbols,
            "open_orders": len(venue.open),
            "moves_pending": len(venue.moves.pending),
            "executions": len(venue.executions),
            "gateways": self.gateway_names(),
        }
