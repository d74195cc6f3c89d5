"""The hub's tapes against real Kafka and Postgres: the session's trades rebuilt from
``market.trades`` on start, then each trade in order; each trade counted once; forged records
never counted and recorded as security events; a late subscriber's snapshot that matches; a
slow one sent a fresh snapshot instead of a hole."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from api.hub import BookSnapshot, CountedTrade, Hub, TapeSnapshot, UnknownSymbol
from bus.topics import MARKET_TRADES
from config.settings import FloorSettings
from tests.api.test_hub import (  # noqa: F401 - fixtures used by name
    Market,
    Unreachable,
    api_pool,
    as_levels,
    producer,
    started_hub,
)
from tests.fixtures.hotpath import RecordWriters
from tests.helpers import eventually
from trading.record_signing import UNKNOWN_KEY, UNSIGNED, sign_record
from trading.signing import generate_private_key, key_id

TRADED = tuple(f"TAPE{uuid.uuid4().hex[:5].upper()}" for _ in range(12))
"""This run's own symbols (the topic is shared with every other suite and keeps its records)."""
_unused = iter(TRADED)


class Venue:
    """One symbol's trades as the hot path publishes them: in order, the venue's volume growing
    with each, signed by ``key`` (the hot path's, or a forger's)."""

    def __init__(self, kafka: AIOKafkaProducer, key: Ed25519PrivateKey) -> None:
        self.producer = kafka
        self.symbol = next(_unused)
        self.key = key
        self.volume = 0
        self.n = 0
        self.t0 = datetime.now(UTC)

    def trades(self, *sizes_prices: tuple[int, str]) -> list[dict[str, Any]]:
        out = []
        for size, price in sizes_prices:
            self.n += 1
            self.volume += size
            ts = (self.t0 + timedelta(milliseconds=self.n)).isoformat()
            out.append({"price": price, "size": size, "ts": ts, "venue_volume": self.volume})
        return out

    def record(self, trades: list[dict[str, Any]], key: Ed25519PrivateKey | None = None) -> bytes:
        raw = json_bytes({"v": 1, "symbol": self.symbol, "trades": trades})
        return sign_record(MARKET_TRADES, raw, key or self.key)

    async def send(self, raw: bytes) -> None:
        await self.producer.send_and_wait(MARKET_TRADES, raw, key=self.symbol.encode())

    async def publish(self, *sizes_prices: tuple[int, str]) -> list[dict[str, Any]]:
        trades = self.trades(*sizes_prices)
        await self.send(self.record(trades))
        return trades


def json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def volume_at(trades: list[dict[str, Any]]) -> dict[Decimal, int]:
    out: dict[Decimal, int] = {}
    for t in trades:
        out[Decimal(t["price"])] = out.get(Decimal(t["price"]), 0) + t["size"]
    return out


@pytest.fixture
async def hub(
    floor_settings: FloorSettings,
    kafka_bootstrap: str,
    api_pool: asyncpg.Pool,  # noqa: F811
    record_writers: RecordWriters,
) -> AsyncIterator[Hub]:
    h = await started_hub(api_pool, floor_settings, api_pool, hotpath_symbols=",".join(TRADED))
    yield h
    await h.stop()


async def next_item(sub: Any) -> TapeSnapshot | CountedTrade:
    item: TapeSnapshot | CountedTrade = await asyncio.wait_for(anext(sub), 10)
    return item


async def test_a_starting_hub_rebuilds_the_session_then_sends_each_trade_in_order_exactly(
    floor_settings: FloorSettings,
    api_pool: asyncpg.Pool,  # noqa: F811
    producer: AIOKafkaProducer,  # noqa: F811
    record_writers: RecordWriters,
) -> None:
    venue = Venue(producer, record_writers.hotpath)
    before = await venue.publish((100, "229.86"), (5, "229.87"), (200, "229.86"))
    before += await venue.publish((1, "229.8500"))
    hub = await started_hub(api_pool, floor_settings, api_pool, hotpath_symbols=",".join(TRADED))
    try:
        sub = hub.subscribe_trades(venue.symbol)
        snapshot = await next_item(sub)
        assert isinstance(snapshot, TapeSnapshot)
        assert dict(snapshot.volume_at_price) == volume_at(before) == {
            Decimal("229.86"): 300,
            Decimal("229.87"): 5,
            Decimal("229.85"): 1,
        }
        assert [p for p, _ in snapshot.volume_at_price] == sorted(volume_at(before), reverse=True)
        assert snapshot.session_volume == 306 and snapshot.last is not None
        assert (snapshot.last.price, snapshot.last.size) == (Decimal("229.8500"), 1)
        after = await venue.publish((40, "229.88"), (60, "229.84"), (3, "229.88"))
        volume = 306
        for sent in after:
            item = await next_item(sub)
            assert isinstance(item, CountedTrade)
            volume += sent["size"]
            assert (item.symbol, item.price, item.size, item.session_volume) == (
                venue.symbol,
                Decimal(sent["price"]),
                sent["size"],
                volume,
            )
            assert item.venue_ts == datetime.fromisoformat(sent["ts"])
        assert hub.tape(venue.symbol) == hub.tape(venue.symbol)  # one object while unchanged
        tape = hub.tape(venue.symbol)
        assert tape is not None and dict(tape.volume_at_price) == volume_at(before + after)
        sub.close()
    finally:
        await hub.stop()


async def test_a_trade_delivered_twice_counts_once(
    hub: Hub, producer: AIOKafkaProducer, record_writers: RecordWriters  # noqa: F811
) -> None:
    venue = Venue(producer, record_writers.hotpath)
    sub = hub.subscribe_trades(venue.symbol)
    assert isinstance(await next_item(sub), TapeSnapshot)
    trades = venue.trades((100, "50.01"), (200, "50.02"))
    raw = venue.record(trades)
    await venue.send(raw)
    await venue.send(raw)  # redelivered
    await venue.send(venue.record(trades[1:]))  # a second writer of the same venue, behind
    fresh = await venue.publish((7, "50.03"))
    got = [await next_item(sub) for _ in range(3)]
    assert [(t.price, t.size, t.session_volume) for t in got if isinstance(t, CountedTrade)] == [
        (Decimal("50.01"), 100, 100),
        (Decimal("50.02"), 200, 300),
        (Decimal(fresh[0]["price"]), 7, 307),
    ]
    sub.close()


async def test_forged_and_unsigned_trades_are_never_counted_and_are_security_events(
    hub: Hub,
    producer: AIOKafkaProducer,  # noqa: F811
    record_writers: RecordWriters,
    ledger_pool: asyncpg.Pool,
) -> None:
    venue = Venue(producer, record_writers.hotpath)
    sub = hub.subscribe_trades(venue.symbol)
    assert isinstance(await next_item(sub), TapeSnapshot)
    forger = generate_private_key()
    await venue.send(venue.record(venue.trades((100000, "1.00")), key=forger))  # a print far off the book
    unsigned = json_bytes({"v": 1, "symbol": venue.symbol, "trades": venue.trades((50000, "2.00"))})
    await venue.send(unsigned)
    genuine = await venue.publish((10, "80.00"))
    item = await next_item(sub)  # the genuine trade is the next thing sent
    assert isinstance(item, CountedTrade) and (item.price, item.size, item.session_volume) == (
        Decimal(genuine[0]["price"]),
        10,
        10,
    )
    tape = hub.tape(venue.symbol)
    assert tape is not None and dict(tape.volume_at_price) == {Decimal("80.00"): 10}

    async def recorded() -> bool:
        rows = await ledger_pool.fetch(
            "SELECT reason, severity FROM security_events WHERE source = 'api'"
            " AND detail->>'topic' = $1 AND (key_id = $2 OR reason = $3)",
            MARKET_TRADES,
            key_id(forger),
            UNSIGNED,
        )
        return {r["reason"] for r in rows} >= {UNKNOWN_KEY, UNSIGNED}

    await eventually(recorded)
    assert hub.stats().unverified >= 2
    sub.close()


async def test_a_late_subscribers_snapshot_is_the_first_ones_snapshot_plus_the_trades_it_was_sent(
    hub: Hub, producer: AIOKafkaProducer, record_writers: RecordWriters  # noqa: F811
) -> None:
    venue = Venue(producer, record_writers.hotpath)
    await venue.publish((10, "10.00"), (20, "10.01"))
    early = hub.subscribe_trades(venue.symbol)
    first = await next_item(early)
    assert isinstance(first, TapeSnapshot)
    await venue.publish((30, "10.00"), (40, "9.99"))
    await eventually(lambda: (tape := hub.tape(venue.symbol)) is not None and tape.session_volume == 100)
    late = hub.subscribe_trades(venue.symbol)
    seen: dict[Decimal, int] = dict(first.volume_at_price)
    snapshot = await next_item(late)
    assert isinstance(snapshot, TapeSnapshot) and snapshot.session_volume == 100
    trade = first.last
    while trade is None or trade.session_volume < snapshot.session_volume:
        trade = await next_item(early)
        assert isinstance(trade, CountedTrade)
        seen[trade.price] = seen.get(trade.price, 0) + trade.size
    assert seen == {Decimal("10.00"): 40, Decimal("10.01"): 20, Decimal("9.99"): 40}
    assert dict(snapshot.volume_at_price) == seen
    assert snapshot.last is trade  # the very trade the early one was sent last
    early.close()
    late.close()


async def test_a_subscriber_that_falls_behind_gets_a_fresh_snapshot_not_a_hole(
    floor_settings: FloorSettings,
    api_pool: asyncpg.Pool,  # noqa: F811
    producer: AIOKafkaProducer,  # noqa: F811
    record_writers: RecordWriters,
) -> None:
    hub = await started_hub(
        api_pool, floor_settings, api_pool, hotpath_symbols=",".join(TRADED), api_subscription_queue=3
    )
    try:
        venue = Venue(producer, record_writers.hotpath)
        slow = hub.subscribe_trades(venue.symbol)
        assert isinstance(await next_item(slow), TapeSnapshot)
        trades = await venue.publish(*((i + 1, "20.00") for i in range(8)))
        await eventually(lambda: hub.stats().tape_resent >= 1)
        item = await next_item(slow)
        assert isinstance(item, TapeSnapshot) and item.session_volume == sum(t["size"] for t in trades)
        more = await venue.publish((5, "20.01"))
        after = await next_item(slow)
        assert isinstance(after, CountedTrade)
        assert after.session_volume == item.session_volume + more[0]["size"]
        slow.close()
    finally:
        await hub.stop()


async def test_the_tape_of_a_symbol_the_floor_does_not_trade_is_refused(hub: Hub) -> None:
    with pytest.raises(UnknownSymbol):
        hub.subscribe_trades("NOTTRADED")
    assert hub.tape("NOTTRADED") is None


async def test_a_trade_that_cannot_be_verified_marks_that_symbols_tape_incomplete_only(
    floor_settings: FloorSettings,
    api_pool: asyncpg.Pool,  # noqa: F811
    producer: AIOKafkaProducer,  # noqa: F811
    record_writers: RecordWriters,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The tape then has a hole the hub cannot fill: its subscribers are sent a snapshot that
    says so, and so is whoever subscribes again, not one presented as complete."""
    monkeypatch.setattr("api.hub.RETRY_S", 0.0)
    db = Unreachable(api_pool)
    hub = await started_hub(db, floor_settings, api_pool, hotpath_symbols=",".join(TRADED))
    try:
        venue = Venue(producer, record_writers.hotpath)
        other = Venue(producer, record_writers.hotpath)
        sub, bystander = hub.subscribe_trades(venue.symbol), hub.subscribe_trades(other.symbol)
        first = await next_item(sub)
        assert isinstance(first, TapeSnapshot) and first.complete
        assert isinstance(await next_item(bystander), TapeSnapshot)
        await venue.publish((5, "30.00"))
        counted = await next_item(sub)
        assert isinstance(counted, CountedTrade) and counted.complete
        db.down = True
        stranger = generate_private_key()  # a key the registry copy lacks: the hub must look it up

        async def interrupted() -> bool:
            await venue.send(venue.record(venue.trades((1, "30.00")), key=stranger))
            return hub.stats().interrupted > 0

        await eventually(interrupted, interval=0.1)
        marked = await next_item(sub)
        assert isinstance(marked, TapeSnapshot) and not marked.complete and marked.session_volume == 5
        db.down = False
        again = hub.subscribe_trades(venue.symbol)
        resubscribed = await next_item(again)
        assert isinstance(resubscribed, TapeSnapshot) and not resubscribed.complete
        assert sub.open and bystander.open
        other_tape = hub.tape(other.symbol)
        assert other_tape is not None and other_tape.complete
        for s in (sub, again, bystander):
            s.close()
    finally:
        await hub.stop()


async def test_a_jump_in_the_venues_volume_reaches_subscribers_as_an_incomplete_tape(
    hub: Hub, producer: AIOKafkaProducer, record_writers: RecordWriters  # noqa: F811
) -> None:
    """Trades the hot path lost (backpressure, no broker session, refused) show as the venue's
    volume jumping past what the floor counted."""
    venue = Venue(producer, record_writers.hotpath)
    sub = hub.subscribe_trades(venue.symbol)
    assert isinstance(await next_item(sub), TapeSnapshot)
    await venue.publish((100, "10.00"))
    venue.trades((40, "10.01"))  # traded at the venue, never published
    await venue.publish((10, "10.02"))
    whole, after_hole = await next_item(sub), await next_item(sub)
    assert isinstance(whole, CountedTrade) and (whole.complete, whole.venue_volume) == (True, 100)
    assert isinstance(after_hole, CountedTrade)
    assert (after_hole.complete, after_hole.session_volume, after_hole.venue_volume) == (False, 110, 150)
    late = hub.subscribe_trades(venue.symbol)
    snapshot = await next_item(late)
    assert isinstance(snapshot, TapeSnapshot)
    assert (snapshot.complete, snapshot.session_volume, snapshot.venue_volume) == (False, 110, 150)
    sub.close()
    late.close()


class RegistryGate:
    """The API's pool; while ``closed``, a read of the key registry waits (a registry that is
    slow to answer, or a tape rebuild busy verifying)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.opened = asyncio.Event()
        self.opened.set()
        self.waiting = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.pool, name)
        if name not in {"fetch", "fetchrow", "fetchval"}:
            return attr

        async def gated(*args: Any, **kwargs: Any) -> Any:
            if args and "agent_keys" in str(args[0]) and not self.opened.is_set():
                self.waiting.set()
                await self.opened.wait()
            return await attr(*args, **kwargs)

        return gated


async def test_books_keep_flowing_while_the_tape_is_stuck_verifying(
    floor_settings: FloorSettings,
    api_pool: asyncpg.Pool,  # noqa: F811
    producer: AIOKafkaProducer,  # noqa: F811
    record_writers: RecordWriters,
) -> None:
    """``market.trades`` is read apart from the books and order events: however long the tape
    takes to verify (a restart rebuilding a busy session), a book is not held back."""
    gate = RegistryGate(api_pool)
    hub = await started_hub(gate, floor_settings, api_pool, hotpath_symbols=",".join(TRADED))
    try:
        market = Market(producer, next(_unused), record_writers.hotpath)
        book = hub.subscribe_book(market.symbol, 5)
        await market.publish()
        assert isinstance(await asyncio.wait_for(anext(book), 10), BookSnapshot)  # the registry is read
        gate.opened.clear()
        venue = Venue(producer, record_writers.hotpath)
        stranger = generate_private_key()  # unknown: once the registry may be reread, it is

        async def tape_stuck() -> bool:
            await venue.send(venue.record(venue.trades((1, "30.00")), key=stranger))
            return gate.waiting.is_set()

        await eventually(tape_stuck, interval=0.2)
        bids, asks = await market.publish()

        async def book_moved() -> bool:
            now = hub.book(market.symbol, 5)
            return now is not None and (now.bids, now.asks) == (as_levels(bids), as_levels(asks))

        await eventually(book_moved, timeout=10.0)
        book.close()
    finally:
        gate.opened.set()
        await hub.stop()
