"""The hub's tapes: verified ``market.trades`` records in, per symbol of the floor the session's
trades added up (:class:`trading.trade_tape.SymbolTape`), one mailbox per subscriber out
(:class:`api.mailboxes.TapeSubscription`).

Every record is verified, not only the newest (each trade counts for volume): one no writer of
the topic signed is refused and recorded as a ``Critical Security Breach``, as on
``market.depth``, and nothing of it is counted or sent. A starting hub reads the topic from the
start of the current session (:func:`api.hub_feeds.start_consumer`); until it has read up to
where the topic ended when it started (:meth:`TradeFeed.positioned`), subscribers wait for their
snapshot, so the first one anybody is sent already counts the whole session.

The topic has a consumer and a task of its own (:meth:`TradeFeed.run`): rebuilding a busy
session verifies every record of it, and books and order events must not wait behind that. It
yields to the event loop every :data:`YIELD_EVERY` records, since a verify with the registry
cached awaits nothing. A record that can be neither believed nor refused leaves a hole the hub
cannot fill: the symbol's tape is marked incomplete for the session (:meth:`TradeFeed.hole`)
and its subscribers are sent a snapshot that says so, as is anyone who subscribes later.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, TopicPartition

from api.hub_feeds import claimed_symbol, record_refusal
from api.mailboxes import TapeSubscription
from bus.log_restarts import LogFollower
from bus.signed_records import RecordVerifier
from bus.topics import MARKET_TRADES
from observability.security import SecurityRecorder
from trading.record_signing import RecordRefused
from trading.trade_tape import SymbolTape, TapeSnapshot, TapeTrade, TradeRecordError, trades_record

log = logging.getLogger(__name__)

YIELD_EVERY = 20
"""Records verified between two yields to the event loop (about a millisecond of CPU)."""
RETRY_S = 0.5
"""Wait after a fetch of ``market.trades`` that failed."""

Judge = Callable[[str, str, bytes, Callable[[str, bytes], Awaitable[bool]]], Awaitable[bool]]
"""The hub's ``_judge(topic, where, raw, handle)``: runs ``handle``, or on an error notes the
record unjudged (:meth:`TradeFeed.hole`) and backs off."""


class TradeFeed:
    def __init__(
        self, verifier: RecordVerifier, security: SecurityRecorder, symbols: frozenset[str], capacity: int
    ) -> None:
        self._verifier = verifier
        self._security = security
        self.symbols = symbols
        self._capacity = capacity
        self._tapes: dict[str, SymbolTape] = {}
        self.subscribers: dict[str, set[TapeSubscription]] = {}
        self._behind: dict[TopicPartition, int] = {}
        """Per partition, the offset the hub must read up to before its tapes are complete."""
        self.ready = False
        self.records = 0
        self.trades = 0
        self.unverified = 0
        self.undecodable = 0
        self.untraded = 0
        self._resent_before = 0
        """Snapshots resent to subscribers that have left."""

    async def positioned(self, consumer: AIOKafkaConsumer) -> None:
        """Note where the topic ends now; the tapes are complete once read up to there."""
        partitions = [tp for tp in consumer.assignment() if tp.topic == MARKET_TRADES]
        ends = await consumer.end_offsets(partitions) if partitions else {}
        for tp in partitions:
            if await consumer.position(tp) < ends[tp]:
                self._behind[tp] = ends[tp]
        if not self._behind:
            self._complete()

    def behind(self) -> list[TopicPartition]:
        """The partitions not yet read up to where they ended at start."""
        return list(self._behind)

    def read_up_to(self, tp: TopicPartition, next_offset: int) -> None:
        """The hub has handled ``tp``'s records before ``next_offset``."""
        end = self._behind.get(tp)
        if end is not None and next_offset >= end:
            del self._behind[tp]
            if not self._behind:
                self._complete()

    def _complete(self) -> None:
        if not self.ready:
            self.ready = True
            log.info("%s read up to the end: %d trades this session", MARKET_TRADES, self.trades)
            for subs in self.subscribers.values():
                for sub in subs:
                    sub.changed()

    # --- subscribing -------------------------------------------------------------------------

    def tape(self, symbol: str) -> SymbolTape:
        tape = self._tapes.get(symbol)
        if tape is None:
            tape = self._tapes[symbol] = SymbolTape(symbol)
        return tape

    def snapshot(self, symbol: str) -> TapeSnapshot:
        """``symbol``'s tape now (empty once its session is over)."""
        return self.tape(symbol).snapshot(datetime.now(UTC).date())

    def subscribe(self, symbol: str) -> TapeSubscription:
        sub = TapeSubscription(
            lambda s: self._leave(symbol, s),
            lambda: self.snapshot(symbol),
            lambda: self.ready,
            self._capacity,
        )
        self.subscribers.setdefault(symbol, set()).add(sub)
        return sub

    def _leave(self, symbol: str, sub: TapeSubscription) -> None:
        self._resent_before += sub.resent
        subs = self.subscribers.get(symbol)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self.subscribers[symbol]

    def hole(self, symbol: str | None) -> None:
        """A record of ``symbol`` could be neither believed nor refused: the tape misses its
        trades for the rest of the session, and says so (one naming no symbol of the floor's
        was never counted: nothing to mark)."""
        if symbol is None or symbol not in self.symbols:
            return
        self.tape(symbol).hole()
        for sub in self.subscribers.get(symbol, ()):
            sub.restart()

    def _restarted(self, tp: TopicPartition) -> None:
        """``tp`` is read from the beginning of a log the broker started afresh: what it held
        before is gone, so there is nothing more to wait for there, and every tape may have
        missed trades (which symbols a lost record held cannot be known)."""
        self.read_up_to(tp, self._behind.get(tp, 0))
        for symbol in sorted(self.symbols):
            self.hole(symbol)

    def resent(self) -> int:
        """Snapshots sent in place of trades a subscriber fell behind on, since start."""
        return self._resent_before + sum(sub.resent for sub in self.all_subscriptions())

    def all_subscriptions(self) -> list[TapeSubscription]:
        return [sub for subs in self.subscribers.values() for sub in subs]

    # --- records -----------------------------------------------------------------------------

    async def run(self, consumer: AIOKafkaConsumer, judge: Judge) -> None:
        """Read ``market.trades`` for good (its own consumer: see the module docstring)."""
        follower = LogFollower(consumer, (MARKET_TRADES,))
        while True:
            realigned = await follower.check()
            for tp in realigned.lost:
                self._restarted(tp)
            try:
                batches = await consumer.getmany(timeout_ms=1000)
            except Exception:
                log.exception("reading %s failed; trying again", MARKET_TRADES)
                await asyncio.sleep(RETRY_S)
                continue
            for tp, records in batches.items():
                for i, record in enumerate(records, 1):
                    if record.value is not None:
                        where = f"{tp.topic}[{tp.partition}]@{record.offset}"
                        await judge(MARKET_TRADES, where, record.value, self.take)
                    if i % YIELD_EVERY == 0:
                        await asyncio.sleep(0)  # let the books and order events through
                if records:
                    self.read_up_to(tp, records[-1].offset + 1)
            if not self.ready:
                # Where the consumer is, not the last record handed over: it moves past offsets
                # that hold no record too.
                for tp in self.behind():
                    self.read_up_to(tp, await consumer.position(tp))

    async def take(self, where: str, raw: bytes) -> bool:
        """Verify ``raw`` and count its trades (sending each to the symbol's subscribers);
        True (judged) unless it names a symbol the floor does not trade. Raises when the key
        registry cannot be read: the record can be neither believed nor refused."""
        symbol = claimed_symbol(raw)
        if symbol is None or symbol not in self.symbols:
            self.untraded += symbol is not None
            self.undecodable += symbol is None
            return True
        trades = await self._judged(where, raw)
        if trades is not None:
            self._count(trades)
        return True

    async def _judged(self, where: str, raw: bytes) -> Sequence[TapeTrade] | None:
        try:
            data = await self._verifier.verify(MARKET_TRADES, raw)
        except RecordRefused as exc:
            self.unverified += 1
            await record_refusal(self._security, MARKET_TRADES, where, raw, exc)
            return None
        try:
            trades = trades_record(data)
        except TradeRecordError as exc:
            self.undecodable += 1
            log.warning("unreadable %s record at %s: %s", MARKET_TRADES, where, exc)
            return None
        self.records += 1
        return trades

    def _count(self, trades: Sequence[TapeTrade]) -> None:
        for trade in trades:
            tape = self.tape(trade.symbol)
            counted, new_session = tape.add(trade)
            subs = self.subscribers.get(trade.symbol, ())
            if new_session:
                for sub in subs:
                    sub.restart()
            if counted is None:
                continue
            self.trades += 1
            for sub in subs:
                sub.offer(counted)
