"""The venue's tape: every print in order with its time, the session volume and VWAP after it,
kept for whoever checks a client against it; the volume starts again at the close."""

from __future__ import annotations

from decimal import Decimal

from tests.paper.venue.support import MS, T0, Trader, ask, quiet_venue


def test_each_fill_against_the_book_is_a_print_with_the_running_volume_and_vwap() -> None:
    v = quiet_venue()
    ask(v, "10.00", 100)
    ask(v, "10.01", 50)
    Trader(v).place("BUY", 120, lmt_price="10.01", t=T0 + 5 * MS)
    [(state, prints)] = v.drain_trades()
    assert state.symbol == "AAPL"
    assert [(p.seq, p.price, p.size, p.time_ns, p.volume) for p in prints] == [
        (1, Decimal("10.00"), 100, T0 + 5 * MS, 100),
        (2, Decimal("10.01"), 20, T0 + 5 * MS, 120),
    ]
    assert prints[-1].vwap == Decimal("10.00166667")  # (1000 + 200.2) / 120
    assert v.drain_trades() == []  # handed over once
    assert v.tape("AAPL") == tuple(prints)  # and kept


def test_the_session_close_starts_the_volume_again_but_not_the_sequence() -> None:
    v = quiet_venue()
    ask(v, "10.00", 100)
    Trader(v).place("BUY", 60, lmt_price="10.00")
    v.session_close(v.now_ns + MS)
    Trader(v).place("BUY", 10, lmt_price="10.00")
    last = v.tape("AAPL")[-1]
    assert (last.seq, last.size, last.volume, last.vwap) == (2, 10, 10, Decimal("10.00000000"))
