"""The API's subscription hub: one feed in (:mod:`api.hub_feeds`), one mailbox per subscriber
out (:mod:`api.mailboxes`).

Three tasks feed it: the Kafka loop (verified ``market.depth`` into the books of the floor's
symbols, verified ``orders.events`` to the order-event subscribers and to whoever awaits a
command's outcome), the ``market.trades`` loop on a consumer of its own (verified trades into
the tapes, :mod:`api.hub_trades`: a restart's rebuild of the session holds nothing else back)
and the Postgres poll (the breaker's state, security events). Neither ever awaits a
subscriber: handing an item over is a synchronous put into a bounded mailbox, and a subscriber
that lets its mailbox fill is ended with ``resync.overflow`` and forgotten (a tape subscriber
is sent a fresh snapshot instead). So one stuck client costs the others nothing.

No task ends on an error. A fetch that fails is tried again; a record that can be neither
believed nor refused (the key registry cannot be read) or that fails for any other reason is
logged, the streams it would have fed end with ``resync.feed_interrupted`` (their subscribers
refetch and subscribe again; a tape is instead marked incomplete and sent again), and for
:data:`RETRY_S` after it the records of that topic are not judged either (so an outage is not a
registry read per record), then judging resumes.

Order books: only for the floor's symbols (``FLOOR_HOTPATH_SYMBOLS``); subscribing to another
is refused with :class:`UnknownSymbol` and leaves nothing behind. A depth record replaces the
symbol's book (:class:`trading.depth_book.SymbolBook`, a new ``sequence`` when anything
changed) and wakes that symbol's subscribers; each, when it next reads, is sent the difference
from what it was last sent, so a slow reader gets fewer, bigger deltas and never a gap. A record
that says the broker's feed had a gap (``"gap": true``, after a failover or reconnect) makes
every subscriber of the symbol be sent a fresh snapshot marked ``gap`` instead of a delta.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer

from api.hub_feeds import (
    BreakerStatus,
    DepthRecords,
    LedgerState,
    OrderRecords,
    claimed_symbol,
    record_verifier,
    start_consumer,
)
from api.hub_trades import TradeFeed
from api.mailboxes import (
    FEED_INTERRUPTED,
    HUB_STOPPED,
    OVERFLOW,
    BookSubscription,
    LatestSubscription,
    QueueSubscription,
    ResyncRequired,
    Subscription,
)
from bus.log_restarts import LogFollower, Realigned
from bus.topics import MARKET_DEPTH, MARKET_TRADES, ORDERS_EVENTS
from config.settings import FloorSettings
from ledger.db import Db
from observability.security import SecurityRecorder
from trading.depth_book import BookDelta, BookSnapshot, SymbolBook
from trading.order_events import EventKind, OrderEvent
from trading.security_events import SecurityEvent
from trading.symbols import UNKNOWN_SYMBOL, parse_symbols, unknown_symbol_detail
from trading.trade_tape import CountedTrade, TapeSnapshot

__all__ = [
    "BookDelta",
    "BookSnapshot",
    "BreakerStatus",
    "CountedTrade",
    "Hub",
    "HubStats",
    "ResyncRequired",
    "Subscription",
    "TapeSnapshot",
    "UnknownSymbol",
]

log = logging.getLogger(__name__)

OUTCOME_KINDS = frozenset({EventKind.ACCEPTED, EventKind.REJECTED})
RETRY_S = 0.5
"""After a failed fetch, the wait before the next; after a record that could not be judged,
how long the topic's records are not judged either."""


class RecordNotJudged(RuntimeError):
    """A record that comes while its topic's records are not judged (see :data:`RETRY_S`)."""


class UnknownSymbol(ValueError):
    """A book asked for a symbol the floor does not trade (``reason``: ``unknown_symbol``)."""

    reason = UNKNOWN_SYMBOL

    def __init__(self, symbol: str, traded: frozenset[str]) -> None:
        super().__init__(unknown_symbol_detail(symbol, traded))
        self.detail = str(self)


@dataclass(frozen=True)
class HubStats:
    subscribers: int
    """Open subscriptions of every kind."""
    dropped: int
    """Subscriptions ended because they overflowed (since start)."""
    depth_lag_ms: float | None
    """The newest depth record: venue time to the hub having it (same-host clocks)."""
    depth_records: int
    order_records: int
    unverified: int
    """Records of any topic dropped because no writer of the topic signed them."""
    undecodable: int
    """Records of any topic that could not be read (depth and trades: naming no symbol, or signed
    and unreadable)."""
    untraded: int
    """Depth and trades records naming a symbol the floor does not trade, dropped unjudged."""
    superseded: int
    """Depth records not judged because a newer one of their symbol in the same fetch was
    believed (each record is the whole book)."""
    interrupted: int
    """Records that could be neither believed nor refused (each ended its topic's streams)."""
    trade_records: int = 0
    """Verified ``market.trades`` records."""
    trades: int = 0
    """Trades counted this run (repeats and earlier sessions' left out)."""
    tape_resent: int = 0
    """Tape snapshots sent to subscribers that fell behind, in place of the trades they missed."""
    depth_gaps: int = 0
    """Depth records that said the broker's feed had a gap (each resynced the symbol's books)."""


class Hub:
    def __init__(
        self,
        db: Db,
        security: SecurityRecorder,
        settings: FloorSettings,
        *,
        breaker_agent: str | None = "floor-breaker",
    ) -> None:
        self._settings = settings
        verifier = record_verifier(db)
        self._orders = OrderRecords(verifier, security)
        self._depth = DepthRecords(verifier, security, frozenset(parse_symbols(settings.hotpath_symbols)))
        self._trades = TradeFeed(verifier, security, self._depth.symbols, settings.api_subscription_queue)
        self._ledger = LedgerState(db, breaker_agent)
        self._books: dict[str, SymbolBook] = {}
        self._book_subs: dict[str, set[BookSubscription]] = {}
        self._order_subs: dict[QueueSubscription[OrderEvent], Callable[[OrderEvent], bool]] = {}
        self._breaker_subs: set[LatestSubscription[BreakerStatus]] = set()
        self._security_subs: set[QueueSubscription[SecurityEvent]] = set()
        self._outcomes: dict[str, asyncio.Future[OrderEvent]] = {}
        self._breaker: BreakerStatus | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._trades_consumer: AIOKafkaConsumer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._dropped = 0
        self._depth_records = 0
        self._depth_gaps = 0
        self._order_records = 0
        self._depth_lag_ms: float | None = None
        self._interrupted = 0
        self._unjudged_until: dict[str, float] = {}
        """Per topic: until when (monotonic) records are not judged, after one could not be."""

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Read the breaker's state, open the consumer (positioned: a record produced after
        this returns is seen) and start the feeds."""
        self._breaker = await self._ledger.start()
        wait_ms = self._settings.api_feed_fetch_wait_ms
        self._consumer = await start_consumer(
            self._settings.kafka, fetch_wait_ms=wait_ms, topics=(MARKET_DEPTH, ORDERS_EVENTS)
        )
        self._trades_consumer = await start_consumer(
            self._settings.kafka, fetch_wait_ms=wait_ms, topics=(MARKET_TRADES,)
        )
        await self._trades.positioned(self._trades_consumer)
        self._tasks = [
            asyncio.create_task(self._consume(self._consumer), name="hub-kafka"),
            asyncio.create_task(self._poll(), name="hub-postgres"),
        ]
        if self._trades_consumer.assignment():
            self._tasks.append(
                asyncio.create_task(self._trades.run(self._trades_consumer, self._judge), name="hub-trades")
            )

    async def stop(self) -> None:
        """Stop the feeds; every open subscription ends with ``resync.hub_stopped`` and every
        awaited outcome is cancelled."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for consumer in (self._consumer, self._trades_consumer):
            if consumer is not None:
                await consumer.stop()
        self._consumer = self._trades_consumer = None
        for sub in self._all_subscriptions():
            sub.end(HUB_STOPPED, "the API is stopping: reconnect and resubscribe")
        self._book_subs.clear()
        self._order_subs.clear()
        self._breaker_subs.clear()
        self._security_subs.clear()
        for future in self._outcomes.values():
            future.cancel()
        self._outcomes.clear()

    def _all_subscriptions(self) -> list[Subscription[Any]]:
        subs: list[Subscription[Any]] = [s for group in self._book_subs.values() for s in group]
        subs += self._trades.all_subscriptions()
        return subs + list(self._order_subs) + list(self._breaker_subs) + list(self._security_subs)

    # --- subscribing -------------------------------------------------------------------------

    @property
    def symbols(self) -> frozenset[str]:
        """The symbols the floor trades: the only ones with books."""
        return self._depth.symbols

    def book(self, symbol: str, depth: int) -> BookSnapshot | None:
        """The top ``depth`` levels a side now, as of the newest verified depth record (its
        ``venue_ts``: the venue's time of that book, for whoever must refuse a stale one);
        None for a symbol the floor does not trade or no record has named yet."""
        book = self._books.get(symbol)
        return None if book is None else book.snapshot(depth)

    def subscribe_book(self, symbol: str, depth: int) -> Subscription[BookSnapshot | BookDelta]:
        """A snapshot as soon as the symbol has a book, then deltas (see :mod:`api.mailboxes`).
        :class:`UnknownSymbol` for a symbol the floor does not trade (nothing is kept for it)."""
        if symbol not in self._depth.symbols:
            raise UnknownSymbol(symbol, self._depth.symbols)
        book = self._book(symbol)
        subs = self._book_subs.setdefault(symbol, set())
        sub = BookSubscription(lambda s: self._leave_book(symbol, s), book, depth)
        subs.add(sub)
        return sub

    def _leave_book(self, symbol: str, sub: BookSubscription) -> None:
        """Forget ``sub``; and a symbol nobody watches and no record has named, so subscribing
        to made-up symbols leaves nothing behind."""
        subs = self._book_subs.get(symbol)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._book_subs[symbol]
        book = self._books.get(symbol)
        if book is not None and book.venue_ts is None and symbol not in self._book_subs:
            del self._books[symbol]

    def subscribe_trades(self, symbol: str) -> Subscription[TapeSnapshot | CountedTrade]:
        """The symbol's tape this session (a snapshot, once the hub has read the session's
        trades), then each trade counted from then on; a snapshot again at a new session or
        if the subscriber fell behind (see :class:`~api.mailboxes.TapeSubscription`).
        :class:`UnknownSymbol` for a symbol the floor does not trade."""
        if symbol not in self._trades.symbols:
            raise UnknownSymbol(symbol, self._trades.symbols)
        return self._trades.subscribe(symbol)

    def tape(self, symbol: str) -> TapeSnapshot | None:
        """The symbol's tape now; None for a symbol the floor does not trade or before the hub
        has read the session's trades."""
        if symbol not in self._trades.symbols or not self._trades.ready:
            return None
        return self._trades.snapshot(symbol)

    def subscribe_order_events(self, accept: Callable[[OrderEvent], bool]) -> Subscription[OrderEvent]:
        """Verified order events from now on for which ``accept`` (the caller's visibility,
        called synchronously by the hub) is true."""
        sub: QueueSubscription[OrderEvent] = QueueSubscription(
            self._forget_order_subscriber,
            self._settings.api_subscription_queue,
        )
        self._order_subs[sub] = accept
        return sub

    def _forget_order_subscriber(self, sub: QueueSubscription[OrderEvent]) -> None:
        self._order_subs.pop(sub, None)

    def subscribe_breaker(self) -> Subscription[BreakerStatus]:
        """The breaker's state now, then each change (only the newest if several came)."""
        sub: LatestSubscription[BreakerStatus] = LatestSubscription(
            lambda s: self._breaker_subs.discard(s), self._breaker
        )
        self._breaker_subs.add(sub)
        return sub

    def subscribe_security_events(self) -> Subscription[SecurityEvent]:
        """Security events recorded from now on (who may see them is the caller's to decide)."""
        sub: QueueSubscription[SecurityEvent] = QueueSubscription(
            lambda s: self._security_subs.discard(s),
            self._settings.api_subscription_queue,
        )
        self._security_subs.add(sub)
        return sub

    def breaker(self) -> BreakerStatus | None:
        """The breaker's state as last read (None before :meth:`start`)."""
        return self._breaker

    # --- outcomes ----------------------------------------------------------------------------

    def expect_outcome(self, command_id: str) -> asyncio.Future[OrderEvent]:
        """Resolves with the first verified ``accepted`` or ``rejected`` record of
        ``command_id``. Call it before the command is published; :meth:`forget_outcome` when
        no longer waiting (a timeout)."""
        future = self._outcomes.get(command_id)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._outcomes[command_id] = future
        return future

    def forget_outcome(self, command_id: str) -> None:
        future = self._outcomes.pop(command_id, None)
        if future is not None and not future.done():
            future.cancel()

    # --- stats -------------------------------------------------------------------------------

    def stats(self) -> HubStats:
        return HubStats(
            subscribers=len(self._all_subscriptions()),
            dropped=self._dropped,
            depth_lag_ms=self._depth_lag_ms,
            depth_records=self._depth_records,
            order_records=self._order_records,
            unverified=self._orders.unverified + self._depth.unverified + self._trades.unverified,
            undecodable=self._orders.undecodable + self._depth.undecodable + self._trades.undecodable,
            untraded=self._depth.untraded + self._trades.untraded,
            superseded=self._depth.superseded,
            interrupted=self._interrupted,
            trade_records=self._trades.records,
            trades=self._trades.trades,
            tape_resent=self._trades.resent(),
            depth_gaps=self._depth_gaps,
        )

    # --- feeds -------------------------------------------------------------------------------

    def _book(self, symbol: str) -> SymbolBook:
        book = self._books.get(symbol)
        if book is None:
            book = self._books[symbol] = SymbolBook(symbol)
        return book

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        follower = LogFollower(consumer, (MARKET_DEPTH, ORDERS_EVENTS))
        while True:
            self._log_restarted(await follower.check())
            try:
                batches = await consumer.getmany(timeout_ms=1000)
            except Exception:
                log.exception("reading %s and %s failed; trying again", MARKET_DEPTH, ORDERS_EVENTS)
                await asyncio.sleep(RETRY_S)
                continue
            moved: set[str] = set()
            for tp, records in batches.items():
                fetched = [
                    (f"{tp.topic}[{tp.partition}]@{r.offset}", r.value)
                    for r in records
                    if r.value is not None
                ]
                if tp.topic == MARKET_DEPTH:
                    await self._on_depth_records(fetched, moved)
                elif tp.topic == ORDERS_EVENTS:
                    for where, raw in fetched:
                        await self._judge(ORDERS_EVENTS, where, raw, self._on_order_record)
            # One wake-up per symbol per batch: its subscribers read the newest book.
            for symbol in moved:
                for sub in self._book_subs.get(symbol, ()):
                    sub.changed()

    async def _on_depth_records(self, fetched: list[tuple[str, bytes]], moved: set[str]) -> None:
        """Per symbol, the newest record that verifies becomes its book (see
        :class:`~api.hub_feeds.DepthRecords`)."""
        for records in self._depth.claims(fetched).values():
            for i in range(len(records) - 1, -1, -1):
                where, raw = records[i]
                taken = await self._judge(
                    MARKET_DEPTH, where, raw, lambda w, r: self._on_depth_record(w, r, moved)
                )
                if taken:
                    self._depth.superseded += i
                    await self._older_gap(records[:i])
                    break

    async def _on_depth_record(self, where: str, raw: bytes, moved: set[str]) -> bool:
        depth = await self._depth.judged(where, raw)
        if depth is None:
            return False
        book = self._book(depth.symbol)
        if book.venue_ts is not None and depth.venue_ts < book.venue_ts:
            # Older than the book (a redelivered or replayed tail): not the newest state, so
            # the record fetched before it is judged next and may be.
            return False
        self._depth_records += 1
        self._depth_lag_ms = (datetime.now(UTC) - depth.venue_ts).total_seconds() * 1000
        if book.update(depth):
            moved.add(depth.symbol)
        if depth.gap:
            self._gap(depth.symbol)
        return True

    async def _older_gap(self, older: list[tuple[str, bytes]]) -> None:
        """A record superseded in its fetch may still say the feed had a gap before it: the
        newest that claims so is verified (a forged claim is refused like any forgery) and, if
        genuine, counts as the gap it reports."""
        for where, raw in reversed(older):
            if b'"gap"' not in raw:
                continue
            depth = await self._depth.judged(where, raw)
            if depth is not None and depth.gap:
                self._gap(depth.symbol)
            return

    def _gap(self, symbol: str) -> None:
        """The symbol's feed had a gap: each subscriber is sent a fresh snapshot marked so."""
        self._depth_gaps += 1
        for sub in self._book_subs.get(symbol, ()):
            sub.resync()

    async def _on_order_record(self, where: str, raw: bytes) -> bool:
        event = await self._orders.verified(where, raw)
        if event is not None:
            self._on_order_event(event)
        return True

    async def _judge(
        self, topic: str, where: str, raw: bytes, handle: Callable[[str, bytes], Awaitable[bool]]
    ) -> bool:
        """``handle(where, raw)``: whether the record was judged (believed, or not refused), and
        on any error, the streams it would have fed ended (then True: nothing older of it
        can be judged either)."""
        until = self._unjudged_until.get(topic)
        try:
            if until is not None and time.monotonic() < until:
                raise RecordNotJudged(
                    f"{topic} records are not judged for {RETRY_S} s after one could not be"
                )
            taken = await handle(where, raw)
        except Exception as exc:
            self._interrupt(topic, where, raw, exc)
            return True
        if until is not None:
            del self._unjudged_until[topic]
            log.warning("%s records are judged again from %s on", topic, where)
        return taken

    def _log_restarted(self, moved: Realigned) -> None:
        """The broker lost the order events it held (see :mod:`bus.log_restarts`): the order
        streams may have a hole, so they end and their subscribers refetch. The books need
        nothing: the next depth record replaces a symbol's book whole."""
        if not any(tp.topic == ORDERS_EVENTS for tp in moved.lost):
            return
        for order_sub in list(self._order_subs):
            order_sub.end(
                FEED_INTERRUPTED,
                f"the broker restarted and may have lost {ORDERS_EVENTS} records: refetch the orders",
            )

    def _interrupt(self, topic: str, where: str, raw: bytes, exc: Exception) -> None:
        """A record neither believed nor refused (the key registry is unreachable, or a bug):
        not sent, so the streams it would have fed have a hole and are told so."""
        self._interrupted += 1
        if topic not in self._unjudged_until:  # once an outage: not a log line per record
            log.error("%s record at %s could not be judged; its streams end", topic, where, exc_info=exc)
        if not isinstance(exc, RecordNotJudged):  # the back-off runs from the last real try
            self._unjudged_until[topic] = time.monotonic() + RETRY_S
        if topic == ORDERS_EVENTS:
            for order_sub in list(self._order_subs):
                order_sub.end(
                    FEED_INTERRUPTED, f"an {ORDERS_EVENTS} record could not be verified: refetch the orders"
                )
            return
        symbol = claimed_symbol(raw)
        if topic == MARKET_TRADES:
            # The tape has a hole the hub cannot fill: it says so for the rest of the session.
            self._trades.hole(symbol)
            return
        for book_sub in list(self._book_subs.get(symbol, ()) if symbol is not None else ()):
            book_sub.end(
                FEED_INTERRUPTED,
                f"a {MARKET_DEPTH} record of {symbol} could not be verified: refetch the book",
            )

    def _on_order_event(self, event: OrderEvent) -> None:
        self._order_records += 1
        if event.kind in OUTCOME_KINDS:
            future = self._outcomes.pop(event.command_id, None)
            if future is not None and not future.done():
                future.set_result(event)
        for sub, accept in list(self._order_subs.items()):
            try:
                wanted = accept(event)
            except Exception:
                log.exception("order event filter failed; the event is not sent to that subscriber")
                continue
            if wanted:
                self._offer(sub, event)

    def _offer(self, sub: QueueSubscription[Any], item: Any) -> None:
        """Hand ``item`` over; a subscription that overflows ends (and forgets itself)."""
        if not sub.offer(item) and sub.ended_by == OVERFLOW:
            self._dropped += 1
            log.warning("a subscriber fell %d items behind: its stream ended with %s", sub.capacity, OVERFLOW)

    async def _poll(self) -> None:
        interval = self._settings.api_state_poll_ms / 1000
        while True:
            started = time.monotonic()
            try:
                await self._poll_once()
            except Exception:
                # A database outage must not end the feed: the next tick tries again.
                log.exception("reading the breaker and security events failed")
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))

    async def _poll_once(self) -> None:
        status = await self._ledger.breaker_changed()
        if status is not None:
            self._breaker = status
            for breaker_sub in self._breaker_subs:
                breaker_sub.put(status)
        for event in await self._ledger.new_security_events():
            for sub in list(self._security_subs):
                self._offer(sub, event)
