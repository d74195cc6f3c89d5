from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.factories import depth_record
from trading.depth_book import (
    BookDelta,
    DepthRecordError,
    PriceBook,
    SequenceGap,
    SymbolBook,
    delta_between,
    parse_depth_record,
)

T0 = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)

# A side of a book: up to 8 distinct cent prices with sizes; bids below asks is not needed here.
side = st.dictionaries(st.integers(10_000, 10_030), st.integers(1, 900), max_size=8)


def record(bids: dict[int, int], asks: dict[int, int], n: int) -> bytes:
    return depth_record(
        "AAPL",
        [(str(Decimal(p) / 100), s) for p, s in sorted(bids.items(), reverse=True)],
        [(str(Decimal(p) / 100), s) for p, s in sorted(asks.items())],
        T0 + timedelta(milliseconds=n),
    )


@settings(max_examples=200, deadline=None)
@given(
    books=st.lists(st.tuples(side, side), min_size=1, max_size=30),
    reads=st.lists(st.booleans(), min_size=30, max_size=30),
    depth=st.integers(1, 10),
)
def test_applying_deltas_to_the_snapshot_reproduces_the_book_however_rarely_it_is_read(
    books: list[tuple[dict[int, int], dict[int, int]]], reads: list[bool], depth: int
) -> None:
    book = SymbolBook("AAPL")
    client: PriceBook | None = None
    sent = None
    for n, ((bids, asks), read) in enumerate(zip(books, reads, strict=False)):
        book.update(parse_depth_record(record(bids, asks, n)))
        if not read and n < len(books) - 1:
            continue  # a slow reader: updates pile up and arrive merged into one delta
        now = book.snapshot(depth)
        assert now is not None
        if client is None:
            client, sent = PriceBook(now), now
            continue
        assert sent is not None
        delta = book.delta_since(sent, depth)
        assert delta == delta_between(sent, now)
        assert all(size > 0 or price in client.bids for price, size in delta.bids)
        client.apply(delta)
        sent = now
        assert client.levels() == (now.bids, now.asks)
    assert client is not None and sent is not None
    final = book.snapshot(depth)
    assert final is not None
    assert client.sequence == final.sequence
    assert client.levels() == (final.bids, final.asks)
    assert (
        final.bids
        == tuple((Decimal(p) / 100, s) for p, s in sorted(books[-1][0].items(), reverse=True))[:depth]
    )


def test_a_new_state_gets_the_next_sequence_and_an_unchanged_or_older_one_none() -> None:
    book = SymbolBook("AAPL")
    assert book.snapshot(5) is None
    assert book.update(parse_depth_record(record({10000: 100}, {10001: 200}, 1)))
    assert book.sequence == 1
    assert not book.update(parse_depth_record(record({10000: 100}, {10001: 200}, 2)))  # same levels
    assert not book.update(parse_depth_record(record({10000: 300}, {10001: 200}, 0)))  # older record
    assert book.update(parse_depth_record(record({10000: 300}, {10001: 200}, 3)))
    assert book.sequence == 2
    snap = book.snapshot(5)
    assert snap is not None and snap.bids == ((Decimal("100"), 300),)


def test_a_delta_names_changed_levels_and_removed_ones_with_size_zero_best_first() -> None:
    book = SymbolBook("AAPL")
    book.update(parse_depth_record(record({10000: 100, 9999: 50}, {10001: 200, 10002: 70}, 1)))
    before = book.snapshot(10)
    book.update(parse_depth_record(record({10000: 120, 9998: 10}, {10002: 70}, 2)))
    after = book.snapshot(10)
    assert before is not None and after is not None
    delta = delta_between(before, after)
    assert (delta.previous_sequence, delta.sequence) == (1, 2)
    assert delta.bids == ((Decimal("100"), 120), (Decimal("99.99"), 0), (Decimal("99.98"), 10))
    assert delta.asks == ((Decimal("100.01"), 0),)


def test_a_client_refuses_a_delta_that_does_not_follow_its_sequence() -> None:
    book = SymbolBook("AAPL")
    book.update(parse_depth_record(record({10000: 100}, {10001: 200}, 1)))
    snap = book.snapshot(5)
    assert snap is not None
    client = PriceBook(snap)
    gap = BookDelta("AAPL", 3, 2, T0, ((Decimal("100"), 5),), ())
    with pytest.raises(SequenceGap, match="resubscribe"):
        client.apply(gap)
    assert client.bids == {Decimal("100"): 100} and client.sequence == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"bids": [{"price": 229.86, "size": 100}]}, "bids\\[0\\].price"),  # a float price
        ({"bids": [{"price": "229.86", "size": True}]}, "bids\\[0\\].size"),
        ({"bids": [{"price": "229.86", "size": 0}]}, "bids\\[0\\].size"),
        ({"bids": [{"price": "NaN", "size": 1}]}, "bids\\[0\\].price"),
        ({"asks": [{"price": "2", "size": 1}, {"price": "1", "size": 1}]}, "asks must be"),
        ({"ts": "2026-12-01T15:00:00"}, "timezone"),
        ({"v": 2}, "v must be 1"),
        ({"symbol": ""}, "symbol"),
        ({"symbol": "X" * 33}, "symbol"),
        ({"asks": [{"price": str(100 + i), "size": 1} for i in range(101)]}, "at most 100"),
    ],
)
def test_an_unreadable_depth_record_is_refused_naming_the_field(
    change: dict[str, object], field: str
) -> None:
    data = json.loads(record({10000: 100}, {10001: 200}, 1))
    data.update(change)
    with pytest.raises(DepthRecordError, match=field):
        parse_depth_record(json.dumps(data))
    with pytest.raises(DepthRecordError, match="not JSON"):
        parse_depth_record(b"\xff")
