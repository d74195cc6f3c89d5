"""The texts the Temporal UI shows of a workflow (:mod:`workflows.ticket`)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from trading.session_calendar import SessionCalendar
from workflows import ticket


def test_a_session_close_reads_in_exchange_time_summer_and_winter() -> None:
    calendar = SessionCalendar()
    winter = calendar.close_after(datetime(2026, 11, 24, 15, 0, tzinfo=UTC))
    summer = calendar.close_after(datetime(2026, 7, 14, 15, 0, tzinfo=UTC))
    assert (winter.hour, summer.hour) == (21, 20)  # UTC
    assert ticket.expiry_timer(winter) == ticket.expiry_timer(summer) == "DAY expiry at the 16:00 ET close"


def test_durations_and_prices_read_as_a_trader_writes_them() -> None:
    assert [ticket.duration(s) for s in (300, 90, 7200, 1, 2.5)] == ["5 min", "90 s", "2 h", "1 s", "2.5 s"]
    assert ticket.linger_timer(300) == "linger 5 min for late fills"
    prices = (Decimal("50.1"), Decimal("187.2600"), Decimal("0.0050"), None)
    assert [ticket.price(p) for p in prices] == ["50.10", "187.26", "0.005", "-"]
    assert ticket.avg_price(Decimal(150) / Decimal(3) + Decimal("0.0666666")) == "50.0667"


def test_the_slice_plan_counts_what_is_left_at_the_display_size() -> None:
    # 1,000 shares at 100: slice 1 of 10; a jittered first slice of 96 leaves 904, still 10.
    assert ticket.slices_planned(1, 900, 100) == 10
    assert ticket.slices_planned(1, 904, 100) == 10
    # The last odd lot counts as a slice once it is half a display or more.
    assert ticket.slices_planned(1, 950, 100) == 11
    assert ticket.slices_planned(7, 0, 100) == 7
    assert ticket.slice_label(7, 5) == "slice 7 of 7"
    label = ticket.slice_label(7, 100)
    assert (
        ticket.slice_order(label, "BUY", 100, "SYM", Decimal("20.05"))
        == "slice 7 of 100: BUY 100 SYM @ 20.05"
    )
