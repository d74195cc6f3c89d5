"""The hot path publishes every trade of its symbols at the paper venue on ``market.trades``,
signed, in the venue's order, none lost or conflated: the tape the HUD's volume at price is
added up from."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from brokers.base import Trade
from bus.kafka import start_producer
from bus.signed_records import SigningProducer
from bus.topics import MARKET_TRADES
from hotpath.trades import LINGER_S, MAX_BATCH, TradePublisher
from ledger.record_keys import writer_keys
from tests.fixtures.hotpath import RecordWriters, read_until
from tests.fixtures.paper import PaperStack
from tests.hotpath.conftest import HotPathProcess
from trading.record_signing import HOTPATH_WRITER, PROOF, verify_record

SYMBOL = "AAPL"
BUSY_RATE = 400.0
"""Model events a second while the test reads (a tenth or so trade): enough trades in a second."""
WANTED = 40
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@pytest.fixture
async def busy_tape(paper: PaperStack) -> AsyncIterator[None]:
    async with paper.event_rate(SYMBOL, BUSY_RATE):
        yield


def _trades(raw: bytes, symbol: str = SYMBOL) -> list[dict[str, Any]]:
    try:
        record = json.loads(raw)
    except ValueError:
        return []
    if not isinstance(record, dict) or record.get("symbol") != symbol:
        return []
    trades: list[dict[str, Any]] = record.get("trades", [])
    return trades


@asynccontextmanager
async def _publishing(
    kafka_bootstrap: str, record_writers: RecordWriters, client_id: str
) -> AsyncIterator[TradePublisher]:
    """A trade publisher on ``market.trades`` signing as the hot path, its sender running until
    the block ends."""
    inner = await start_producer(kafka_bootstrap, client_id)
    publisher = TradePublisher(SigningProducer(inner, record_writers.hotpath), MARKET_TRADES)
    task = asyncio.create_task(publisher.run())
    try:
        yield publisher
    finally:
        task.cancel()
        await inner.stop()


async def _records_of(kafka_bootstrap: str, symbol: str, n: int) -> list[bytes]:
    """The records on ``market.trades`` of ``symbol``, read until they carry ``n`` trades."""
    mine: list[bytes] = []

    def done(raw: bytes) -> bool:
        if json.loads(raw).get("symbol") == symbol:
            mine.append(raw)
        return sum(len(_trades(r, symbol)) for r in mine) >= n

    await read_until(kafka_bootstrap, MARKET_TRADES, done)
    return mine


async def _verified(pool: asyncpg.Pool, raws: list[bytes]) -> list[dict[str, Any]]:
    """The records, each verified as a record writer signed it (RecordRefused if not)."""
    keys = await writer_keys(pool)
    return [verify_record(MARKET_TRADES, raw, keys) for raw in raws]


async def test_every_venue_trade_is_on_market_trades_in_order_with_its_exact_price(
    hotpath: HotPathProcess,
    paper: PaperStack,
    kafka_bootstrap: str,
    ledger_pool: asyncpg.Pool,
    busy_tape: None,
) -> None:
    count = 0

    def enough(raw: bytes) -> bool:
        nonlocal count
        count += len(_trades(raw))
        return count >= WANTED

    # Only what the hot path publishes from now on: the topic also holds the trades of every hot
    # path the session ran before, each of which joined and left the venue's tape midway.
    records = await read_until(kafka_bootstrap, MARKET_TRADES, enough, from_start=False)
    keys = await writer_keys(ledger_pool)
    floor: list[dict[str, Any]] = []
    for raw in records:
        if not _trades(raw):
            continue
        record = verify_record(MARKET_TRADES, raw, keys)  # RecordRefused unless the hot path signed it
        assert keys[record[PROOF]["signer"]].agent_id == HOTPATH_WRITER
        assert record["v"] == 1
        floor.extend(record["trades"])
    tape = await paper.acontrol("GET", f"/symbols/{SYMBOL}/tape")
    venue = {p["volume"]: p for p in tape["prints"]}
    # The newest trades of this run: each is the venue's very print, the next in its order.
    newest = floor[-WANTED:]
    previous_volume = newest[0]["venue_volume"] - newest[0]["size"]
    for trade in newest:
        print_ = venue[trade["venue_volume"]]
        assert trade["venue_volume"] == previous_volume + trade["size"], "no trade missed or repeated"
        previous_volume = trade["venue_volume"]
        assert trade["price"] == print_["price"] and Decimal(trade["price"]) == Decimal(print_["price"])
        assert trade["size"] == print_["size"] and type(trade["size"]) is int
        ts = datetime.fromisoformat(trade["ts"])
        assert ts.utcoffset() is not None and ts.utcoffset().total_seconds() == 0
        assert (ts - EPOCH) // timedelta(milliseconds=1) == print_["time_ns"] // 1_000_000


async def test_a_burst_of_trades_goes_out_signed_in_order_in_records_of_at_most_max_batch(
    kafka_bootstrap: str, record_writers: RecordWriters, ledger_pool: asyncpg.Pool
) -> None:
    symbol = f"BURST{uuid.uuid4().hex[:6].upper()}"
    async with _publishing(kafka_bootstrap, record_writers, "test-trade-burst") as publisher:
        t0 = datetime.now(UTC)
        n = 2 * MAX_BATCH + 7
        volume = 0
        for i in range(n):  # all before the sender runs: one wake-up, one batch
            volume += i + 1
            price = Decimal("100.00") + Decimal(i % 5) / 100
            publisher.on_trade(Trade(symbol, price, i + 1, t0 + timedelta(microseconds=i), volume))
        mine = await _records_of(kafka_bootstrap, symbol, n)
    records = await _verified(ledger_pool, mine)
    assert [len(r["trades"]) for r in records] == [MAX_BATCH, MAX_BATCH, 7]
    sizes = [t["size"] for r in records for t in r["trades"]]
    assert sizes == list(range(1, n + 1)), "every trade, in order, none conflated"
    assert records[0]["trades"][3]["price"] == "100.03" and publisher.lost == 0


async def test_a_steady_tape_goes_out_in_a_record_per_linger_not_a_record_per_trade(
    kafka_bootstrap: str, record_writers: RecordWriters, ledger_pool: asyncpg.Pool
) -> None:
    """Trades arriving one by one (the sender free to run between any two) share records: a
    starting hub has that many fewer records to verify."""
    symbol = f"STEADY{uuid.uuid4().hex[:6].upper()}"
    loop = asyncio.get_running_loop()
    async with _publishing(kafka_bootstrap, record_writers, "test-trade-linger") as publisher:
        t0, n, volume = datetime.now(UTC), 0, 0
        until = loop.time() + 10 * LINGER_S
        while loop.time() < until:
            n += 1
            volume += 1
            publisher.on_trade(Trade(symbol, Decimal("100.00"), 1, t0 + timedelta(microseconds=n), volume))
            await asyncio.sleep(0)  # the sender may run after every trade
        mine = await _records_of(kafka_bootstrap, symbol, n)
    records = await _verified(ledger_pool, mine)
    volumes = [t["venue_volume"] for r in records for t in r["trades"]]
    assert volumes == list(range(1, n + 1)), "every trade, in order, none conflated"
    # A flush sends every trade waiting, in records of at most MAX_BATCH: one flush per linger
    # (10 of them, plus the one under way when the feed stopped) and one per MAX_BATCH trades
    # waiting, each flush a partial record at most beyond its full ones (a loaded machine lets
    # more than MAX_BATCH pile up before the sender runs). Without the linger it is about one
    # record per trade.
    assert n > 100 and len(records) <= 12 + 2 * (n // MAX_BATCH + 1), (n, len(records))
