"""The two ends of each path ``bench.subscriptions`` measures, each run in a child process.

Servers:

- **relay** (the baseline): the hub's own Kafka consumer set-up (:func:`api.hub_feeds.start_consumer`)
  and a bare WebSocket server that writes every fetched batch of ``market.depth`` records, as
  they are, to every client (one frame per batch, records joined by newlines). No book, no
  deltas, no GraphQL: the least any relay of the same records can do.
- **hub**: :class:`api.hub.Hub` behind a bare WebSocket server: each client is one
  ``subscribe_book`` subscription, each item one JSON frame shaped like the GraphQL
  ``orderBook`` payload. Isolates the hub's cost from GraphQL's.
- **graphql**: the real API process (``python -m api``), started by the bench's supervisor.

Clients: one process per path holds all of that path's subscribers, stamps each frame on
arrival (``time.time_ns``) and keeps per frame only the newest venue time it covers; book
frames are also applied to a :class:`trading.depth_book.PriceBook` so gaps and a wrong final
book are caught.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import uvloop

from trading.depth_book import BookDelta, BookSnapshot, Level, PriceBook, SequenceGap

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TS = re.compile(rb'"ts":"([^"]+)"')

ORDER_BOOK_SUBSCRIPTION = """subscription Book($symbol: String!, $depth: Int!) {
  orderBook(symbol: $symbol, depth: $depth) {
    __typename
    ... on BookSnapshot { sequence venueTs bids { price size } asks { price size } }
    ... on BookDelta { sequence previousSequence venueTs bids { price size } asks { price size } }
  }
}"""


def micros(ts: datetime) -> int:
    """Microseconds since the epoch, exactly (ISO timestamps carry microseconds)."""
    return (ts - EPOCH) // timedelta(microseconds=1)


# --- book frames ----------------------------------------------------------------------------


def _levels(levels: tuple[Level, ...]) -> list[dict[str, Any]]:
    return [{"price": str(p), "size": s} for p, s in levels]


def book_frame(item: BookSnapshot | BookDelta) -> str:
    """The hub path's frame: the GraphQL ``orderBook`` payload's shape, decimals as strings."""
    frame: dict[str, Any] = {
        "__typename": type(item).__name__,
        "sequence": item.sequence,
        "venueTs": item.venue_ts.isoformat(),
        "bids": _levels(item.bids),
        "asks": _levels(item.asks),
    }
    if isinstance(item, BookDelta):
        frame["previousSequence"] = item.previous_sequence
    return json.dumps(frame, separators=(",", ":"))


def parse_book_frame(data: dict[str, Any], symbol: str) -> BookSnapshot | BookDelta:
    def side(name: str) -> tuple[Level, ...]:
        return tuple((Decimal(level["price"]), int(level["size"])) for level in data[name])

    venue_ts = datetime.fromisoformat(data["venueTs"])
    if data["__typename"] == "BookSnapshot":
        return BookSnapshot(symbol, data["sequence"], venue_ts, side("bids"), side("asks"))
    return BookDelta(symbol, data["sequence"], data["previousSequence"], venue_ts, side("bids"), side("asks"))


# --- what a client saw ----------------------------------------------------------------------


@dataclass
class Seen:
    """One subscriber's frames: (receive ns, newest venue µs covered), in arrival order."""

    frames: list[tuple[int, int]] = field(default_factory=list)
    records: int = 0
    """Relay: depth records received."""
    out_of_order: int = 0
    """A frame older than one before it (relay), or a delta that does not link (book paths)."""
    book: tuple[tuple[Level, ...], tuple[Level, ...]] | None = None
    """Book paths: the book the frames built, at the end."""
    error: str | None = None


class BookFollower:
    def __init__(self, symbol: str, seen: Seen) -> None:
        self.symbol = symbol
        self.seen = seen
        self.book: PriceBook | None = None

    def on_frame(self, received_ns: int, data: dict[str, Any]) -> None:
        item = parse_book_frame(data, self.symbol)
        if isinstance(item, BookSnapshot) or self.book is None:
            if isinstance(item, BookSnapshot):
                self.book = PriceBook(item)
        else:
            try:
                self.book.apply(item)
            except SequenceGap:
                self.seen.out_of_order += 1
        self.seen.frames.append((received_ns, micros(item.venue_ts)))
        if self.book is not None:
            self.seen.book = self.book.levels()


# --- clients --------------------------------------------------------------------------------


def clients_main(path: str, url: str, n: int, symbol: str, depth: int, token: str | None, ready: Any,
                 stop: Any, out: Any) -> None:  # fmt: skip
    """Child process: ``n`` subscribers of ``path`` until ``stop``; puts their :class:`Seen`."""
    uvloop.run(_clients(path, url, n, symbol, depth, token, ready, stop, out))


async def _clients(path: str, url: str, n: int, symbol: str, depth: int, token: str | None, ready: Any,
                   stop: Any, out: Any) -> None:  # fmt: skip
    import time

    from websockets.asyncio.client import connect
    from websockets.typing import Subprotocol

    seen = [Seen() for _ in range(n)]
    subscribed = 0
    all_subscribed = asyncio.Event()

    async def relay(ws: Any, s: Seen) -> None:
        # Records in a frame are in venue order: the newest is the last, and only it is parsed
        # (parsing every record's time would make this client, not the relay, the bottleneck).
        newest = 0
        async for message in ws:
            now = time.time_ns()
            data = message if isinstance(message, bytes) else message.encode()
            last = TS.search(data, data.rfind(b'"ts":"'))
            if last is None:
                continue
            ts = micros(datetime.fromisoformat(last.group(1).decode()))
            if ts < newest:
                s.out_of_order += 1
            newest = max(newest, ts)
            s.records += data.count(b'"ts":"')
            s.frames.append((now, newest))

    async def hub(ws: Any, s: Seen) -> None:
        follower = BookFollower(symbol, s)
        async for message in ws:
            follower.on_frame(time.time_ns(), json.loads(message))

    async def graphql(ws: Any, s: Seen) -> None:
        follower = BookFollower(symbol, s)
        async for message in ws:
            now = time.time_ns()
            data = json.loads(message)
            if data.get("type") == "next":
                follower.on_frame(now, data["payload"]["data"]["orderBook"])
            elif data.get("type") == "ping":
                await ws.send(json.dumps({"type": "pong"}))
            elif data.get("type") in ("error", "complete"):
                s.error = json.dumps(data)[:300]
                return

    async def one(i: int) -> None:
        nonlocal subscribed
        protocols = [Subprotocol("graphql-transport-ws")] if path == "graphql" else None
        async with connect(url, subprotocols=protocols, max_size=None, compression=None) as ws:
            if path == "graphql":
                await ws.send(json.dumps({"type": "connection_init", "payload": {"token": token}}))
                ack = json.loads(await ws.recv())
                if ack.get("type") != "connection_ack":
                    raise RuntimeError(f"graphql-transport-ws: no connection_ack: {ack}")
                await ws.send(
                    json.dumps(
                        {
                            "id": "1",
                            "type": "subscribe",
                            "payload": {
                                "query": ORDER_BOOK_SUBSCRIPTION,
                                "variables": {"symbol": symbol, "depth": depth},
                            },
                        }
                    )
                )
            elif path == "hub":
                await ws.send(json.dumps({"symbol": symbol, "depth": depth}))
            subscribed += 1
            if subscribed == n:
                all_subscribed.set()
            await {"relay": relay, "hub": hub, "graphql": graphql}[path](ws, seen[i])

    async def guarded(i: int) -> None:
        try:
            await one(i)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            seen[i].error = f"{type(exc).__name__}: {exc}"[:300]
            all_subscribed.set()

    tasks = [asyncio.create_task(guarded(i)) for i in range(n)]
    await all_subscribed.wait()
    # Give the server a moment to register the last subscription before the market starts.
    await asyncio.sleep(0.2)
    ready.set()
    await asyncio.to_thread(stop.wait)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    out.put(seen)


# --- servers --------------------------------------------------------------------------------


def relay_main(
    bootstrap: str, host: str, port: int, fetch_wait_ms: int, ready: Any, stop: Any, out: Any
) -> None:
    """Child process: the relay until ``stop``; then puts (receive ns, newest venue µs) per
    fetched batch: the Kafka hop alone, which every path pays."""
    uvloop.run(_relay(bootstrap, host, port, fetch_wait_ms, ready, stop, out))


async def _relay(
    bootstrap: str, host: str, port: int, fetch_wait_ms: int, ready: Any, stop: Any, out: Any
) -> None:
    import time

    from websockets.asyncio.server import broadcast, serve

    from api.hub_feeds import start_consumer
    from bus.topics import MARKET_DEPTH

    clients: set[Any] = set()
    fetched: list[tuple[int, int]] = []

    async def handler(ws: Any) -> None:
        clients.add(ws)
        try:
            await ws.wait_closed()
        finally:
            clients.discard(ws)

    async def relay() -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=1000)
            now = time.time_ns()
            for tp, records in batches.items():
                if tp.topic == MARKET_DEPTH:
                    frame = b"\n".join(r.value for r in records if r.value is not None)
                    broadcast(clients, frame)
                    last = TS.search(frame, frame.rfind(b'"ts":"'))
                    if last is not None:
                        fetched.append((now, micros(datetime.fromisoformat(last.group(1).decode()))))

    consumer = await start_consumer(bootstrap, fetch_wait_ms=fetch_wait_ms)
    async with serve(handler, host, port, compression=None, max_size=None):
        ready.set()
        task = asyncio.create_task(relay())
        await asyncio.to_thread(stop.wait)
        task.cancel()
    await consumer.stop()
    out.put(fetched)


def hub_main(settings_json: str, port: int, ready: Any) -> None:
    uvloop.run(_hub(settings_json, port, ready))


async def _hub(settings_json: str, port: int, ready: Any) -> None:
    import asyncpg
    from websockets.asyncio.server import serve

    from api.hub import Hub
    from bus.topics import SECURITY_EVENTS
    from config.settings import FloorSettings
    from ledger.access import LedgerAccess
    from observability.security import SecurityLog

    settings = FloorSettings.model_validate_json(settings_json)
    pool = await asyncpg.create_pool(settings.role_url("api"), min_size=1, max_size=2)
    hub = Hub(pool, SecurityLog(LedgerAccess(pool), None, SECURITY_EVENTS), settings)
    await hub.start()

    async def handler(ws: Any) -> None:
        ask = json.loads(await ws.recv())
        sub = hub.subscribe_book(ask["symbol"], int(ask["depth"]))
        try:
            async for item in sub:
                await ws.send(book_frame(item))
        finally:
            sub.close()

    async with serve(handler, settings.host, port, compression=None, max_size=None):
        ready.set()
        await asyncio.Future()
