"""GraphQL subscriptions over real WebSockets (graphql-transport-ws) against a real API process,
fed by what the test produces to Kafka (market.depth and orders.events, signed as the hot path
signs them) and writes to Postgres (security events)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from api.graphql.errors import OPS_ONLY
from api.graphql.router import SLOW_CONSUMER, SLOW_CONSUMER_CODE
from api.webauthn_ceremonies import Ceremonies
from bus.kafka import start_producer
from bus.signed_records import SigningProducer
from bus.topics import MARKET_DEPTH, ORDERS_EVENTS
from ledger.api_tokens import issue_token
from ledger.order_events import record_order_event
from ledger.security_events import record_security_event
from tests.api.conftest import WS_PING_INTERVAL_S, WS_READ_TIMEOUT_S, GraphQLApi, book_symbol
from tests.api.gql_ws import GraphQLSocket, OperationError, graphql_socket
from tests.factories import depth_record, order_event
from tests.fixtures.hotpath import RecordWriters
from tests.fixtures.identity import enrolled_and_signed_in
from tests.helpers import eventually
from trading.depth_book import BookDelta, BookSnapshot, PriceBook, SequenceGap
from trading.order_events import EventKind, OrderEvent, encode
from trading.orders import Fill
from trading.record_signing import sign_record
from trading.security_events import SecurityEvent, Severity
from trading.symbols import UNKNOWN_SYMBOL

ORDER_BOOK = """subscription($symbol: String!, $depth: Int!) {
  orderBook(symbol: $symbol, depth: $depth) {
    __typename
    ... on BookSnapshot { symbol sequence venueTs gap bids { price size } asks { price size } }
    ... on BookDelta { symbol sequence previousSequence venueTs bids { price size } asks { price size } }
  }
}"""


@pytest.fixture
async def producer(kafka_bootstrap: str, record_writers: RecordWriters) -> AsyncIterator[SigningProducer]:
    """Writes records as the hot path does: signed with its key."""
    p = await start_producer(kafka_bootstrap, "test-graphql-subscriptions")
    yield SigningProducer(p, record_writers.hotpath)
    await p.stop()


@pytest.fixture
async def token(cli_pool: asyncpg.Pool) -> str:
    _, secret = await issue_token(cli_pool, f"gql-sub-{uuid.uuid4().hex[:8]}", "read")
    return secret


def new_symbol() -> str:
    return book_symbol()


Levels = list[tuple[str, int]]


def book_state(n: int, levels: int = 5) -> tuple[Levels, Levels]:
    """State ``n`` of a test book: every level's price moves a cent per state, so each state
    changes the top of book."""
    base = Decimal("100") + Decimal(n) / 100
    bids = [(str(base - Decimal(i) / 100), 100 + (n + i) % 37) for i in range(levels)]
    asks = [(str(base + Decimal(i + 1) / 100), 100 + (n * 3 + i) % 41) for i in range(levels)]
    return bids, asks


async def publish_book(
    producer: SigningProducer, symbol: str, n: int, levels: int = 5, gap: bool = False
) -> tuple[Levels, Levels]:
    bids, asks = book_state(n, levels)
    await producer.send_and_wait(MARKET_DEPTH, depth_record(symbol, bids, asks, gap=gap), key=symbol.encode())
    return bids, asks


def as_record(data: dict[str, Any]) -> BookSnapshot | BookDelta:
    def levels(raw: list[dict[str, Any]]) -> tuple[tuple[Decimal, int], ...]:
        return tuple((Decimal(level["price"]), level["size"]) for level in raw)

    item = data["orderBook"]
    venue_ts = datetime.fromisoformat(item["venueTs"])
    if item["__typename"] == "BookSnapshot":
        return BookSnapshot(
            item["symbol"], item["sequence"], venue_ts, levels(item["bids"]), levels(item["asks"])
        )
    return BookDelta(
        item["symbol"],
        item["sequence"],
        item["previousSequence"],
        venue_ts,
        levels(item["bids"]),
        levels(item["asks"]),
    )


def expected(bids: Levels, asks: Levels, depth: int) -> tuple[tuple[tuple[Decimal, int], ...], ...]:
    return (
        tuple((Decimal(p), s) for p, s in bids[:depth]),
        tuple((Decimal(p), s) for p, s in asks[:depth]),
    )


async def book_subscriber(api: GraphQLApi, socket: GraphQLSocket, token: str, symbol: str, depth: int) -> str:
    await socket.init({"token": token})
    return await socket.subscribe(ORDER_BOOK, {"symbol": symbol, "depth": depth})


async def test_order_book_sends_a_snapshot_then_deltas_whose_sequences_link(
    graphql_api: GraphQLApi, token: str, producer: SigningProducer
) -> None:
    symbol = new_symbol()
    await publish_book(producer, symbol, 0)
    async with graphql_socket(graphql_api.ws_url) as socket:
        op = await book_subscriber(graphql_api, socket, token, symbol, 3)
        snapshot = as_record(await socket.next(op))
        assert isinstance(snapshot, BookSnapshot)
        assert (snapshot.bids, snapshot.asks) == expected(*book_state(0), 3)
        book = PriceBook(snapshot)
        for n in range(1, 6):
            bids, asks = await publish_book(producer, symbol, n)
            while book.levels() != expected(bids, asks, 3):
                delta = as_record(await socket.next(op))
                assert isinstance(delta, BookDelta)
                assert delta.previous_sequence == book.sequence and delta.sequence > book.sequence
                book.apply(delta)
            assert book.venue_ts is not None


async def test_a_client_that_misses_a_delta_sees_the_gap_and_resyncs_by_resubscribing(
    graphql_api: GraphQLApi, token: str, producer: SigningProducer
) -> None:
    symbol = new_symbol()
    await publish_book(producer, symbol, 0)
    async with graphql_socket(graphql_api.ws_url) as socket:
        op = await book_subscriber(graphql_api, socket, token, symbol, 5)
        first = as_record(await socket.next(op))
        assert isinstance(first, BookSnapshot)
        book = PriceBook(first)
        await publish_book(producer, symbol, 1)
        dropped = as_record(await socket.next(op))  # lost on the way, as far as this client knows
        assert isinstance(dropped, BookDelta)
        bids, asks = await publish_book(producer, symbol, 2)
        after_gap = as_record(await socket.next(op))
        assert isinstance(after_gap, BookDelta)
        with pytest.raises(SequenceGap):
            book.apply(after_gap)
        # Resync: leave the stream and subscribe again for a fresh snapshot.
        await socket.complete(op)
        op = await socket.subscribe(ORDER_BOOK, {"symbol": symbol, "depth": 5})
        fresh = as_record(await socket.next(op))
        assert isinstance(fresh, BookSnapshot)
        assert fresh.sequence == after_gap.sequence
        assert (fresh.bids, fresh.asks) == expected(bids, asks, 5)
        book = PriceBook(fresh)
        bids, asks = await publish_book(producer, symbol, 3)
        delta = as_record(await socket.next(op))
        assert isinstance(delta, BookDelta)
        book.apply(delta)
        assert book.levels() == expected(bids, asks, 5)


async def test_a_gap_in_the_brokers_feed_reaches_the_client_as_a_fresh_snapshot_marked_gap(
    graphql_api: GraphQLApi, token: str, producer: SigningProducer
) -> None:
    symbol = new_symbol()
    await publish_book(producer, symbol, 0)
    async with graphql_socket(graphql_api.ws_url) as socket:
        op = await book_subscriber(graphql_api, socket, token, symbol, 5)
        first = await socket.next(op)
        assert first["orderBook"]["gap"] is False
        book = PriceBook(as_record(first))
        await publish_book(producer, symbol, 1)
        book.apply(as_record(await socket.next(op)))  # type: ignore[arg-type]
        # The gateway failed over: the first book after it says so, even an unchanged one.
        bids, asks = await publish_book(producer, symbol, 1, gap=True)
        fresh = await socket.next(op)
        assert fresh["orderBook"]["__typename"] == "BookSnapshot" and fresh["orderBook"]["gap"] is True
        snapshot = as_record(fresh)
        assert snapshot.sequence > book.sequence
        assert (snapshot.bids, snapshot.asks) == expected(bids, asks, 5)
        book = PriceBook(snapshot)  # replaced, not merged
        bids, asks = await publish_book(producer, symbol, 2)
        delta = as_record(await socket.next(op))
        assert isinstance(delta, BookDelta)
        book.apply(delta)
        assert book.levels() == expected(bids, asks, 5)


SUBSCRIBERS = 200
RATE_PER_S = 20
SECONDS = 8


async def test_a_book_of_a_symbol_the_floor_does_not_trade_is_refused_by_name(
    graphql_api: GraphQLApi, token: str
) -> None:
    async with graphql_socket(graphql_api.ws_url) as socket:
        await socket.init({"token": token})
        op = await socket.subscribe(ORDER_BOOK, {"symbol": "NOPE", "depth": 5})
        with pytest.raises(OperationError) as refused:
            await socket.next(op)
        assert refused.value.codes == [UNKNOWN_SYMBOL]
        assert "FLOOR_HOTPATH_SYMBOLS" in refused.value.errors[0]["message"]
    query = "query($s: String!) { book(symbol: $s, depth: 5) { sequence } }"
    assert await graphql_api.refusal(query, {"s": "NOPE"}, token=token) == UNKNOWN_SYMBOL


async def test_200_book_subscribers_keep_their_latency_while_a_stuck_one_is_closed_as_slow(
    graphql_api: GraphQLApi, token: str, producer: SigningProducer
) -> None:
    """199 clients read the top of book while one (the deepest book, a small receive buffer) stops
    reading. The others' venue-to-frame latency stays well under the time the server gives a
    stuck client (the hub never waits for it), and each, its deltas all linked, reaches the last
    state (a delta may merge several states: the book's mailbox conflates); the stuck one answers
    no ping and is closed with the slow-consumer reason, which it finds after what was buffered
    for it."""
    symbol = new_symbol()
    await publish_book(producer, symbol, 0, levels=50)
    states = RATE_PER_S * SECONDS
    last = expected(*book_state(states, 50), 1)
    latencies: list[float] = []
    measuring = asyncio.Event()
    ready = asyncio.Semaphore(0)

    async def follow() -> int:
        async with graphql_socket(graphql_api.ws_url) as socket:
            op = await book_subscriber(graphql_api, socket, token, symbol, 1)
            book = PriceBook(_snapshot(as_record(await socket.next(op, timeout=30))))
            ready.release()
            while book.levels() != last:
                delta = as_record(await socket.next(op, timeout=30))
                received = time.time()
                assert isinstance(delta, BookDelta)
                book.apply(delta)  # raises on a gap
                if measuring.is_set():
                    latencies.append(received - delta.venue_ts.timestamp())
            return book.sequence

    readers = SUBSCRIBERS - 1
    followers = []
    for _ in range(readers):
        followers.append(asyncio.create_task(follow()))
        await asyncio.wait_for(ready.acquire(), 30)
    async with graphql_socket(graphql_api.ws_url, receive_buffer=4096, max_queue=1) as stuck:
        await book_subscriber(graphql_api, stuck, token, symbol, 50)  # and reads nothing more for now
        measuring.set()
        started = time.monotonic()
        for n in range(1, states + 1):
            await publish_book(producer, symbol, n, levels=50)
            await asyncio.sleep(max(0.0, started + n / RATE_PER_S - time.monotonic()))
        # Stuck for SECONDS, longer than a ping and its read timeout: the server has given up on
        # it, or will at its next ping, which it reads but never answers. It reads now, while the
        # others still may be catching up, so the close it finds is the server's, not the
        # transport's keepalive giving up on it much later.
        closed = asyncio.create_task(stuck.closed(timeout=60))
        sequences = await asyncio.gather(*followers)

        latencies.sort()
        p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
        print(f"\n{len(latencies)} frames, {readers} readers: p50 {p50 * 1e3:.0f} ms, p99 {p99 * 1e3:.0f} ms")
        # Had the stuck one held the others back, they would have waited up to the read timeout
        # for each of its frames.
        assert p50 < WS_READ_TIMEOUT_S / 4 and p99 < WS_READ_TIMEOUT_S, (p50, p99)
        assert len(set(sequences)) == 1

        code, reason = await closed
        assert (code, reason) == (SLOW_CONSUMER_CODE, SLOW_CONSUMER)
        assert stuck.received < states, "it was cut off, not sent everything"
    assert SECONDS > WS_PING_INTERVAL_S + WS_READ_TIMEOUT_S


def _snapshot(item: BookSnapshot | BookDelta) -> BookSnapshot:
    assert isinstance(item, BookSnapshot)
    return item


ORDER_EVENTS = """subscription($account: String) {
  orderEvents(account: $account) { id orderId kind account symbol filledQuantity fill { execId price } }
}"""


def signed(event: OrderEvent, writers: RecordWriters) -> bytes:
    return sign_record(ORDERS_EVENTS, encode(event), writers.hotpath)


async def test_order_events_reach_a_trader_only_for_its_accounts(
    graphql_api: GraphQLApi,
    producer: SigningProducer,
    record_writers: RecordWriters,
    cli_pool: asyncpg.Pool,
    ceremonies: Ceremonies,
) -> None:
    its, other = f"GQ-{uuid.uuid4().hex[:8]}", f"GQ-{uuid.uuid4().hex[:8]}"
    _, _, cookie = await enrolled_and_signed_in(ceremonies, cli_pool, accounts=(its,))
    async with graphql_socket(graphql_api.ws_url, cookie=f"floor_session={cookie}") as socket:
        await socket.init()
        op = await socket.subscribe(ORDER_EVENTS)
        fill = Fill(f"exec-{uuid.uuid4().hex}", 50, Decimal("10.25"))
        own = order_event(f"cmd-{uuid.uuid4().hex}", 1, EventKind.PARTIALLY_FILLED, 50, fill, account=its)
        received: dict[str, Any] = {}

        async def delivered() -> bool:
            # Until the subscription is live at the hub an event passes it by: send again.
            foreign = order_event(f"cmd-{uuid.uuid4().hex}", 0, EventKind.ACCEPTED, account=other)
            for event in (foreign, own):
                await producer.send_and_wait(ORDERS_EVENTS, signed(event, record_writers), key=b"k")
            try:
                received.update((await socket.next(op, timeout=1))["orderEvents"])
            except TimeoutError:
                return False
            return True

        await eventually(delivered, timeout=20)
        assert received == {
            "id": own.event_id, "orderId": own.command_id, "kind": "PARTIALLY_FILLED", "account": its,
            "symbol": "MSFT", "filledQuantity": 50, "fill": {"execId": fill.exec_id, "price": "10.25"},
        }  # fmt: skip


async def test_positions_stream_the_callers_positions_then_each_fill(
    graphql_api: GraphQLApi,
    producer: SigningProducer,
    record_writers: RecordWriters,
    ledger_pool: asyncpg.Pool,
    cli_pool: asyncpg.Pool,
    ceremonies: Ceremonies,
) -> None:
    its = f"GQ-{uuid.uuid4().hex[:8]}"
    bought = Fill(f"exec-{uuid.uuid4().hex}", 10, Decimal("100"))
    order_id = f"cmd-{uuid.uuid4().hex}"
    await record_order_event(
        ledger_pool, order_event(order_id, 0, EventKind.FILLED, 10, bought, account=its, quantity=10)
    )
    _, _, cookie = await enrolled_and_signed_in(ceremonies, cli_pool, accounts=(its,))
    query = "subscription { positions { account symbol quantity averageCost realizedPnl } }"
    async with graphql_socket(graphql_api.ws_url, cookie=f"floor_session={cookie}") as socket:
        await socket.init()
        op = await socket.subscribe(query)
        first = (await socket.next(op))["positions"]
        assert first == {"account": its, "symbol": "MSFT", "quantity": 10, "averageCost": "100.000000",
                         "realizedPnl": "0.0000"}  # fmt: skip
        # The same execution again (already counted) and then a sale.
        sold = Fill(f"exec-{uuid.uuid4().hex}", 4, Decimal("105"))
        again = order_event(order_id, 0, EventKind.FILLED, 10, bought, account=its, quantity=10)
        sale = order_event(
            f"cmd-{uuid.uuid4().hex}", 0, EventKind.FILLED, 4, sold, account=its, quantity=4, side="SELL"
        )
        for event in (again, sale):
            await producer.send_and_wait(ORDERS_EVENTS, signed(event, record_writers), key=b"k")
        moved = (await socket.next(op))["positions"]
        assert (moved["quantity"], moved["realizedPnl"]) == (6, "20.0000")


SECURITY = "subscription { securityEvents { reason severity } }"


async def test_security_events_stream_to_ops_and_are_refused_to_others(
    graphql_api: GraphQLApi, token: str, cli_pool: asyncpg.Pool, ledger_pool: asyncpg.Pool
) -> None:
    async with graphql_socket(graphql_api.ws_url) as socket:
        await socket.init({"token": token})
        op = await socket.subscribe(SECURITY)
        with pytest.raises(OperationError) as refused:
            await socket.next(op)
        assert refused.value.codes == [OPS_ONLY]

    _, ops = await issue_token(cli_pool, f"gql-ops-{uuid.uuid4().hex[:8]}", "ops")
    marker = f"test.gql_stream_{uuid.uuid4().hex[:8]}"
    async with graphql_socket(graphql_api.ws_url) as socket:
        await socket.init({"token": ops})
        op = await socket.subscribe(SECURITY)

        async def delivered() -> dict[str, Any] | None:
            # Until the subscription is live at the hub an event passes it by: record another.
            await record_security_event(
                ledger_pool, SecurityEvent(reason=marker, severity=Severity.CRITICAL, source="api")
            )
            try:
                while (event := (await socket.next(op, timeout=1))["securityEvents"])["reason"] != marker:
                    pass
            except TimeoutError:
                return None
            return event

        assert await eventually(delivered, timeout=20) == {"reason": marker, "severity": "critical"}


async def test_the_breaker_state_streams_its_current_state_first(graphql_api: GraphQLApi, token: str) -> None:
    async with graphql_socket(graphql_api.ws_url) as socket:
        await socket.init({"token": token})
        op = await socket.subscribe("subscription { breakerState { state seq kind } }")
        state = (await socket.next(op))["breakerState"]
    query = await graphql_api.query("{ breaker { state seq kind } }", token=token)
    assert state == query["breaker"]
