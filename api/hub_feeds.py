"""What feeds the API's subscription hub (:mod:`api.hub`): Kafka consumers, and Postgres.

- **Kafka**: per API process one consumer over ``market.depth`` and ``orders.events`` and one
  over ``market.trades`` (its rebuild on start must not hold the others back), with no
  consumer group (every API process sees every record) and no committed offsets. They start at
  the end of ``orders.events`` (subscribers are sent what happens from now on), a short way
  back on ``market.depth`` (each record is a symbol's whole book, so the last few hundred fill
  the books an API that just started can show) and at the start of the current session on
  ``market.trades`` (the session's volume at each price is the sum of all of them;
  :mod:`api.hub_trades`). Their fetch waits ``FLOOR_API_FETCH_WAIT_MS`` (20 ms against the
  embedded Tansu, which answers a fetch only when its wait runs out: longer than the hot path's
  5 ms command fetch, since an idle API polling that often cost 40% of a core).
- **orders.events** and **market.depth** records are verified
  (:class:`~bus.signed_records.RecordVerifier`, one key registry copy for both) before anything
  is done with them: the desk checks a trader's arming limits at the book's prices, so a forged
  book is as dangerous as a forged fill. One no writer of the topic signed is dropped and
  recorded as a ``Critical Security Breach``, never fanned out. The recorder the API passes is
  a :class:`~observability.flood.FloodSummary` (per partition and reason), so a flood of
  forged records is a few rows and a count, not a row each. A depth record for a symbol the
  floor does not trade is dropped (counted): the hub keeps books only for the floor's symbols.
- **Postgres**: the breaker's state and security events, not their Kafka records (those are
  not signed). No trigger announces either, and a migration for one belongs with the tables,
  so both are polled (``FLOOR_API_STATE_POLL_MS``, 200 ms): two indexed reads a tick, cheap
  next to the HUD's own refresh.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, TopicPartition

from bus.signed_records import RecordVerifier
from bus.topics import MARKET_DEPTH, MARKET_TRADES, ORDERS_EVENTS
from ledger.circuit_breaker import newest_breaker_entry, newest_breaker_seq
from ledger.db import Db
from ledger.record_keys import writer_keys
from ledger.security_events import newest_security_event_id, security_events_after
from observability.security import SecurityRecorder, unverified_record_event
from trading.breaker_trip import TripSummary
from trading.depth_book import DepthRecordError, DepthUpdate, depth_update
from trading.order_events import OrderEvent, OrderEventError, from_dict
from trading.record_signing import RecordRefused
from trading.risk import TradingState
from trading.security_events import SecurityEvent
from trading.trade_tape import session_start

log = logging.getLogger(__name__)

DEPTH_WARMUP_RECORDS = 500
"""How far back on ``market.depth`` a starting hub reads, per partition."""


FEED_TOPICS = (MARKET_DEPTH, ORDERS_EVENTS, MARKET_TRADES)


async def start_consumer(
    bootstrap: str, *, fetch_wait_ms: int, topics: Sequence[str] = FEED_TOPICS
) -> AIOKafkaConsumer:
    """A started consumer of ``topics``, positioned (see the module docstring) before this
    returns, so a record produced after it returns is seen."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="latest",
        fetch_max_wait_ms=fetch_wait_ms,
    )
    await consumer.start()
    try:
        await consumer.topics()  # metadata, so the topics' partitions are known
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if set(topics) != {MARKET_TRADES} and not any(tp.topic != MARKET_TRADES for tp in partitions):
            raise RuntimeError(f"{MARKET_DEPTH} and {ORDERS_EVENTS} have no partitions: create the topics")
        if MARKET_TRADES in topics and not any(tp.topic == MARKET_TRADES for tp in partitions):
            log.warning("%s has no partitions (`floor up` creates it): no trades are shown", MARKET_TRADES)
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        session = await _session_offsets(consumer, [tp for tp in partitions if tp.topic == MARKET_TRADES])
        for tp in partitions:
            if tp.topic == MARKET_TRADES:
                consumer.seek(tp, max(starts[tp], session.get(tp, starts[tp])))
                continue
            back = DEPTH_WARMUP_RECORDS if tp.topic == MARKET_DEPTH else 0
            consumer.seek(tp, max(starts[tp], ends[tp] - back))
    except BaseException:
        await consumer.stop()
        raise
    return consumer


async def _session_offsets(
    consumer: AIOKafkaConsumer, partitions: list[TopicPartition]
) -> dict[TopicPartition, int]:
    """Per partition, the first record produced since the current session began (the end if
    none was); a partition the broker cannot look up by time is read from its beginning."""
    if not partitions:
        return {}
    since = int(session_start(datetime.now(UTC)).timestamp() * 1000)
    try:
        found = await consumer.offsets_for_times({tp: since for tp in partitions})
    except Exception as exc:
        log.warning("%s cannot be looked up by time (%s): reading it from the beginning", MARKET_TRADES, exc)
        return {}
    ends = await consumer.end_offsets(partitions)
    return {tp: found[tp].offset if found.get(tp) is not None else ends[tp] for tp in partitions}


def record_verifier(db: Db) -> RecordVerifier:
    """The hub's one copy of the key registry, for every topic it verifies."""
    return RecordVerifier(lambda: writer_keys(db))


async def record_refusal(
    security: SecurityRecorder, topic: str, where: str, raw: bytes, exc: RecordRefused
) -> None:
    """The security event for a refused record. The record is refused whether or not the event
    is stored: a database that cannot take the row must not turn a known forgery into a record
    the feed could not judge (and end every stream for it)."""
    try:
        await security.record(unverified_record_event(topic, where, raw, exc, source="api"))
    except Exception:
        log.exception(
            "%s record at %s refused (%s); its security event was not stored", topic, where, exc.reason
        )


class OrderRecords:
    """``orders.events`` records in, verified events out; forgeries become security events."""

    def __init__(self, verifier: RecordVerifier, security: SecurityRecorder) -> None:
        self._verifier = verifier
        self._security = security
        self.unverified = 0
        self.undecodable = 0

    async def verified(self, where: str, raw: bytes) -> OrderEvent | None:
        """The event if the hot path signed ``raw``; else None (and a security event, or a
        count for a genuine record that does not decode). Raises when the key registry cannot
        be read: the record can be neither believed nor refused."""
        try:
            data = await self._verifier.verify(ORDERS_EVENTS, raw)
        except RecordRefused as exc:
            self.unverified += 1
            await record_refusal(self._security, ORDERS_EVENTS, where, raw, exc)
            return None
        try:
            return from_dict(data)
        except OrderEventError:
            self.undecodable += 1
            return None


class DepthRecords:
    """``market.depth`` records in, verified books of the floor's symbols out.

    Each record is a symbol's whole book, so of several records of one symbol in one fetch only
    the newest that verifies is of use: the hub judges them newest first and stops at the first
    it believes (:meth:`claims`, :meth:`judged`). The older ones are never verified (counted as
    superseded): verifying costs far more than everything else the hub does with a record, and
    a book changes thousands of times a second. A forged record followed by a genuine one is
    never shown, so it is not looked at; one that comes last is refused and reported, and the
    record before it is judged in its place."""

    def __init__(self, verifier: RecordVerifier, security: SecurityRecorder, symbols: frozenset[str]) -> None:
        self._verifier = verifier
        self._security = security
        self.symbols = symbols
        self.unverified = 0
        self.undecodable = 0
        self.untraded = 0
        self.superseded = 0

    def claims(self, records: Sequence[tuple[str, bytes]]) -> dict[str, list[tuple[str, bytes]]]:
        """``(where, raw)`` records by the traded symbol each claims, oldest first. A record that
        names no symbol, or one the floor does not trade, is dropped (counted) unjudged: the
        hub keeps nothing for it, and nothing it could say would reach anyone."""
        by_symbol: dict[str, list[tuple[str, bytes]]] = {}
        for where, raw in records:
            symbol = claimed_symbol(raw)
            if symbol is None:
                self.undecodable += 1
            elif symbol not in self.symbols:
                self.untraded += 1
            else:
                by_symbol.setdefault(symbol, []).append((where, raw))
        return by_symbol

    async def judged(self, where: str, raw: bytes) -> DepthUpdate | None:
        """The book if the hot path signed ``raw``; else None (and a security event for a
        forgery, a count for a genuine record that does not decode). Raises when the key
        registry cannot be read: the record can be neither believed nor refused."""
        try:
            data = await self._verifier.verify(MARKET_DEPTH, raw)
        except RecordRefused as exc:
            self.unverified += 1
            await record_refusal(self._security, MARKET_DEPTH, where, raw, exc)
            return None
        try:
            return depth_update(data)
        except DepthRecordError as exc:
            self.undecodable += 1
            log.warning("unreadable %s record at %s: %s", MARKET_DEPTH, where, exc)
            return None


def claimed_symbol(raw: bytes) -> str | None:
    """The symbol a depth record claims to be about, before anyone believes it."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):  # nested past the parser: as unreadable
        return None
    symbol = data.get("symbol") if isinstance(data, dict) else None
    return symbol if isinstance(symbol, str) else None


@dataclass(frozen=True)
class BreakerStatus:
    """The floor's trading state as the newest breaker entry in the ledger sets it."""

    state: TradingState
    seq: int | None
    """The ledger entry that set it; None on a floor whose breaker never moved (ACTIVE)."""
    kind: str | None
    """``breaker_tripped`` (automatic), ``breaker_trip`` or ``breaker_arm``."""
    agent_id: str | None
    command_id: str | None
    changed_at: datetime | None
    problem: str | None
    """Why the entry does not verify (it then counts as a trip)."""
    trip: TripSummary | None = None
    """What the trip did, when the entry halted the floor."""


SECURITY_LOOKBACK_IDS = 100
"""A row committed late is still sent if fewer than this many ids were taken after its own."""
SECURITY_BATCH = 500
"""New security events read per poll at most (more wait for the next poll)."""

NEVER_TRIPPED = BreakerStatus(TradingState.ACTIVE, None, None, None, None, None, None)


class LedgerState:
    """Polls the breaker's newest entry and new security events."""

    def __init__(self, db: Db, breaker_agent: str | None = "floor-breaker") -> None:
        self._db = db
        self._breaker_agent = breaker_agent
        self._breaker_seq: int | None = None
        self._security_high = 0
        self._security_seen: set[int] = set()

    async def start(self) -> BreakerStatus:
        """The breaker's state now; security events from now on."""
        self._security_high = await newest_security_event_id(self._db)
        # Rows under the start's highest id are history, late ones included.
        self._security_seen = set(range(self._security_high - SECURITY_LOOKBACK_IDS, self._security_high + 1))
        return await self._breaker_now()

    async def breaker_changed(self) -> BreakerStatus | None:
        """The breaker's state if its newest entry changed since the last call."""
        seq = await newest_breaker_seq(self._db)
        if seq == self._breaker_seq:
            return None
        return await self._breaker_now()

    async def _breaker_now(self) -> BreakerStatus:
        entry = await newest_breaker_entry(self._db, self._breaker_agent)
        if entry is None:
            self._breaker_seq = None
            return NEVER_TRIPPED
        self._breaker_seq = entry.seq
        return BreakerStatus(
            state=entry.state,
            seq=entry.seq,
            kind=entry.kind,
            agent_id=entry.agent_id,
            command_id=entry.command_id,
            changed_at=entry.recorded_at,
            problem=entry.problem,
            trip=entry.trip,
        )

    async def new_security_events(self) -> list[SecurityEvent]:
        """Events recorded since the last call, oldest first.

        Ids come from a sequence, so a row may commit after one with a higher id: the read
        starts a little below the highest id seen (:data:`SECURITY_LOOKBACK_IDS`) and skips ids
        already sent."""
        low = max(0, self._security_high - SECURITY_LOOKBACK_IDS)
        rows = await security_events_after(self._db, low, limit=SECURITY_LOOKBACK_IDS + SECURITY_BATCH)
        events = [e for e in rows if e.id is not None and e.id not in self._security_seen]
        if events:
            self._security_seen.update(e.id for e in events if e.id is not None)
            self._security_high = max(self._security_high, *(e.id for e in events if e.id is not None))
            low = self._security_high - SECURITY_LOOKBACK_IDS
            self._security_seen = {i for i in self._security_seen if i > low}
        return events
