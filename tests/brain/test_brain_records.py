"""The brain acts only on records the hot path signed; a forgery is a security event."""

from __future__ import annotations

import uuid
from collections import Counter
from decimal import Decimal

import asyncpg

from brain.records import RECORD_REFUSED, SOURCE, BrainRecords, LedgerSecurityStore
from bus.signed_records import RecordVerifier
from bus.topics import MARKET_DEPTH, SECURITY_EVENTS
from ledger.record_keys import writer_keys
from observability.security import SecurityLog
from tests.factories import depth_record
from tests.fixtures.hotpath import RecordWriters
from trading.demo_rules import Quote
from trading.record_signing import sign_record


async def test_a_signed_book_is_a_quote_and_a_forged_one_a_security_event(
    ledger_pool: asyncpg.Pool, record_writers: RecordWriters
) -> None:
    outcomes: Counter[str] = Counter()
    records = BrainRecords(
        RecordVerifier(lambda: writer_keys(ledger_pool)),
        SecurityLog(LedgerSecurityStore(ledger_pool), None, SECURITY_EVENTS),
        outcomes,
    )
    book = depth_record("NVDA", [("141.20", 5)], [("141.22", 7)])

    signed = sign_record(MARKET_DEPTH, book, record_writers.hotpath)
    assert await records.quote("market.depth[0]@1", signed) == Quote(
        "NVDA", Decimal("141.20"), Decimal("141.22")
    )
    assert outcomes[RECORD_REFUSED] == 0

    where = f"market.depth[0]@{uuid.uuid4().int % 10**9}"
    assert await records.quote(where, book) is None  # unsigned: anyone could have written it
    assert outcomes[RECORD_REFUSED] == 1
    row = await ledger_pool.fetchrow(
        "SELECT reason FROM security_events WHERE source = $1 AND detail->>'offset' = $2",
        SOURCE,
        where.rpartition("@")[2],
    )
    assert row is not None and row["reason"] == "record.unsigned"
