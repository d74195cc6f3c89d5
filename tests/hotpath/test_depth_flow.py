"""The hot path publishes the paper venue's L2 books on ``market.depth`` for the HUD, signed:
the desk checks a trader's arming limits at these prices."""

from __future__ import annotations

import json
from decimal import Decimal

import asyncpg

from bus.topics import MARKET_DEPTH
from ledger.record_keys import writer_keys
from tests.fixtures.hotpath import read_until
from tests.hotpath.conftest import HotPathProcess
from trading.record_signing import HOTPATH_WRITER, PROOF, verify_record


def _is_full_book(raw: bytes, symbol: str) -> bool:
    try:
        book = json.loads(raw)
    except ValueError:
        return False
    return (
        isinstance(book, dict)
        and book.get("symbol") == symbol
        and bool(book.get("bids"))
        and bool(book.get("asks"))
    )


async def test_streamed_symbols_have_their_books_on_market_depth(
    hotpath: HotPathProcess, kafka_bootstrap: str, ledger_pool: asyncpg.Pool
) -> None:
    keys = await writer_keys(ledger_pool)
    for symbol in ("AAPL", "MSFT"):
        records = await read_until(kafka_bootstrap, MARKET_DEPTH, lambda raw, s=symbol: _is_full_book(raw, s))
        book = verify_record(MARKET_DEPTH, records[-1], keys)  # RecordRefused unless the hot path signed it
        assert keys[book[PROOF]["signer"]].agent_id == HOTPATH_WRITER
        assert book["v"] == 1 and book["ts"].endswith("+00:00")
        bids = [Decimal(level["price"]) for level in book["bids"]]
        asks = [Decimal(level["price"]) for level in book["asks"]]
        assert bids == sorted(bids, reverse=True) and asks == sorted(asks), "best level first"
        assert bids[0] < asks[0], "the book is not crossed"
        assert all(type(level["size"]) is int and level["size"] > 0 for level in book["bids"] + book["asks"])
