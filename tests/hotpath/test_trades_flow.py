"""The hot path publishes every trade of its symbols at the paper venue on ``market.trades``,
signed, in the venue's order, none lost or conflated: the tape the HUD's volume at price is
added up from."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from bus.topics import MARKET_TRADES
from ledger.record_keys import writer_keys
from tests.fixtures.hotpath import read_until
from tests.fixtures.paper import PaperStack
from tests.hotpath.conftest import HotPathProcess
from trading.record_signing import HOTPATH_WRITER, PROOF, verify_record

SYMBOL = "AAPL"
BUSY_RATE = 400.0
"""Model events a second while the test reads (a tenth or so trade): enough trades in a second."""
WANTED = 40
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@pytest.fixture()
async def busy_tape(paper: PaperStack) -> AsyncIterator[None]:
    status = await paper.acontrol("GET", "/status")
    usual = next(s for s in status["symbols"] if s["symbol"] == SYMBOL)["event_rate"]
    await paper.acontrol("POST", f"/symbols/{SYMBOL}/rate", {"rate": BUSY_RATE})
    try:
        yield
    finally:
        await paper.acontrol("POST", f"/symbols/{SYMBOL}/rate", {"rate": usual})


def _trades(raw: bytes) -> list[dict[str, Any]]:
    try:
        record = json.loads(raw)
    except ValueError:
        return []
    if not isinstance(record, dict) or record.get("symbol") != SYMBOL:
        return []
    trades: list[dict[str, Any]] = record.get("trades", [])
    return trades


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

    records = await read_until(kafka_bootstrap, MARKET_TRADES, enough)
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
