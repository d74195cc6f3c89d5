"""The tape: trades added up per session, each counted once however often it is delivered, and
records read strictly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading.trade_tape import (
    SymbolTape,
    TapeTrade,
    TradeRecordError,
    session_start,
    trades_record,
)

T0 = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)


def trade(price: str, size: int, ms: int, volume: int | None) -> TapeTrade:
    return TapeTrade("AAPL", Decimal(price), size, T0 + timedelta(milliseconds=ms), volume)


def venue_tape(sizes_prices: list[tuple[int, int]]) -> list[TapeTrade]:
    """Trades as a venue prints them: volume grows by each size, time never goes back."""
    out, volume = [], 1000
    for i, (size, cents) in enumerate(sizes_prices):
        volume += size
        out.append(trade(f"{Decimal(22900 + cents) / 100}", size, i // 3, volume))
    return out


@given(st.lists(st.tuples(st.integers(1, 500), st.integers(-20, 20)), min_size=1, max_size=60), st.data())
def test_volume_at_price_is_the_sum_of_each_trade_once_whatever_is_delivered_twice(
    prints: list[tuple[int, int]], data: st.DataObject
) -> None:
    trades = venue_tape(prints)
    # Each trade delivered once or more; a repeat comes after its original (a second writer,
    # a redelivered record), never before.
    delivered: list[TapeTrade] = []
    for i, t in enumerate(trades):
        delivered.append(t)
        if data.draw(st.booleans()):
            delivered.append(trades[data.draw(st.integers(0, i))])
    tape = SymbolTape("AAPL")
    counted = [c for t in delivered if (c := tape.add(t)[0]) is not None]
    assert [(c.price, c.size, c.venue_ts) for c in counted] == [(t.price, t.size, t.venue_ts) for t in trades]
    expected: dict[Decimal, int] = {}
    for t in trades:
        expected[t.price] = expected.get(t.price, 0) + t.size
    snap = tape.snapshot()
    assert dict(snap.volume_at_price) == expected
    assert [p for p, _ in snap.volume_at_price] == sorted(expected, reverse=True)
    assert snap.session_volume == sum(t.size for t in trades) == counted[-1].session_volume
    assert snap.last is counted[-1]


def test_a_trade_of_a_new_utc_day_starts_a_new_session_and_a_late_one_of_the_old_day_is_not_counted() -> None:
    tape = SymbolTape("AAPL")
    evening = TapeTrade("AAPL", Decimal("229.90"), 100, datetime(2026, 12, 4, 23, 59, 59, tzinfo=UTC), 500)
    tape.add(evening)
    morning = TapeTrade("AAPL", Decimal("230.10"), 7, datetime(2026, 12, 5, 0, 0, 1, tzinfo=UTC), 7)
    counted, new_session = tape.add(morning)
    assert new_session and counted is not None and counted.session_volume == 7
    assert tape.snapshot().volume_at_price == ((Decimal("230.10"), 7),)
    assert tape.add(evening) == (None, False) and tape.stale == 1
    # Asked on a later day with nothing traded yet, the tape is empty.
    empty = tape.snapshot(datetime(2026, 12, 6, tzinfo=UTC).date())
    assert (empty.last, empty.session_volume, empty.volume_at_price) == (None, 0, ())


def test_a_venue_that_counts_again_from_zero_later_on_is_not_taken_for_repeats() -> None:
    tape = SymbolTape("AAPL")
    tape.add(trade("229.90", 100, 0, 5000))
    counted, _ = tape.add(trade("229.91", 10, 5, 10))  # the venue restarted: its volume is back at 10
    assert counted is not None and counted.session_volume == 110
    assert tape.add(trade("229.91", 10, 5, 10))[0] is None and tape.duplicates == 1


def test_trades_without_a_venue_volume_are_each_counted_and_the_tape_is_not_vouched_for() -> None:
    tape = SymbolTape("AAPL")
    for _ in range(3):
        tape.add(trade("229.90", 100, 0, None))
    snap = tape.snapshot()
    assert (snap.session_volume, snap.complete, snap.venue_volume) == (300, False, None)


@given(st.lists(st.tuples(st.integers(1, 500), st.booleans()), min_size=1, max_size=60))
def test_the_tape_is_complete_exactly_while_no_trade_of_the_venue_is_missing(
    prints: list[tuple[int, bool]],
) -> None:
    """The venue prints from the session open (volume 0); the trades flagged False never reach
    the tape (backpressure, no broker session, refused by the producer). A loss shows at the
    next trade that arrives (trailing losses cannot be seen until then)."""
    tape = SymbolTape("AAPL")
    volume, dropped, missing, counted, seen = 0, False, False, 0, None
    for i, (size, arrives) in enumerate(prints):
        volume += size
        if not arrives:
            dropped = True
            continue
        missing = missing or dropped
        got, _ = tape.add(trade("229.90", size, i, volume))
        counted, seen = counted + size, volume
        assert got is not None and (got.complete, got.venue_volume) == (not missing, volume)
    snap = tape.snapshot()
    assert snap.complete is not missing and snap.session_volume == counted and snap.venue_volume == seen


def test_a_hole_lasts_the_session_and_a_new_session_starts_complete() -> None:
    tape = SymbolTape("AAPL")
    tape.add(trade("229.90", 100, 0, 100))
    tape.add(trade("229.90", 50, 1, 150))
    assert tape.snapshot().complete
    jumped, _ = tape.add(trade("229.91", 10, 2, 200))  # 40 shares traded in between were lost
    assert jumped is not None and not jumped.complete and jumped.session_volume == 160
    after, _ = tape.add(trade("229.91", 5, 3, 205))
    assert after is not None and not after.complete
    snap = tape.snapshot()
    assert (snap.complete, snap.session_volume, snap.venue_volume, tape.holes) == (False, 165, 205, 1)
    # A repeat of a counted trade is no hole.
    assert tape.add(trade("229.91", 5, 3, 205))[0] is None and tape.holes == 1
    tomorrow = TapeTrade("AAPL", Decimal("230"), 7, datetime(2026, 12, 5, 0, 0, 1, tzinfo=UTC), 7)
    counted, new_session = tape.add(tomorrow)
    assert new_session and counted is not None and counted.complete and tape.snapshot().complete


def test_a_tape_joined_after_the_venue_traded_is_incomplete_from_its_first_trade() -> None:
    tape = SymbolTape("AAPL")
    counted, _ = tape.add(trade("229.90", 100, 0, 1_250_300))
    assert counted is not None and not counted.complete and counted.session_volume == 100
    assert tape.snapshot().venue_volume == 1_250_300


def test_the_session_starts_at_utc_midnight() -> None:
    assert session_start(datetime(2026, 12, 5, 3, 4, tzinfo=UTC)) == datetime(2026, 12, 5, tzinfo=UTC)


def record(**changes: Any) -> dict[str, Any]:
    item = {"price": "229.86", "size": 100, "ts": "2026-12-05T15:00:00.123000+00:00", "venue_volume": 900}
    base: dict[str, Any] = {"v": 1, "symbol": "AAPL", "trades": [item], "proof": {"signer": "x"}}
    trade_changes = changes.pop("trade", {})
    item.update(trade_changes)
    base.update(changes)
    return base


def test_a_record_reads_to_exact_decimals_in_utc() -> None:
    (t,) = trades_record(record())
    ts = datetime(2026, 12, 5, 15, 0, 0, 123000, tzinfo=UTC)
    assert t == TapeTrade("AAPL", Decimal("229.86"), 100, ts, 900)


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"v": 2}, "v must be 1"),
        ({"symbol": ""}, "symbol"),
        ({"trades": []}, "trades must be a list"),
        ({"trade": {"price": 229.86}}, "price must be a decimal string"),
        ({"trade": {"price": "abc"}}, "not a decimal"),
        ({"trade": {"price": "-1"}}, "price must be positive"),
        ({"trade": {"price": "NaN"}}, "price must be positive"),
        ({"trade": {"size": 0}}, "size must be a positive integer"),
        ({"trade": {"size": 1.5}}, "size must be a positive integer"),
        ({"trade": {"size": 2**31}}, "size must be a positive integer"),
        ({"trade": {"ts": "yesterday"}}, "ts must be ISO 8601"),
        ({"trade": {"ts": "2026-12-05T15:00:00"}}, "timezone"),
        ({"trade": {"venue_volume": 10}}, "venue_volume"),
    ],
)
def test_a_bad_record_is_refused_naming_the_field(changes: dict[str, Any], named: str) -> None:
    with pytest.raises(TradeRecordError, match=named):
        trades_record(record(**changes))


def test_a_late_trade_from_a_second_writer_fills_the_hole_its_partner_seemed_to_leave() -> None:
    """Two hot paths of a group publish the same venue. One that subscribes while the other's
    record is still lingering reaches the tape first with a later trade: the tape sees a hole,
    and the trades the other then brings fill it rather than being taken for repeats."""
    tape = SymbolTape("AAPL")
    tape.add(trade("229.90", 100, 0, 100))
    tape.add(trade("229.90", 50, 1, 150))
    ahead, _ = tape.add(trade("229.92", 30, 4, 230))  # the new writer's first: 150 .. 200 not here yet
    assert ahead is not None and not ahead.complete and tape.holes == 1
    late, _ = tape.add(trade("229.91", 30, 2, 180))
    assert late is not None and late.venue_volume == 180 and not late.complete
    last, _ = tape.add(trade("229.91", 20, 3, 200))
    assert last is not None and last.complete and last.session_volume == 230
    snap = tape.snapshot()
    assert (snap.complete, snap.session_volume, snap.venue_volume) == (True, 230, 230)
    assert snap.last is ahead, "the newest trade at the venue stays the tape's last"
    at_price = {Decimal("229.90"): 150, Decimal("229.91"): 50, Decimal("229.92"): 30}
    assert dict(snap.volume_at_price) == at_price
    # Every one of them again, from the other writer: repeats, nothing counted twice.
    for volume, size, ms in ((100, 100, 0), (150, 50, 1), (180, 30, 2), (200, 20, 3), (230, 30, 4)):
        assert tape.add(trade("229.90", size, ms, volume))[0] is None
    assert tape.duplicates == 5 and tape.snapshot().session_volume == 230


@given(st.lists(st.integers(1, 500), min_size=1, max_size=40), st.data())
def test_two_writers_interleaved_count_every_trade_once_and_leave_no_hole(
    sizes: list[int], data: st.DataObject
) -> None:
    """A venue's prints from the session open, written by one writer from the first and by a
    second from any later one, each in order, their records interleaved any way."""
    trades, volume = [], 0
    for i, size in enumerate(sizes):
        volume += size
        trades.append(trade(f"{Decimal(22900 + i % 7) / 100}", size, i // 3, volume))
    first, second = list(trades), trades[data.draw(st.integers(0, len(trades) - 1)) :]
    delivered: list[TapeTrade] = []
    while first or second:
        take = first if first and (not second or data.draw(st.booleans())) else second
        delivered.append(take.pop(0))
    tape = SymbolTape("AAPL")
    counted = [c for t in delivered if (c := tape.add(t)[0]) is not None]
    assert sorted(c.venue_volume or 0 for c in counted) == [t.venue_volume for t in trades]
    snap = tape.snapshot()
    assert snap.complete and snap.session_volume == volume and snap.venue_volume == volume
    expected: dict[Decimal, int] = {}
    for t in trades:
        expected[t.price] = expected.get(t.price, 0) + t.size
    assert dict(snap.volume_at_price) == expected
