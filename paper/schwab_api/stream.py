"""The streamer: Schwab's WebSocket protocol at ``/ws``, fed by the paper venue.

What schwab-py's ``StreamClient`` relies on, kept exactly:

- every request is answered by one ``response`` frame echoing its ``requestid``, ``service``
  and ``command``, code 0 on success (schwab-py raises on any other code), and no response is
  ever sent unasked (schwab-py raises on one); a forced end is a socket close;
- ``ADMIN LOGIN`` takes the bare access token; a bad one gets code 3 and the socket closes;
  one streamer connection per customer: a second login gets code 12 and is closed;
- LEVELONE_EQUITIES sends a full row when a symbol is subscribed, then only changed fields;
  NASDAQ_BOOK sends whole books (every level has its ``"3"`` list of market makers, here one,
  ``PAPR``), at most one per symbol per :data:`BOOK_INTERVAL_S`; NYSE_BOOK is not offered
  (code 11: the paper venue's books are on NASDAQ_BOOK); ACCT_ACTIVITY sends ``SUBSCRIBED``
  then one row per order event, its data field a JSON string;
- a heartbeat ``notify`` every ``heartbeat_s``.

Unknown services answer code 11, malformed requests code 21. Faults for reconnect tests
(:meth:`StreamHub.control`): drop every socket, refuse logins for a while, freeze output.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from decimal import Decimal
from typing import Any

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from paper.schwab_api.service import Emulator
from paper.venue.client import VenueClient
from paper.venue.events import DepthEvent, DepthSnapshotEvent, TickEvent, VenueEvent
from paper.venue.messages import ASK, BID, DepthSnapshot, Tick

log = logging.getLogger("paper.schwab_api.stream")

BOOK_LEVELS = 10
BOOK_INTERVAL_S = 0.1
QUEUE_LIMIT = 10_000
MARKET_MAKER = "PAPR"

CODE_OK = 0
CODE_LOGIN_DENIED = 3
CODE_SERVICE_NOT_AVAILABLE = 11
CODE_CLOSE_CONNECTION = 12
CODE_NOT_LOGGED_IN = 20
CODE_BAD_COMMAND = 21

L1 = "LEVELONE_EQUITIES"
BOOK = "NASDAQ_BOOK"
ACTIVITY = "ACCT_ACTIVITY"


def _ms() -> int:
    return int(time.time() * 1000)


def _price(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def level_one_row(tick: Tick) -> dict[str, Any]:
    """Every field the venue knows, numbered as Schwab's LEVELONE_EQUITIES fields."""
    mark = None
    if tick.bid is not None and tick.ask is not None:
        mark = (tick.bid + tick.ask) / 2
    millis = tick.time_ns // 1_000_000
    row: dict[str, Any] = {
        "1": _price(tick.bid), "2": _price(tick.ask), "3": _price(tick.last), "4": tick.bid_size,
        "5": tick.ask_size, "8": tick.volume, "9": tick.last_size, "12": float(tick.close),
        "33": _price(mark), "34": millis, "35": millis,
    }  # fmt: skip
    return {k: v for k, v in row.items() if v is not None}


class Book:
    """One symbol's whole book, kept from the venue's snapshot and its level changes."""

    def __init__(self, snapshot: DepthSnapshot) -> None:
        self.bids = {lv.price: lv.size for lv in snapshot.bids}
        self.asks = {lv.price: lv.size for lv in snapshot.asks}
        self.time_ns = snapshot.time_ns
        self.last_sent = 0.0
        self.pending: asyncio.TimerHandle | None = None

    def apply(self, event: DepthEvent) -> None:
        for change in event.changes:
            side = self.bids if change.side == BID else self.asks if change.side == ASK else None
            if side is None:
                continue
            if change.size == 0:
                side.pop(change.price, None)
            else:
                side[change.price] = change.size
        self.time_ns = event.time_ns

    def row(self, symbol: str) -> dict[str, Any]:
        millis = self.time_ns // 1_000_000

        def levels(side: dict[Decimal, int], best_first: bool) -> list[dict[str, Any]]:
            prices = sorted(side, reverse=best_first)[:BOOK_LEVELS]
            return [
                {"0": float(p), "1": side[p], "2": 1, "3": [{"0": MARKET_MAKER, "1": side[p], "2": millis}]}
                for p in prices
            ]

        return {"key": symbol, "1": millis, "2": levels(self.bids, True), "3": levels(self.asks, False)}


class Connection:
    """One streamer socket: its queue, its subscriptions, its sequence."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(QUEUE_LIMIT)
        self.logged_in = False
        self.level_one: dict[str, dict[str, Any]] = {}
        """Subscribed symbol -> the fields last sent (deltas are against these)."""
        self.books: set[str] = set()
        self.activity_key: str | None = None
        self.seq = 0
        self.closing = False

    def send(self, frame: dict[str, Any]) -> None:
        if self.closing:
            return
        try:
            self.queue.put_nowait(json.dumps(frame, separators=(",", ":")))
        except asyncio.QueueFull:
            log.warning("streamer client fell %d frames behind; closing it", QUEUE_LIMIT)
            self.close()

    def data(self, service: str, rows: list[dict[str, Any]]) -> None:
        self.send({"data": [{"service": service, "timestamp": _ms(), "command": "SUBS", "content": rows}]})

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            with contextlib.suppress(asyncio.QueueFull):
                self.queue.put_nowait(None)


class StreamHub:
    """Every streamer connection, and the venue subscriptions they share."""

    def __init__(self, emulator: Emulator, heartbeat_s: float) -> None:
        self.emulator = emulator
        self.heartbeat_s = heartbeat_s
        self.connections: set[Connection] = set()
        self.books: dict[str, Book] = {}
        self.frozen_until = 0.0
        self.refuse_until = 0.0
        emulator.venue_listeners.append(self.on_venue_event)
        emulator.on_venue_restored.append(self.resubscribe)
        emulator.book.listeners.append(self.on_activity)

    def mount(self, app: FastAPI) -> None:
        app.add_api_websocket_route("/ws", self.serve)

    def connection_count(self) -> int:
        return len(self.connections)

    # ------------------------------------------------------------------ socket

    async def serve(self, ws: WebSocket) -> None:
        await ws.accept()
        conn = Connection(ws)
        self.connections.add(conn)
        writer = asyncio.create_task(self._write(conn))
        heartbeat = asyncio.create_task(self._heartbeat(conn))
        try:
            while not conn.closing:
                reader = asyncio.ensure_future(ws.receive())
                done, _ = await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
                if reader not in done:
                    reader.cancel()
                    break
                message = reader.result()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                if text is None:  # a binary frame: Schwab's requests are JSON text
                    text = (message.get("bytes") or b"").decode("utf-8", errors="replace")
                await self._handle(conn, text)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            conn.close()
            self.connections.discard(conn)
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(writer, 2.0)
            with contextlib.suppress(Exception):
                await ws.close()
            self._release(conn)

    async def _write(self, conn: Connection) -> None:
        while True:
            frame = await conn.queue.get()
            if frame is None:
                return
            wait = self.frozen_until - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                await conn.ws.send_text(frame)
            except Exception:
                conn.closing = True
                return

    async def _heartbeat(self, conn: Connection) -> None:
        while not conn.closing:
            await asyncio.sleep(self.heartbeat_s)
            if conn.logged_in:
                conn.send({"notify": [{"heartbeat": str(_ms())}]})

    # ------------------------------------------------------------------ requests

    async def _handle(self, conn: Connection, text: str) -> None:
        try:
            message = json.loads(text)
            requests = message["requests"]
            if isinstance(requests, dict):
                requests = [requests]
            if not isinstance(requests, list) or not all(isinstance(r, dict) for r in requests):
                raise ValueError("requests must be a list of objects")
        except (ValueError, KeyError, TypeError) as exc:
            conn.send(_response({}, CODE_BAD_COMMAND, f"malformed request: {exc}"))
            return
        for request in requests:
            await self._request(conn, request)

    async def _request(self, conn: Connection, request: dict[str, Any]) -> None:
        service = str(request.get("service", "")).upper()
        command = str(request.get("command", "")).upper()
        params = request.get("parameters") or {}
        if not isinstance(params, dict):
            conn.send(_response(request, CODE_BAD_COMMAND, "parameters must be an object"))
            return
        if service == "ADMIN":
            await self._admin(conn, request, command, params)
            return
        if not conn.logged_in:
            conn.send(_response(request, CODE_NOT_LOGGED_IN, "log in first (ADMIN LOGIN)"))
            return
        keys = [k.strip() for k in str(params.get("keys", "")).split(",") if k.strip()]
        if command not in ("SUBS", "ADD", "UNSUBS", "VIEW"):
            conn.send(_response(request, CODE_BAD_COMMAND, f"unknown command {command!r}"))
            return
        if service == L1:
            await self._level_one(conn, request, command, keys)
        elif service == BOOK:
            await self._books(conn, request, command, keys)
        elif service == ACTIVITY:
            self._activity(conn, request, command, keys)
        else:
            why = f"service {service} is not available on the paper streamer (books are on NASDAQ_BOOK)"
            conn.send(_response(request, CODE_SERVICE_NOT_AVAILABLE, why))

    async def _admin(
        self, conn: Connection, request: dict[str, Any], command: str, params: dict[str, Any]
    ) -> None:
        if command == "LOGIN":
            if time.monotonic() < self.refuse_until:
                conn.close()
                return
            token = str(params.get("Authorization", ""))
            customer = request.get("SchwabClientCustomerId")
            if customer != self.emulator.customer_id or not self.emulator.tokens.access_valid(
                token, time.time()
            ):
                conn.send(
                    _response(request, CODE_LOGIN_DENIED, "Login Denied.: token is invalid or has expired.")
                )
                conn.close()
                return
            if any(c.logged_in and c is not conn and not c.closing for c in self.connections):
                why = (
                    "CLOSE_CONNECTION: another streamer connection is open for this customer; close it first"
                )
                conn.send(_response(request, CODE_CLOSE_CONNECTION, why))
                conn.close()
                return
            conn.logged_in = True
            conn.send(_response(request, CODE_OK, "server=paper;status=NP"))
        elif command == "LOGOUT":
            conn.send(_response(request, CODE_OK, "SUCCESS"))
            conn.close()
        elif command == "QOS":
            conn.send(_response(request, CODE_OK, "QOS command succeeded"))
        else:
            conn.send(_response(request, CODE_BAD_COMMAND, f"unknown ADMIN command {command!r}"))

    def _venue(self) -> VenueClient | None:
        try:
            return self.emulator.venue()
        except Exception:
            return None

    async def _level_one(
        self, conn: Connection, request: dict[str, Any], command: str, keys: list[str]
    ) -> None:
        symbols = [k.upper() for k in keys if k.upper() in self.emulator.contracts]
        if command == "UNSUBS":
            for s in symbols:
                conn.level_one.pop(s, None)
            conn.send(_response(request, CODE_OK, "UNSUBS command succeeded"))
            self._release(conn)
            return
        if command == "VIEW":
            conn.send(_response(request, CODE_OK, "VIEW command succeeded"))
            return
        if command == "SUBS":
            for s in set(conn.level_one) - set(symbols):
                conn.level_one.pop(s)
        fresh = [s for s in symbols if s not in conn.level_one]
        for s in fresh:
            conn.level_one[s] = {}
        rows = [r for r in [self._tick_row(conn, s) for s in fresh] if r is not None]
        conn.send(_response(request, CODE_OK, f"{command} command succeeded"))
        if rows:
            conn.data(L1, rows)
        self._release(conn)

    def _tick_row(self, conn: Connection, symbol: str) -> dict[str, Any] | None:
        tick = self.emulator.quotes.get(symbol)
        if tick is None or symbol not in conn.level_one:
            return None
        fields = level_one_row(tick)
        conn.level_one[symbol] = fields
        return {"key": symbol, "delayed": False, "assetMainType": "EQUITY", "assetSubType": "COE", **fields}

    async def _books(self, conn: Connection, request: dict[str, Any], command: str, keys: list[str]) -> None:
        symbols = [k.upper() for k in keys if k.upper() in self.emulator.contracts]
        if command == "UNSUBS":
            conn.books.difference_update(symbols)
            conn.send(_response(request, CODE_OK, "UNSUBS command succeeded"))
            self._release(conn)
            return
        if command == "SUBS":
            conn.books.intersection_update(symbols)
        fresh = [s for s in symbols if s not in conn.books]
        for s in fresh:
            if s not in self.books:
                venue = self._venue()
                if venue is not None:
                    self.books[s] = Book(await venue.subscribe_depth(s))
        conn.books.update(fresh)
        conn.send(_response(request, CODE_OK, f"{command} command succeeded"))
        rows = [self.books[s].row(s) for s in fresh if s in self.books]
        if rows:
            conn.data(BOOK, rows)
        self._release(conn)

    def _activity(self, conn: Connection, request: dict[str, Any], command: str, keys: list[str]) -> None:
        if command == "UNSUBS":
            conn.activity_key = None
            conn.send(_response(request, CODE_OK, "UNSUBS command succeeded"))
            return
        if command != "SUBS":
            conn.send(_response(request, CODE_BAD_COMMAND, "ACCT_ACTIVITY takes SUBS and UNSUBS only"))
            return
        conn.activity_key = keys[0] if keys else ""
        conn.send(_response(request, CODE_OK, "SUBS command succeeded"))
        rows = [
            {"seq": self._next_seq(conn), "key": conn.activity_key, "1": account, "2": "SUBSCRIBED", "3": ""}
            for account in self.emulator.config.accounts
        ]
        conn.data(ACTIVITY, rows)

    @staticmethod
    def _next_seq(conn: Connection) -> int:
        seq = conn.seq
        conn.seq += 1
        return seq

    def _release(self, conn: Connection) -> None:
        """Stop the venue's books no connection wants any more (L1 stays: the emulator keeps it)."""
        venue = self._venue()
        wanted_books = {s for c in self.connections for s in c.books}
        for symbol in [s for s in self.books if s not in wanted_books]:
            book = self.books.pop(symbol)
            if book.pending is not None:
                book.pending.cancel()
            if venue is not None:
                asyncio.ensure_future(venue.unsubscribe_depth(symbol))

    # ------------------------------------------------------------------ venue events

    def on_venue_event(self, event: VenueEvent) -> None:
        if isinstance(event, TickEvent):
            self._on_tick(event.tick)
        elif isinstance(event, DepthEvent):
            book = self.books.get(event.symbol)
            if book is not None:
                book.apply(event)
                self._schedule_book(event.symbol, book)
        elif isinstance(event, DepthSnapshotEvent):
            if event.snapshot.symbol in self.books:
                self.books[event.snapshot.symbol] = Book(event.snapshot)
                self._schedule_book(event.snapshot.symbol, self.books[event.snapshot.symbol])

    def _on_tick(self, tick: Tick) -> None:
        fields = level_one_row(tick)
        for conn in self.connections:
            sent = conn.level_one.get(tick.symbol)
            if sent is None or not conn.logged_in:
                continue
            changed = {k: v for k, v in fields.items() if sent.get(k) != v}
            if changed:
                sent.update(changed)
                conn.data(L1, [{"key": tick.symbol, "delayed": False, **changed}])

    def _schedule_book(self, symbol: str, book: Book) -> None:
        if book.pending is not None:
            return
        wait = book.last_sent + BOOK_INTERVAL_S - time.monotonic()
        if wait <= 0:
            self._send_book(symbol, book)
        else:
            book.pending = asyncio.get_running_loop().call_later(wait, self._send_book, symbol, book)

    def _send_book(self, symbol: str, book: Book) -> None:
        book.pending = None
        book.last_sent = time.monotonic()
        row = book.row(symbol)
        for conn in self.connections:
            if symbol in conn.books and conn.logged_in:
                conn.data(BOOK, [row])

    def on_activity(self, account: str, message_type: str, data: dict[str, Any]) -> None:
        text = json.dumps(data, separators=(",", ":"))
        for conn in self.connections:
            if conn.activity_key is not None and conn.logged_in:
                row = {"seq": self._next_seq(conn), "key": conn.activity_key, "1": account, "2": message_type,
                       "3": text}  # fmt: skip
                conn.data(ACTIVITY, [row])

    async def resubscribe(self, venue: VenueClient) -> None:
        """After the venue came back: the quotes as they are now, and fresh books."""
        for tick in list(self.emulator.quotes.values()):
            self._on_tick(tick)
        for symbol in list(self.books):
            self.books[symbol] = Book(await venue.subscribe_depth(symbol))
            self._send_book(symbol, self.books[symbol])

    # ------------------------------------------------------------------ faults

    async def control(self, body: dict[str, Any]) -> dict[str, Any]:
        now = time.monotonic()
        dropped = 0
        if "refuse_logins_s" in body:
            self.refuse_until = now + float(body["refuse_logins_s"])
        if "freeze_s" in body:
            self.frozen_until = now + float(body["freeze_s"])
        if "heartbeat_s" in body:
            self.heartbeat_s = float(body["heartbeat_s"])
        if body.get("drop"):
            for conn in list(self.connections):
                conn.close()
                dropped += 1
        return {"dropped": dropped, "connections": len(self.connections), "heartbeat_s": self.heartbeat_s}


def _response(request: dict[str, Any], code: int, msg: str) -> dict[str, Any]:
    return {
        "response": [
            {
                "service": request.get("service", ""),
                "command": request.get("command", ""),
                "requestid": str(request.get("requestid", "")),
                "SchwabClientCorrelId": request.get("SchwabClientCorrelId", ""),
                "timestamp": _ms(),
                "content": {"code": code, "msg": msg},
            }
        ]
    }
