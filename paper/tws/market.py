"""L1 and L2 fan-out: one venue subscription per symbol, any number of client subscribers.

The gateway holds each subscribed symbol's book (applied from the venue's level changes, in
``seq`` order) and turns every change into positional rows per subscriber. Depth events that
arrive while the subscription request is still in flight are buffered and replayed on top of
the snapshot; a gap in ``seq`` triggers a fresh snapshot and a TWS 317 reset to subscribers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from paper.tws import outgoing
from paper.tws.depth import GatewayBook, apply_change, rows_for_change
from paper.tws.ports import Client
from paper.venue.events import DepthEvent
from paper.venue.messages import ContractInfo, DepthSnapshot, Print, Tick

if TYPE_CHECKING:
    from paper.venue.client import VenueClient

log = logging.getLogger(__name__)

RT_VOLUME_TICKS = "233"
"""The generic tick a client names in ``reqMktData`` to be sent each trade as an RTVolume tick."""

ERR_DEPTH_RESET = 317
RESET_TEXT = (
    "Market depth data has been RESET. Please empty deep book contents before applying any new entries."
)


@dataclass(eq=False, slots=True)
class DepthSubscriber:
    session: Client
    req_id: int
    num_rows: int
    prefix: bytes = b""


@dataclass(eq=False)
class DepthFeed:
    symbol: str
    book: GatewayBook | None = None
    subscribers: list[DepthSubscriber] = field(default_factory=list)
    pending: list[DepthEvent] | None = None
    ready: asyncio.Future[None] | None = None


@dataclass(eq=False)
class TickFeed:
    symbol: str
    last: Tick | None = None
    subscribers: list[tuple[Client, int]] = field(default_factory=list)
    ready: asyncio.Future[None] | None = None
    rt_volume: list[tuple[Client, int]] = field(default_factory=list)
    """The subscribers that asked for RTVolume (generic tick 233): one tick per trade."""


class MarketData:
    def __init__(self, venue: VenueClient) -> None:
        self.venue = venue
        self.depth: dict[str, DepthFeed] = {}
        self.ticks: dict[str, TickFeed] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ L2

    async def subscribe_depth(
        self, session: Client, req_id: int, contract: ContractInfo, num_rows: int
    ) -> None:
        feed = self.depth.get(contract.symbol)
        if feed is None:
            feed = self.depth[contract.symbol] = DepthFeed(contract.symbol, pending=[])
            feed.ready = asyncio.get_running_loop().create_future()
            try:
                snapshot = await self.venue.subscribe_depth(contract.symbol)
            except BaseException:
                del self.depth[contract.symbol]
                feed.ready.set_result(None)
                raise
            self._load(feed, snapshot)
            feed.ready.set_result(None)
        elif feed.ready is not None and not feed.ready.done():
            await asyncio.shield(feed.ready)
        if feed.book is None:
            return
        sub = DepthSubscriber(session, req_id, num_rows)
        feed.subscribers.append(sub)
        session.send_many(
            outgoing.update_mkt_depth(req_id, *row) for row in feed.book.snapshot_rows(num_rows)
        )

    def _load(self, feed: DepthFeed, snapshot: DepthSnapshot) -> None:
        if feed.book is None:
            feed.book = GatewayBook(snapshot)
        else:
            feed.book.load(snapshot)
        pending = feed.pending or []
        feed.pending = None
        for event in pending:
            self.on_depth(event)

    async def unsubscribe_depth(self, session: Client, req_id: int) -> None:
        for symbol, feed in list(self.depth.items()):
            feed.subscribers = [
                s for s in feed.subscribers if not (s.session is session and s.req_id == req_id)
            ]
            await self._maybe_release_depth(symbol, feed)

    async def _maybe_release_depth(self, symbol: str, feed: DepthFeed) -> None:
        if not feed.subscribers and feed.book is not None and self.depth.get(symbol) is feed:
            del self.depth[symbol]
            try:
                await self.venue.unsubscribe_depth(symbol)
            except Exception as exc:  # the venue may be gone; nothing is subscribed either way
                log.info("unsubscribe depth %s: %s", symbol, exc)

    def on_depth(self, event: DepthEvent) -> None:
        feed = self.depth.get(event.symbol)
        if feed is None:
            return
        if feed.pending is not None:
            feed.pending.append(event)
            return
        book = feed.book
        assert book is not None
        subs = feed.subscribers
        out: dict[int, list[bytes]] = {}
        encode = outgoing.update_mkt_depth
        for change in event.changes:
            if change.seq <= book.seq:
                continue
            if change.seq != book.seq + 1:
                log.warning("depth %s: seq gap %d -> %d, resynchronising", event.symbol, book.seq, change.seq)
                self._resync(feed)
                return
            moved = apply_change(book, change)
            if moved is None or not subs:
                continue
            index, before, after = moved
            side_book = book.side(change.side)
            for sub in subs:
                rows = rows_for_change(side_book, change.side, index, before, after, sub.num_rows)
                if rows:
                    frames = out.setdefault(id(sub), [])
                    req_id = sub.req_id
                    for row in rows:
                        frames.append(encode(req_id, *row))
        if out:
            for sub in subs:
                batch = out.get(id(sub))
                if batch:
                    sub.session.send_many(batch)

    def on_depth_snapshot(self, snapshot: DepthSnapshot) -> None:
        feed = self.depth.get(snapshot.symbol)
        if feed is None or feed.book is None:
            return
        feed.book.load(snapshot)
        self._send_reset(feed)

    def _resync(self, feed: DepthFeed) -> None:
        feed.pending = []

        async def fetch() -> None:
            try:
                snapshot = await self.venue.subscribe_depth(feed.symbol)
            except Exception as exc:
                log.warning("depth %s: resynchronisation failed: %s", feed.symbol, exc)
                return
            self._load(feed, snapshot)
            self._send_reset(feed)

        self._spawn(fetch())

    def _send_reset(self, feed: DepthFeed) -> None:
        assert feed.book is not None
        for sub in feed.subscribers:
            frames = [outgoing.error(sub.req_id, ERR_DEPTH_RESET, RESET_TEXT)]
            frames += [
                outgoing.update_mkt_depth(sub.req_id, *row)
                for row in feed.book.snapshot_rows(sub.num_rows)
            ]
            sub.session.send_many(frames)

    # ------------------------------------------------------------------ L1

    async def subscribe_ticks(
        self, session: Client, req_id: int, contract: ContractInfo, snapshot: bool, generic: str = ""
    ) -> None:
        feed = self.ticks.get(contract.symbol)
        if feed is None:
            feed = self.ticks[contract.symbol] = TickFeed(contract.symbol)
            feed.ready = asyncio.get_running_loop().create_future()
            try:
                feed.last = await self.venue.subscribe_ticks(contract.symbol)
            except BaseException:
                del self.ticks[contract.symbol]
                feed.ready.set_result(None)
                raise
            feed.ready.set_result(None)
        elif feed.ready is not None and not feed.ready.done():
            await asyncio.shield(feed.ready)
        tick = feed.last
        frames = [
            outgoing.tick_req_params(req_id, contract.tick_size, contract.exchange),
            outgoing.market_data_type(req_id, 1),
        ]
        if tick is not None:
            frames += _tick_frames(req_id, None, tick)
        if snapshot:
            frames.append(outgoing.tick_snapshot_end(req_id))
        else:
            feed.subscribers.append((session, req_id))
            # Only trades from now on: a print sent again on a new subscription would be
            # counted twice by whoever adds up volume.
            if RT_VOLUME_TICKS in (t.strip() for t in generic.split(",")):
                feed.rt_volume.append((session, req_id))
        session.send_many(frames)

    async def current_tick(self, symbol: str) -> Tick:
        """The latest L1 of ``symbol``: from a live feed, else asked of the venue once."""
        feed = self.ticks.get(symbol)
        if feed is not None and feed.last is not None:
            return feed.last
        tick = await self.venue.subscribe_ticks(symbol)
        if symbol not in self.ticks:
            await self.venue.unsubscribe_ticks(symbol)
        return tick

    def unsubscribe_ticks(self, session: Client, req_id: int) -> bool:
        found = False
        for feed in self.ticks.values():
            before = len(feed.subscribers)
            feed.subscribers = [(s, r) for s, r in feed.subscribers if not (s is session and r == req_id)]
            feed.rt_volume = [(s, r) for s, r in feed.rt_volume if not (s is session and r == req_id)]
            found = found or len(feed.subscribers) != before
        return found

    def on_tick(self, tick: Tick) -> None:
        feed = self.ticks.get(tick.symbol)
        if feed is None:
            return
        previous, feed.last = feed.last, tick
        for session, req_id in feed.subscribers:
            frames = _tick_frames(req_id, previous, tick)
            if frames:
                session.send_many(frames)

    def on_trades(self, symbol: str, prints: tuple[Print, ...]) -> None:
        """Each print as an RTVolume tick to the subscribers that asked for them, in order."""
        feed = self.ticks.get(symbol)
        if feed is None or not feed.rt_volume:
            return
        values = [
            outgoing.rt_volume(p.price, p.size, p.time_ns // 1_000_000, p.volume, p.vwap) for p in prints
        ]
        for session, req_id in feed.rt_volume:
            session.send_many(outgoing.tick_string(req_id, outgoing.RT_VOLUME, value) for value in values)

    # ------------------------------------------------------------------ clients leaving

    def drop_session(self, session: Client) -> None:
        for tick_feed in self.ticks.values():
            tick_feed.subscribers = [(s, r) for s, r in tick_feed.subscribers if s is not session]
            tick_feed.rt_volume = [(s, r) for s, r in tick_feed.rt_volume if s is not session]
        for symbol, feed in list(self.depth.items()):
            before = len(feed.subscribers)
            feed.subscribers = [s for s in feed.subscribers if s.session is not session]
            if before != len(feed.subscribers):
                self._spawn(self._maybe_release_depth(symbol, feed))

    async def adopt(self, old: MarketData) -> bool:
        """Take over ``old``'s subscribers after a venue reconnect: subscribe again on this
        connection and bring every subscriber up to date (317 reset plus fresh rows for
        depth, changed ticks for L1). False if any symbol could not be restored; its
        subscribers are dropped and must re-request."""
        restored = True
        for symbol, tick_feed in old.ticks.items():
            if not tick_feed.subscribers:
                continue
            try:
                tick = await self.venue.subscribe_ticks(symbol)
            except Exception as exc:
                log.warning("L1 %s not restored: %s", symbol, exc)
                restored = False
                continue
            self.ticks[symbol] = TickFeed(
                symbol, tick, list(tick_feed.subscribers), rt_volume=list(tick_feed.rt_volume)
            )
            for session, req_id in tick_feed.subscribers:
                frames = _tick_frames(req_id, tick_feed.last, tick)
                if frames:
                    session.send_many(frames)
        for symbol, depth_feed in old.depth.items():
            if not depth_feed.subscribers:
                continue
            feed = self.depth[symbol] = DepthFeed(symbol, pending=[])
            try:
                snapshot = await self.venue.subscribe_depth(symbol)
            except Exception as exc:
                log.warning("L2 %s not restored: %s", symbol, exc)
                del self.depth[symbol]
                restored = False
                continue
            feed.subscribers = list(depth_feed.subscribers)
            self._load(feed, snapshot)
            self._send_reset(feed)
        return restored

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _tick_frames(req_id: int, old: Tick | None, new: Tick) -> list[bytes]:
    """Ticks for what changed between ``old`` and ``new`` (everything when ``old`` is None)."""
    frames: list[bytes] = []
    if old is None or old.bid != new.bid or old.bid_size != new.bid_size:
        frames.append(outgoing.tick_price(req_id, outgoing.BID, new.bid, new.bid_size))
    if old is None or old.ask != new.ask or old.ask_size != new.ask_size:
        frames.append(outgoing.tick_price(req_id, outgoing.ASK, new.ask, new.ask_size))
    if new.last is not None and (old is None or old.last != new.last or old.last_size != new.last_size):
        frames.append(outgoing.tick_price(req_id, outgoing.LAST, new.last, new.last_size))
    if old is None or old.volume != new.volume:
        frames.append(outgoing.tick_size(req_id, outgoing.VOLUME, new.volume))
    if old is None or old.close != new.close:
        frames.append(outgoing.tick_price(req_id, outgoing.CLOSE, new.close, 0))
    return frames
