"""The API's subscription hub against real Kafka and Postgres: books as a snapshot then linked
deltas, conflation for slow readers, verified order events and books only, books only of the
floor's symbols, outcomes, a stuck subscriber that costs the others nothing, and a feed that
goes on through a database outage."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from api.hub import Hub, Subscription, UnknownSymbol
from api.mailboxes import FEED_INTERRUPTED, OVERFLOW, ResyncRequired
from bus.kafka import start_producer
from bus.topics import MARKET_DEPTH, ORDERS_EVENTS, SECURITY_EVENTS
from config.settings import FloorSettings
from ledger.access import LedgerAccess
from observability.flood import FULL_EVENTS_PER_WINDOW, REPEATS, FloodSummary
from observability.security import SecurityLog, SecurityRecorder, refusal_event
from tests.factories import depth_record, order_event
from tests.fixtures.hotpath import RecordWriters
from tests.helpers import eventually
from trading.depth_book import BookDelta, BookSnapshot, PriceBook
from trading.order_events import EventKind, OrderEvent, encode
from trading.orders import Fill
from trading.record_signing import UNKNOWN_KEY, sign_record
from trading.signing import generate_private_key, key_id
from trading.symbols import UNKNOWN_SYMBOL

TRADED = tuple(f"HUB{uuid.uuid4().hex[:6].upper()}" for _ in range(40))
"""The floor's symbols for these tests' hubs: this run's own (the topic is shared with every
other suite and keeps earlier runs' records)."""
_unused = iter(TRADED)


@pytest.fixture
async def api_pool(floor_settings: FloorSettings, postgres_url: str) -> AsyncIterator[asyncpg.Pool]:
    """The API's own least-privilege role: the hub must work with its grants."""
    pool = await asyncpg.create_pool(floor_settings.role_url("api"), min_size=1, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    p = await start_producer(kafka_bootstrap, "test-hub")
    yield p
    await p.stop()


async def started_hub(
    db: Any,
    floor_settings: FloorSettings,
    security_db: Any,
    *,
    security: SecurityRecorder | None = None,
    **settings: object,
) -> Hub:
    """A started hub reading ``db``, its security events written through ``security_db`` (or
    ``security``), its Postgres polled every 50 ms, trading :data:`TRADED`; the caller stops it."""
    changed = floor_settings.model_copy(
        update={"api_state_poll_ms": 50, "hotpath_symbols": ",".join(TRADED), **settings}
    )
    recorder = security or SecurityLog(LedgerAccess(security_db), None, SECURITY_EVENTS)
    hub = Hub(db, recorder, changed)
    await hub.start()
    return hub


@pytest.fixture
async def hub(
    floor_settings: FloorSettings, kafka_bootstrap: str, api_pool: asyncpg.Pool, record_writers: RecordWriters
) -> AsyncIterator[Hub]:
    h = await started_hub(api_pool, floor_settings, api_pool)
    yield h
    await h.stop()


def symbol() -> str:
    """A symbol the hubs trade, of this test's own."""
    return next(_unused)


class Market:
    """Publishes one symbol's whole book, one record per state, with increasing venue times,
    signed by ``key`` (the hot path's, or a forger's)."""

    def __init__(self, producer: AIOKafkaProducer, name: str, key: Ed25519PrivateKey) -> None:
        self.producer = producer
        self.symbol = name
        self.key = key
        self.n = 0
        self.t0 = datetime.now(UTC)

    def levels(self, n: int) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
        """State ``n``: levels move, appear and disappear as n grows."""
        bids = [(f"{100 - i * 0.01 - (n % 3) * 0.01:.2f}", 100 + (n * 7 + i) % 50) for i in range(5)]
        asks = [(f"{100.01 + i * 0.01 + (n % 2) * 0.01:.2f}", 100 + (n * 11 + i) % 40) for i in range(5)]
        return bids, asks

    async def publish(self) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
        self.n += 1
        bids, asks = self.levels(self.n)
        ts = self.t0 + timedelta(microseconds=self.n)
        raw = sign_record(MARKET_DEPTH, depth_record(self.symbol, bids, asks, ts), self.key)
        await self.producer.send_and_wait(MARKET_DEPTH, raw, key=self.symbol.encode())
        return bids, asks


def as_levels(levels: list[tuple[str, int]]) -> tuple[tuple[Decimal, int], ...]:
    return tuple((Decimal(p), s) for p, s in levels)


async def subscribed(hub: Hub, market: Market, depth: int) -> tuple[Subscription[Any], BookSnapshot]:
    """A subscription to the market's book, and its first item: the snapshot of its first state."""
    sub = hub.subscribe_book(market.symbol, depth)
    await market.publish()
    first = await asyncio.wait_for(anext(sub), 10)
    assert (
        isinstance(first, BookSnapshot) and first.symbol == market.symbol and len(first.bids) == min(depth, 5)
    )
    return sub, first


async def test_a_book_subscriber_gets_a_snapshot_then_deltas_whose_sequences_link(
    hub: Hub, producer: AIOKafkaProducer, record_writers: RecordWriters
) -> None:
    market = Market(producer, symbol(), record_writers.hotpath)
    sub, first = await subscribed(hub, market, 10)
    client = PriceBook(first)
    deltas: list[BookDelta] = []
    for _ in range(30):
        bids, asks = await market.publish()
        while client.levels() != (as_levels(bids), as_levels(asks)):
            item = await asyncio.wait_for(anext(sub), 10)
            assert isinstance(item, BookDelta)
            assert item.previous_sequence == client.sequence  # gap-free for this subscriber
            client.apply(item)
            deltas.append(item)
    assert deltas and all(d.bids or d.asks for d in deltas)
    snapshot = hub.book(market.symbol, 10)
    assert snapshot is not None and snapshot.sequence == client.sequence
    sub.close()
    with pytest.raises(StopAsyncIteration):
        await anext(sub)


async def test_a_slow_book_subscriber_gets_one_merged_delta_that_still_links(
    hub: Hub, producer: AIOKafkaProducer, record_writers: RecordWriters
) -> None:
    market = Market(producer, symbol(), record_writers.hotpath)
    slow, snap = await subscribed(hub, market, 3)
    for _ in range(40):
        bids, asks = await market.publish()
    await eventually(
        lambda: (
            (b := hub.book(market.symbol, 3)) is not None
            and (b.bids, b.asks) == (as_levels(bids[:3]), as_levels(asks[:3]))
        )
    )
    merged = await asyncio.wait_for(anext(slow), 10)
    assert isinstance(merged, BookDelta)
    assert merged.previous_sequence == snap.sequence and merged.sequence > snap.sequence
    client = PriceBook(snap)
    client.apply(merged)
    assert client.levels() == (as_levels(bids[:3]), as_levels(asks[:3]))
    assert hub.stats().dropped == 0  # a book mailbox conflates: it never overflows
    slow.close()


def signed(event: OrderEvent, writers: RecordWriters) -> bytes:
    return sign_record(ORDERS_EVENTS, encode(event), writers.hotpath)


async def publish(producer: AIOKafkaProducer, raw: bytes) -> None:
    await producer.send_and_wait(ORDERS_EVENTS, raw, key=b"DU1/MSFT")


async def test_200_order_event_subscribers_one_stuck_the_others_get_every_event_and_the_stuck_one_must_resync(
    floor_settings: FloorSettings,
    kafka_bootstrap: str,
    api_pool: asyncpg.Pool,
    record_writers: RecordWriters,
    producer: AIOKafkaProducer,
) -> None:
    capacity = 20
    hub = await started_hub(api_pool, floor_settings, api_pool, api_subscription_queue=capacity)
    try:
        account = f"ACC{uuid.uuid4().hex[:6]}"
        mine = lambda e: e.account == account  # noqa: E731
        stuck = hub.subscribe_order_events(mine)
        readers = [hub.subscribe_order_events(mine) for _ in range(199)]
        n = capacity * 3
        command = f"cmd-{uuid.uuid4().hex[:8]}"
        events = [order_event(command, i, EventKind.SUBMITTED, account=account) for i in range(n)]
        received: list[list[str]] = [[] for _ in readers]
        last_at: list[float] = [0.0] * len(readers)

        async def read(i: int) -> None:
            async for event in readers[i]:
                received[i].append(event.event_id)
                if len(received[i]) == n:
                    last_at[i] = time.monotonic()
                    return

        tasks = [asyncio.create_task(read(i)) for i in range(len(readers))]
        started = time.monotonic()
        for event in events:
            await publish(producer, signed(event, record_writers))
        published = time.monotonic()
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
        expected = [e.event_id for e in events]
        assert all(r == expected for r in received)  # every event, in order, to every reader
        # Generous: the last reader has the last event within 5 s of its publication.
        assert max(last_at) - published < 5.0, (max(last_at) - published, published - started)
        with pytest.raises(ResyncRequired) as ended:
            await anext(stuck)
        assert ended.value.reason == OVERFLOW
        stats = hub.stats()
        assert stats.dropped == 1
        assert stats.subscribers == 199 + 0  # the stuck one is forgotten; the readers are open
    finally:
        await hub.stop()


async def test_a_forged_order_event_is_not_fanned_out_and_is_a_security_event(
    hub: Hub, producer: AIOKafkaProducer, record_writers: RecordWriters, ledger_pool: asyncpg.Pool
) -> None:
    account = f"ACC{uuid.uuid4().hex[:6]}"
    sub = hub.subscribe_order_events(lambda e: e.account == account)
    command = f"cmd-{uuid.uuid4().hex[:8]}"
    # Well-formed and signed, by a key the registry does not hold: a fill that never happened.
    forged = order_event(command, 1, EventKind.FILLED, 200, Fill("x-1", 200, Decimal("230")), account=account)
    forged_raw = sign_record(ORDERS_EVENTS, encode(forged), generate_private_key())
    genuine = order_event(command, 2, EventKind.SUBMITTED, account=account)
    await publish(producer, forged_raw)
    await publish(producer, signed(genuine, record_writers))
    first = await asyncio.wait_for(anext(sub), 10)
    assert first.event_id == genuine.event_id
    assert hub.stats().unverified >= 1
    row = await eventually(
        lambda: ledger_pool.fetchrow(
            "SELECT reason, source, severity FROM security_events WHERE detail->>'claimed_event_id' = $1",
            forged.event_id,
        )
    )
    assert tuple(row) == (UNKNOWN_KEY, "api", "critical")
    sub.close()


async def test_expect_outcome_resolves_on_the_first_genuine_accepted_or_rejected_record_of_that_command(
    hub: Hub, producer: AIOKafkaProducer, record_writers: RecordWriters
) -> None:
    command = f"cmd-{uuid.uuid4().hex[:8]}"
    other = f"cmd-{uuid.uuid4().hex[:8]}"
    outcome = hub.expect_outcome(command)
    assert hub.expect_outcome(command) is outcome  # asked twice, one future
    forged_accept = sign_record(
        ORDERS_EVENTS, encode(order_event(command, 1, EventKind.ACCEPTED)), generate_private_key()
    )
    await publish(producer, forged_accept)
    await publish(producer, signed(order_event(other, 1, EventKind.ACCEPTED), record_writers))
    await publish(producer, signed(order_event(command, 2, EventKind.SUBMITTED), record_writers))
    rejected = order_event(command, 3, EventKind.REJECTED, reason="risk.max_trade_size")
    await publish(producer, signed(rejected, record_writers))
    await publish(producer, signed(order_event(command, 4, EventKind.ACCEPTED), record_writers))
    event = await asyncio.wait_for(outcome, 10)
    assert (event.event_id, event.kind, event.reason) == (
        rejected.event_id,
        EventKind.REJECTED,
        "risk.max_trade_size",
    )
    assert not hub.expect_outcome(other).done()  # another command's accepted came first: not its outcome


async def test_a_forgotten_outcome_is_cancelled(hub: Hub) -> None:
    command = f"cmd-{uuid.uuid4().hex[:8]}"
    outcome = hub.expect_outcome(command)
    hub.forget_outcome(command)
    assert outcome.cancelled()
    assert hub.expect_outcome(command) is not outcome


async def test_security_events_reach_their_subscribers_from_postgres(
    hub: Hub, api_pool: asyncpg.Pool
) -> None:
    sub = hub.subscribe_security_events()
    marker = uuid.uuid4().hex
    event = refusal_event(
        reason="sentry.bad_signature", severity="critical", source="api", source_address="10.0.0.9",
        command_id=f"cmd-{marker}",
    )  # fmt: skip
    await SecurityLog(LedgerAccess(api_pool), None, SECURITY_EVENTS).record(event)
    got = await asyncio.wait_for(anext(sub), 10)
    while got.command_id != f"cmd-{marker}":  # other suites' events may come first
        got = await asyncio.wait_for(anext(sub), 10)
    assert (got.reason, got.source_address, got.event_id) == (
        "sentry.bad_signature",
        "10.0.0.9",
        event.event_id,
    )
    sub.close()


async def test_stopping_the_hub_ends_every_stream_with_resync_required(
    floor_settings: FloorSettings, kafka_bootstrap: str, api_pool: asyncpg.Pool, record_writers: RecordWriters
) -> None:
    hub = await started_hub(api_pool, floor_settings, api_pool)
    orders = hub.subscribe_order_events(lambda e: True)
    book = hub.subscribe_book(symbol(), 5)
    outcome = hub.expect_outcome("cmd-never")
    await hub.stop()
    for sub in (orders, book):
        with pytest.raises(ResyncRequired, match="resync.hub_stopped"):
            await anext(sub)
    assert outcome.cancelled()


async def test_200_book_subscribers_one_stuck_the_others_follow_every_state_and_the_stuck_one_costs_nothing(
    hub: Hub, producer: AIOKafkaProducer, record_writers: RecordWriters
) -> None:
    market = Market(producer, symbol(), record_writers.hotpath)
    stuck = hub.subscribe_book(market.symbol, 5)
    readers = [hub.subscribe_book(market.symbol, 5) for _ in range(199)]
    states = 50
    final: list[tuple[tuple[Decimal, int], ...]] = []
    done_at: list[float] = [0.0] * len(readers)

    async def follow(i: int) -> None:
        client: PriceBook | None = None
        async for item in readers[i]:
            if client is None:
                assert isinstance(item, BookSnapshot)
                client = PriceBook(item)
            else:
                assert isinstance(item, BookDelta)
                client.apply(item)  # raises on a gap
            if final and client.levels() == tuple(final):
                done_at[i] = time.monotonic()
                return

    tasks = [asyncio.create_task(follow(i)) for i in range(len(readers))]
    for _ in range(states):
        bids, asks = await market.publish()
    final.extend((as_levels(bids[:5]), as_levels(asks[:5])))
    published = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*tasks), 30)
    assert max(done_at) - published < 5.0
    late = await asyncio.wait_for(anext(stuck), 5)  # when it does read: the book now, whole
    assert isinstance(late, BookSnapshot) and (late.bids, late.asks) == tuple(final)
    assert hub.stats().dropped == 0


class Unreachable:
    """The API's pool, until the test takes the database away."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.down = False

        self.registry_reads = 0
        """Reads of the key registry tried while the database was away."""

    def __getattr__(self, name: str) -> Any:
        if self.down and name in {"fetch", "fetchrow", "fetchval", "execute"}:

            async def refused(*args: Any, **kwargs: Any) -> Any:
                if args and "agent_keys" in str(args[0]):
                    self.registry_reads += 1
                raise ConnectionRefusedError("the database is unreachable")

            return refused
        return getattr(self.pool, name)


async def test_an_order_record_that_cannot_be_verified_ends_the_order_streams_with_resync_required(
    floor_settings: FloorSettings,
    kafka_bootstrap: str,
    api_pool: asyncpg.Pool,
    record_writers: RecordWriters,
    producer: AIOKafkaProducer,
) -> None:
    db = Unreachable(api_pool)
    hub = await started_hub(db, floor_settings, api_pool)
    try:
        sub = hub.subscribe_order_events(lambda e: True)
        db.down = True  # the key registry cannot be read: no record can be believed
        await publish(
            producer,
            signed(order_event(f"cmd-{uuid.uuid4().hex[:8]}", 1, EventKind.ACCEPTED), record_writers),
        )
        with pytest.raises(ResyncRequired) as ended:
            await asyncio.wait_for(anext(sub), 10)
        assert ended.value.reason == FEED_INTERRUPTED
        # Records that come while it backs off are not judged either: no registry read each.
        for _ in range(5):
            await publish(
                producer,
                signed(order_event(f"cmd-{uuid.uuid4().hex[:8]}", 1, EventKind.SUBMITTED), record_writers),
            )
        await eventually(lambda: hub.stats().interrupted >= 6)
        assert db.registry_reads <= 2
        db.down = False

        async def delivered() -> bool:
            """The feed goes on once it can verify (after its back-off)."""
            command = f"cmd-{uuid.uuid4().hex[:8]}"
            later = hub.subscribe_order_events(lambda e: e.command_id == command)
            await publish(producer, signed(order_event(command, 1, EventKind.ACCEPTED), record_writers))
            try:
                return (await asyncio.wait_for(anext(later), 10)).command_id == command
            except ResyncRequired:
                return False
            finally:
                later.close()

        await eventually(delivered, interval=0.1)
    finally:
        await hub.stop()


async def test_a_book_of_a_symbol_the_floor_does_not_trade_is_refused_and_leaves_nothing_behind(
    hub: Hub, producer: AIOKafkaProducer, record_writers: RecordWriters
) -> None:
    before = hub.stats()
    with pytest.raises(UnknownSymbol) as refused:
        hub.subscribe_book("NOPE1", 5)
    assert refused.value.reason == UNKNOWN_SYMBOL and "FLOOR_HOTPATH_SYMBOLS" in refused.value.detail
    # Even a record the hot path signed, of a symbol this floor does not trade, makes no book.
    stray = Market(producer, f"NOPE{uuid.uuid4().hex[:6].upper()}", record_writers.hotpath)
    await stray.publish()
    marker = Market(producer, symbol(), record_writers.hotpath)
    await marker.publish()  # once its book is there, the hub has read what came before it
    await eventually(lambda: hub.book(marker.symbol, 1) is not None)
    assert hub.stats().untraded > before.untraded
    assert hub.book(stray.symbol, 5) is None and hub.book("NOPE1", 5) is None
    assert set(hub._books) <= set(TRADED) and set(hub._book_subs) <= set(TRADED)  # the leak itself
    assert hub.stats().subscribers == before.subscribers


async def test_a_forged_book_is_never_shown_and_a_flood_of_them_is_a_few_security_events(
    floor_settings: FloorSettings,
    kafka_bootstrap: str,
    api_pool: asyncpg.Pool,
    record_writers: RecordWriters,
    producer: AIOKafkaProducer,
    ledger_pool: asyncpg.Pool,
) -> None:
    """``market.depth`` is signed: the desk prices orders against the arming grant from it."""
    flood = FloodSummary(SecurityLog(LedgerAccess(api_pool), None, SECURITY_EVENTS), timedelta(minutes=5))
    hub = await started_hub(api_pool, floor_settings, api_pool, security=flood)
    try:
        name = symbol()
        genuine = Market(producer, name, record_writers.hotpath)
        sub, first = await subscribed(hub, genuine, 5)
        forger = generate_private_key()
        forged = Market(producer, name, forger)
        forged.t0 = genuine.t0 + timedelta(seconds=1)  # newer than the genuine book: it would win
        for _ in range(12):
            await forged.publish()  # an ask of 100.01 x 1 share: a large buy priced cheap
        await eventually(lambda: hub.stats().unverified >= 12)
        book = hub.book(name, 5)
        assert book is not None and (book.sequence, book.bids, book.asks) == (
            first.sequence,
            first.bids,
            first.asks,
        )
        bids, asks = await genuine.publish()
        delta = await asyncio.wait_for(anext(sub), 10)  # the genuine one goes on through
        assert isinstance(delta, BookDelta) and delta.previous_sequence == first.sequence
        client = PriceBook(first)
        client.apply(delta)
        assert client.levels() == (as_levels(bids), as_levels(asks))
        rows = await ledger_pool.fetchval(
            "SELECT count(*) FROM security_events WHERE key_id = $1 AND reason = $2",
            key_id(forger),
            UNKNOWN_KEY,
        )
        assert rows == FULL_EVENTS_PER_WINDOW  # not 12: the rest are counted
        sub.close()
    finally:
        await hub.stop()
        await flood.close()
    summary = await ledger_pool.fetchrow(
        "SELECT detail FROM security_events WHERE reason = $1 AND source = 'api' AND detail->>$2 = $3"
        " ORDER BY id DESC LIMIT 1",
        UNKNOWN_KEY,
        REPEATS,
        str(12 - FULL_EVENTS_PER_WINDOW),
    )
    assert summary is not None


async def test_a_book_that_cannot_be_verified_ends_that_symbols_streams_and_the_feed_goes_on(
    floor_settings: FloorSettings,
    kafka_bootstrap: str,
    api_pool: asyncpg.Pool,
    record_writers: RecordWriters,
    producer: AIOKafkaProducer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("api.hub.RETRY_S", 0.0)  # judging resumes as soon as the registry is back
    db = Unreachable(api_pool)
    hub = await started_hub(db, floor_settings, api_pool)
    try:
        market = Market(producer, symbol(), record_writers.hotpath)
        other = Market(producer, symbol(), record_writers.hotpath)
        sub, _ = await subscribed(hub, market, 5)
        bystander, _ = await subscribed(hub, other, 5)
        db.down = True
        # A record signed by a key the registry copy lacks (a writer's new key?) sends the hub
        # to the registry, which it cannot read: the record can be neither believed nor refused.
        # (Within a second of the last read it is refused outright, so this repeats.)
        unknown = Market(producer, market.symbol, generate_private_key())

        async def interrupted() -> bool:
            await unknown.publish()
            return hub.stats().interrupted > 0

        await eventually(interrupted, interval=0.1)
        with pytest.raises(ResyncRequired) as ended:
            await asyncio.wait_for(anext(sub), 10)
        assert ended.value.reason == FEED_INTERRUPTED
        db.down = False
        again = hub.subscribe_book(market.symbol, 5)  # the feed goes on once it can verify
        bids, asks = await market.publish()

        async def caught_up() -> bool:
            book = hub.book(market.symbol, 5)
            return book is not None and (book.bids, book.asks) == (as_levels(bids), as_levels(asks))

        await eventually(caught_up)
        item = await asyncio.wait_for(anext(again), 10)
        assert isinstance(item, BookSnapshot) and (item.bids, item.asks) == (as_levels(bids), as_levels(asks))
        assert bystander.open  # another symbol's stream had nothing to miss
        again.close()
        bystander.close()
    finally:
        await hub.stop()


class Refusing:
    """A security recorder whose database cannot take the row."""

    async def record(self, event: Any) -> None:
        raise ConnectionRefusedError("the database is unreachable")


async def test_a_forgery_whose_security_event_cannot_be_stored_is_still_refused_and_the_streams_go_on(
    floor_settings: FloorSettings,
    kafka_bootstrap: str,
    api_pool: asyncpg.Pool,
    record_writers: RecordWriters,
    producer: AIOKafkaProducer,
) -> None:
    hub = await started_hub(api_pool, floor_settings, api_pool, security=Refusing())
    try:
        account = f"ACC{uuid.uuid4().hex[:6]}"
        sub = hub.subscribe_order_events(lambda e: e.account == account)
        command = f"cmd-{uuid.uuid4().hex[:8]}"
        forged = order_event(
            command, 1, EventKind.FILLED, 200, Fill("x-1", 200, Decimal("230")), account=account
        )
        await publish(producer, sign_record(ORDERS_EVENTS, encode(forged), generate_private_key()))
        genuine = order_event(command, 2, EventKind.SUBMITTED, account=account)
        await publish(producer, signed(genuine, record_writers))
        assert (await asyncio.wait_for(anext(sub), 10)).event_id == genuine.event_id
        assert hub.stats().unverified >= 1 and hub.stats().interrupted == 0
        sub.close()
    finally:
        await hub.stop()


async def test_a_record_nested_past_the_parser_is_refused_and_the_feeds_go_on(
    hub: Hub, producer: AIOKafkaProducer, record_writers: RecordWriters
) -> None:
    """JSON nested deeper than Python's parser recurses raises RecursionError, not ValueError: on
    either topic it is a malformed record, never an error that stops the hub's feed."""
    market = Market(producer, symbol(), record_writers.hotpath)
    sub, first = await subscribed(hub, market, 5)
    deep = b"[" * 100_000
    await producer.send_and_wait(MARKET_DEPTH, deep, key=market.symbol.encode())
    await producer.send_and_wait(ORDERS_EVENTS, deep, key=b"DU1/AAPL")
    bids, asks = await market.publish()
    delta = await asyncio.wait_for(anext(sub), 10)
    assert isinstance(delta, BookDelta) and delta.previous_sequence == first.sequence
    client = PriceBook(first)
    client.apply(delta)
    assert client.levels() == (as_levels(bids), as_levels(asks))
    sub.close()


async def test_a_replayed_older_book_does_not_hide_the_newer_one_fetched_with_it(
    hub: Hub, producer: AIOKafkaProducer, record_writers: RecordWriters
) -> None:
    """A genuine but older record appended after a newer one (a replayed tail) is not the book:
    the newer one fetched with it is."""
    market = Market(producer, symbol(), record_writers.hotpath)
    sub, first = await subscribed(hub, market, 5)
    old = sign_record(
        MARKET_DEPTH, depth_record(market.symbol, *market.levels(1), market.t0), record_writers.hotpath
    )
    market.n += 1
    bids, asks = market.levels(market.n)
    newer = sign_record(
        MARKET_DEPTH,
        depth_record(market.symbol, bids, asks, market.t0 + timedelta(microseconds=market.n)),
        record_writers.hotpath,
    )
    # One producer batch: the hub fetches both records together, the newer first.
    batch = producer.create_batch()
    for raw in (newer, old):
        assert batch.append(key=market.symbol.encode(), value=raw, timestamp=None) is not None
    batch.close()
    partition = min(await producer.partitions_for(MARKET_DEPTH))
    await (await producer.send_batch(batch, MARKET_DEPTH, partition=partition))
    delta = await asyncio.wait_for(anext(sub), 10)
    assert isinstance(delta, BookDelta) and delta.previous_sequence == first.sequence
    client = PriceBook(first)
    client.apply(delta)
    assert client.levels() == (as_levels(bids), as_levels(asks))
    sub.close()


async def test_a_gap_said_by_a_book_superseded_in_its_fetch_still_resyncs_the_subscribers(
    hub: Hub, producer: AIOKafkaProducer, record_writers: RecordWriters
) -> None:
    """The first book after a failover says the feed had a gap; a newer book fetched with it is
    the one taken, and the gap is not lost with the older record."""
    market = Market(producer, symbol(), record_writers.hotpath)
    sub, first = await subscribed(hub, market, 5)
    records = []
    for gap in (True, False):
        market.n += 1
        levels = market.levels(market.n)
        ts = market.t0 + timedelta(microseconds=market.n)
        raw = depth_record(market.symbol, *levels, ts, gap=gap)
        records.append(sign_record(MARKET_DEPTH, raw, record_writers.hotpath))
    bids, asks = levels
    batch = producer.create_batch()  # one batch: the hub fetches both together
    for raw in records:
        assert batch.append(key=market.symbol.encode(), value=raw, timestamp=None) is not None
    batch.close()
    partition = min(await producer.partitions_for(MARKET_DEPTH))
    await (await producer.send_batch(batch, MARKET_DEPTH, partition=partition))
    fresh = await asyncio.wait_for(anext(sub), 10)
    assert isinstance(fresh, BookSnapshot) and fresh.gap and fresh.sequence > first.sequence
    assert (fresh.bids, fresh.asks) == (as_levels(bids), as_levels(asks))
    assert hub.stats().depth_gaps >= 1
    sub.close()
