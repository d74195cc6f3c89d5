"""Matching our orders against the venue's book: every order type, TIF, modify and cancel."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from paper.venue.engine import Venue
from paper.venue.events import ExecutionEvent, OrderEvent
from paper.venue.messages import (
    ASK,
    BID,
    CODE_ORDER_CANCELLED,
    ERR_CANCEL_NOT_CANCELLABLE,
    ERR_CANCEL_NOT_FOUND,
    ERR_DUPLICATE_ORDER_ID,
    ERR_MODIFY_FILLED,
    ERR_MODIFY_MISMATCH,
    ERR_NO_SECURITY_DEFINITION,
    ERR_ORDER_REJECTED,
    ERR_PRICE_INCREMENT,
    ExecutionFilter,
    OrderAck,
    OrderReject,
    OrderSpec,
    PlaceOrder,
)
from tests.paper.venue.support import MS, Trader, ask, bid, quiet_venue


def fills(venue: Venue, perm_id: int) -> list[tuple[int, Decimal]]:
    return [
        (r.execution.shares, r.execution.price) for r in venue.executions if r.execution.perm_id == perm_id
    ]


def statuses(events: list[object], perm_id: int) -> list[str]:
    return [e.update.status for e in events if isinstance(e, OrderEvent) and e.update.perm_id == perm_id]


def ladder(venue: Venue, side: int) -> list[tuple[int, int]]:
    return venue.by_symbol["AAPL"].book.ladder(side)


def test_marketable_limit_walks_the_book_then_rests_nothing_when_filled() -> None:
    v = quiet_venue()
    ask(v, "10.00", 100)
    ask(v, "10.01", 50)
    ack = Trader(v).place("BUY", 120, lmt_price="10.01")
    assert ack.update.status == "Filled"
    assert fills(v, ack.perm_id) == [(100, Decimal("10.00")), (20, Decimal("10.01"))]
    assert ack.update.avg_fill_price == Decimal("10.00166667")
    assert ladder(v, ASK) == [(1001, 30)]
    assert ladder(v, BID) == []


def test_limit_remainder_rests_at_its_price_and_fills_later() -> None:
    v = quiet_venue()
    ask(v, "10.00", 30)
    buyer = Trader(v, client_id=1)
    ack = buyer.place("BUY", 100, lmt_price="10.00")
    assert (ack.update.status, ack.update.filled, ack.update.remaining) == ("Submitted", 30, 70)
    assert ladder(v, BID) == [(1000, 70)]
    seller = Trader(v, client_id=2)
    sold = seller.place("SELL", 70, lmt_price="9.90")
    assert sold.update.status == "Filled"
    assert fills(v, sold.perm_id) == [(70, Decimal("10.00"))]
    assert v.order(1, ack.update.order_id).status == "Filled"  # type: ignore[union-attr]


def test_price_time_priority_fills_older_orders_first_at_a_price() -> None:
    v = quiet_venue()
    first = bid(v, "9.99", 100)
    mine = Trader(v, client_id=1).place("BUY", 50, lmt_price="9.99")
    later = bid(v, "9.99", 100)
    better = bid(v, "10.00", 10)
    book = v.by_symbol["AAPL"].book
    assert book.queue_ahead(mine and v.orders[(1, mine.update.order_id)].resting) == 100  # type: ignore[arg-type]
    sold = Trader(v, client_id=2).place("SELL", 140, lmt_price="9.99")
    assert fills(v, sold.perm_id) == [(10, Decimal("10.00")), (100, Decimal("9.99")), (30, Decimal("9.99"))]
    assert better.qty == 0 and first.qty == 0
    after = v.order(1, mine.update.order_id)
    assert after is not None and (after.status, after.filled, after.remaining) == ("Submitted", 30, 20)
    assert later.qty == 100
    assert ladder(v, BID) == [(999, 120)]


def test_market_order_takes_what_is_there_and_cancels_the_rest() -> None:
    v = quiet_venue()
    ask(v, "10.00", 40)
    ask(v, "10.05", 10)
    ack = Trader(v).place("BUY", 100, "MKT")
    assert fills(v, ack.perm_id) == [(40, Decimal("10.00")), (10, Decimal("10.05"))]
    assert (ack.update.status, ack.update.filled) == ("Cancelled", 50)
    assert statuses(v.drain(), ack.perm_id)[0] == "Submitted"


def test_ioc_limit_cancels_the_unfilled_part_instead_of_resting() -> None:
    v = quiet_venue()
    ask(v, "10.00", 40)
    ack = Trader(v).place("BUY", 100, lmt_price="10.00", tif="IOC")
    assert (ack.update.status, ack.update.filled) == ("Cancelled", 40)
    assert ladder(v, BID) == []


def test_day_orders_expire_at_session_close_gtc_orders_stay() -> None:
    v = quiet_venue()
    trader = Trader(v)
    day = trader.place("BUY", 10, lmt_price="9.00", tif="DAY")
    gtc = trader.place("BUY", 10, lmt_price="9.01", tif="GTC")
    assert v.session_close(v.now_ns) == 1
    assert v.order(1, day.update.order_id).status == "Cancelled"  # type: ignore[union-attr]
    assert v.order(1, gtc.update.order_id).status == "Submitted"  # type: ignore[union-attr]
    assert ladder(v, BID) == [(901, 10)]


def trade_at(v: Venue, price: str, qty: int = 10) -> None:
    """Print a trade at ``price`` between two other market participants."""
    ask(v, price, qty)
    s = v.by_symbol["AAPL"]
    v.matcher.model_take(s, BID, qty, int(Decimal(price) / s.tick))


def test_stop_sell_is_held_until_a_trade_at_the_stop_then_sells_at_market() -> None:
    v = quiet_venue()
    trade_at(v, "10.00")
    bid(v, "9.94", 30)
    bid(v, "9.93", 100)
    ack = Trader(v).place("SELL", 50, "STP", aux_price="9.95")
    assert ack.update.status == "PreSubmitted"
    trade_at(v, "9.96")
    assert v.order(1, ack.update.order_id).status == "PreSubmitted"  # type: ignore[union-attr]
    trade_at(v, "9.95")
    assert fills(v, ack.perm_id) == [(30, Decimal("9.94")), (20, Decimal("9.93"))]
    assert v.order(1, ack.update.order_id).status == "Filled"  # type: ignore[union-attr]


def test_stop_limit_buy_becomes_a_limit_order_when_triggered() -> None:
    v = quiet_venue()
    trade_at(v, "10.00")
    ack = Trader(v).place("BUY", 50, "STP LMT", aux_price="10.10", lmt_price="10.12")
    ask(v, "10.12", 20)
    ask(v, "10.13", 100)
    trade_at(v, "10.10")
    assert fills(v, ack.perm_id) == [(20, Decimal("10.12"))]
    update = v.order(1, ack.update.order_id)
    assert update is not None and (update.status, update.remaining) == ("Submitted", 30)
    assert ladder(v, BID)[0] == (1012, 30)


def test_trailing_stop_by_amount_follows_the_price_up_and_triggers_on_the_way_down() -> None:
    v = quiet_venue()
    trade_at(v, "10.00")
    ack = Trader(v).place("SELL", 10, "TRAIL", aux_price="0.05")
    assert ack.update.order.trail_stop_price == Decimal("9.95")
    trade_at(v, "10.10")
    assert v.order(1, ack.update.order_id).order.trail_stop_price == Decimal("10.05")  # type: ignore[union-attr]
    trade_at(v, "10.07")
    assert v.order(1, ack.update.order_id).status == "PreSubmitted"  # type: ignore[union-attr]
    bid(v, "10.04", 100)
    trade_at(v, "10.05")
    assert fills(v, ack.perm_id) == [(10, Decimal("10.04"))]


def test_modifying_a_trailing_stop_keeps_its_ratcheted_stop_when_the_client_echoes_the_old_one() -> None:
    v = quiet_venue()
    trade_at(v, "10.00")
    trader = Trader(v)
    ack = trader.place("SELL", 10, "TRAIL", aux_price="0.05", trail_stop_price="9.90")
    trade_at(v, "10.10")
    assert v.order(1, ack.update.order_id).order.trail_stop_price == Decimal("10.05")  # type: ignore[union-attr]
    trader.modify(ack, total_qty=8)  # resends trail_stop_price 9.90 as first sent
    assert v.order(1, ack.update.order_id).order.trail_stop_price == Decimal("10.05")  # type: ignore[union-attr]
    # An explicit new stop tighter than the trail holds (a looser one would ratchet at once).
    trader.modify(ack, total_qty=8, trail_stop_price="10.07")
    assert v.order(1, ack.update.order_id).order.trail_stop_price == Decimal("10.07")  # type: ignore[union-attr]
    trader.modify(ack, total_qty=8, trail_stop_price="10.07", aux_price="0.02")
    assert v.order(1, ack.update.order_id).order.trail_stop_price == Decimal("10.08")  # type: ignore[union-attr]


def test_trailing_stop_by_percent_buy_trails_below() -> None:
    v = quiet_venue()
    trade_at(v, "100.00")
    ack = Trader(v).place("BUY", 5, "TRAIL", trailing_percent="1")
    assert ack.update.order.trail_stop_price == Decimal("101.00")
    trade_at(v, "99.00")
    assert v.order(1, ack.update.order_id).order.trail_stop_price == Decimal("99.99")  # type: ignore[union-attr]
    ask(v, "100.00", 5)
    trade_at(v, "99.99")
    assert fills(v, ack.perm_id) == [(5, Decimal("100.00"))]


def test_size_decrease_keeps_queue_priority() -> None:
    v = quiet_venue()
    trader = Trader(v)
    a = trader.place("BUY", 100, lmt_price="9.99")
    b = trader.place("BUY", 100, lmt_price="9.99")
    assert isinstance(trader.modify(a, total_qty=60), OrderAck)
    book = v.by_symbol["AAPL"].book
    assert book.queue_ahead(v.orders[(1, a.update.order_id)].resting) == 0  # type: ignore[arg-type]
    assert book.queue_ahead(v.orders[(1, b.update.order_id)].resting) == 60  # type: ignore[arg-type]
    assert ladder(v, BID) == [(999, 160)]


def test_size_increase_loses_queue_priority() -> None:
    v = quiet_venue()
    trader = Trader(v)
    a = trader.place("BUY", 100, lmt_price="9.99")
    b = trader.place("BUY", 100, lmt_price="9.99")
    trader.modify(a, total_qty=150)
    book = v.by_symbol["AAPL"].book
    assert book.queue_ahead(v.orders[(1, b.update.order_id)].resting) == 0  # type: ignore[arg-type]
    assert book.queue_ahead(v.orders[(1, a.update.order_id)].resting) == 100  # type: ignore[arg-type]


def test_price_change_loses_queue_priority_even_when_changed_back() -> None:
    v = quiet_venue()
    trader = Trader(v)
    a = trader.place("BUY", 100, lmt_price="9.99")
    b = trader.place("BUY", 100, lmt_price="9.99")
    moved = trader.modify(a, lmt_price="9.98")
    assert isinstance(moved, OrderAck) and ladder(v, BID) == [(999, 100), (998, 100)]
    trader.modify(moved, lmt_price="9.99")
    book = v.by_symbol["AAPL"].book
    assert book.queue_ahead(v.orders[(1, b.update.order_id)].resting) == 0  # type: ignore[arg-type]
    assert book.queue_ahead(v.orders[(1, a.update.order_id)].resting) == 100  # type: ignore[arg-type]


def test_modify_to_a_marketable_price_trades_immediately() -> None:
    v = quiet_venue()
    ask(v, "10.05", 40)
    trader = Trader(v)
    a = trader.place("BUY", 100, lmt_price="10.00")
    moved = trader.modify(a, lmt_price="10.05")
    assert isinstance(moved, OrderAck)
    assert (moved.perm_id, moved.update.filled, moved.update.remaining) == (a.perm_id, 40, 60)
    assert ladder(v, BID) == [(1005, 60)]


def test_refusals_carry_ib_codes_and_change_nothing() -> None:
    v = quiet_venue()
    trader = Trader(v)
    first = trader.place("BUY", 10, lmt_price="9.00")
    reused = v.place(
        PlaceOrder(1, first.update.order_id - 0, OrderSpec("SELL", 1, "MKT"), symbol="AAPL"), v.now_ns
    )
    # Same id from the same client is a modify; with another action it is a mismatch.
    assert isinstance(reused, OrderReject) and reused.code == ERR_MODIFY_MISMATCH
    lower = v.place(
        PlaceOrder(1, first.update.order_id - 1, OrderSpec("BUY", 1, "MKT"), symbol="AAPL"), v.now_ns
    )
    assert isinstance(lower, OrderReject) and lower.code == ERR_DUPLICATE_ORDER_ID
    cases: list[tuple[dict[str, Any], int]] = [
        (dict(qty=0, lmt_price="9.00"), ERR_ORDER_REJECTED),
        (dict(qty=10), ERR_ORDER_REJECTED),
        (dict(qty=10, lmt_price="9.005"), ERR_PRICE_INCREMENT),
        (dict(qty=10, order_type="STP"), ERR_ORDER_REJECTED),
        (dict(qty=10, order_type="TRAIL"), ERR_ORDER_REJECTED),
        (dict(qty=10, order_type="MOC"), ERR_ORDER_REJECTED),
        (dict(qty=10, lmt_price="9.00", tif="FOK"), ERR_ORDER_REJECTED),
        (dict(qty=10_000_000, lmt_price="9.00"), ERR_ORDER_REJECTED),
    ]
    for fields, code in cases:
        qty = fields.pop("qty")
        order_type = fields.pop("order_type", "LMT")
        reply = trader.send("BUY", qty, order_type, **fields)
        assert isinstance(reply, OrderReject) and reply.code == code, (fields, reply)
    unknown = v.place(PlaceOrder(1, 999, OrderSpec("BUY", 1, "MKT"), symbol="ZZZZ"), v.now_ns)
    assert isinstance(unknown, OrderReject) and unknown.code == ERR_NO_SECURITY_DEFINITION
    assert [o.perm_id for o in v.open_orders()] == [first.perm_id]
    assert ladder(v, BID) == [(900, 10)]


def test_modify_of_a_filled_order_is_refused_with_104() -> None:
    v = quiet_venue()
    ask(v, "10.00", 10)
    trader = Trader(v)
    done = trader.place("BUY", 10, lmt_price="10.00")
    assert done.update.status == "Filled"
    reply = trader.modify(done, total_qty=20)
    assert isinstance(reply, OrderReject) and reply.code == ERR_MODIFY_FILLED


def test_cancel_outcomes_follow_ib_codes() -> None:
    v = quiet_venue()
    ask(v, "10.00", 10)
    trader = Trader(v)
    resting = trader.place("BUY", 10, lmt_price="9.00")
    filled = trader.place("BUY", 10, lmt_price="10.00")
    ok = v.cancel(1, resting.update.order_id, v.now_ns)
    assert ok.code == CODE_ORDER_CANCELLED and ok.update is not None and ok.update.status == "Cancelled"
    again = v.cancel(1, resting.update.order_id, v.now_ns)
    assert again.code == ERR_CANCEL_NOT_CANCELLABLE
    assert v.cancel(1, filled.update.order_id, v.now_ns).code == ERR_CANCEL_NOT_CANCELLABLE
    assert v.cancel(1, 12345, v.now_ns).code == ERR_CANCEL_NOT_FOUND
    assert v.cancel(2, resting.update.order_id, v.now_ns).code == ERR_CANCEL_NOT_FOUND
    assert ladder(v, BID) == []


def test_global_cancel_cancels_a_thousand_open_orders_across_clients() -> None:
    v = quiet_venue()
    traders = [Trader(v, client_id=c) for c in (1, 2, 3)]
    for i in range(1000):
        traders[i % 3].place("BUY" if i % 2 else "SELL", 1, lmt_price="5.00" if i % 2 else "50.00")
    v.drain()
    assert len(v.open_orders()) == 1000
    assert v.global_cancel(v.now_ns) == 1000
    events = v.drain()
    assert sum(1 for e in events if isinstance(e, OrderEvent) and e.update.status == "Cancelled") == 1000
    assert v.open_orders() == ()
    assert ladder(v, BID) == [] and ladder(v, ASK) == []


def test_open_orders_per_client_and_for_the_master_view() -> None:
    v = quiet_venue()
    Trader(v, client_id=1).place("BUY", 1, lmt_price="5.00")
    Trader(v, client_id=2).place("BUY", 1, lmt_price="5.00")
    assert [o.client_id for o in v.open_orders(1)] == [1]
    assert sorted(o.client_id for o in v.open_orders(None)) == [1, 2]


def test_next_valid_id_never_goes_backwards_and_survives_a_new_venue() -> None:
    v = quiet_venue()
    assert v.next_valid_id(7) == 1
    trader = Trader(v, client_id=7)
    trader.next_id = 100
    trader.place("BUY", 1, lmt_price="5.00")
    assert v.next_valid_id(7) == 101
    assert v.next_valid_id(8) == 1
    again = Venue(
        v.config, seed=2, start_ns=v.now_ns, highest_order_ids=v.highest_ids, first_perm_id=v.next_perm_id
    )
    assert again.next_valid_id(7) == 101
    reply = again.place(
        PlaceOrder(7, 100, OrderSpec("BUY", 1, "LMT", Decimal("5.00")), symbol="AAPL"), v.now_ns
    )
    assert isinstance(reply, OrderReject) and reply.code == ERR_DUPLICATE_ORDER_ID


def test_perm_ids_are_unique_and_executions_filter_by_client_symbol_side_and_time() -> None:
    v = quiet_venue()
    ask(v, "10.00", 100)
    bid(v, "9.00", 100)
    a = Trader(v, client_id=1).place("BUY", 10, lmt_price="10.00")
    t_mid = v.now_ns + 5 * MS
    b = Trader(v, client_id=2).place("SELL", 10, lmt_price="9.00", t=t_mid)
    assert a.perm_id != b.perm_id
    assert [r.execution.side for r in v.executions_matching(ExecutionFilter())] == ["BOT", "SLD"]
    assert [r.execution.client_id for r in v.executions_matching(ExecutionFilter(client_id=2))] == [2]
    assert [r.execution.side for r in v.executions_matching(ExecutionFilter(side="BUY"))] == ["BOT"]
    assert [r.execution.client_id for r in v.executions_matching(ExecutionFilter(since_ns=t_mid))] == [2]
    assert v.executions_matching(ExecutionFilter(symbol="MSFT")) == ()
    assert v.executions_matching(ExecutionFilter(account="DU0000000")) == ()


def test_execution_is_followed_by_its_commission_and_the_order_update() -> None:
    v = quiet_venue()
    ask(v, "10.00", 100)
    Trader(v).place("BUY", 10, lmt_price="10.00")
    names = [type(e).__name__ for e in v.drain()]
    i = names.index("ExecutionEvent")
    assert names[i : i + 3] == ["ExecutionEvent", "CommissionEvent", "OrderEvent"]
    assert names[-2:] == ["PositionEvent", "AccountEvent"]


def test_flash_crash_sweeps_resting_bids_and_moves_the_mid() -> None:
    v = quiet_venue()
    s = v.by_symbol["AAPL"]
    s.flow.move_reference(1000.0)
    bid(v, "9.99", 100)
    ask(v, "10.01", 100)
    mine = Trader(v).place("BUY", 10, lmt_price="9.50")
    v.move_price("AAPL", Decimal("-10"), 100 * MS, v.now_ns)
    v.advance(v.now_ns + 100 * MS)
    assert s.mark() <= Decimal("9.00")
    assert fills(v, mine.perm_id) == [(10, Decimal("9.50"))]
    assert any(isinstance(e, ExecutionEvent) for e in v.drain())
    assert not s.book.is_crossed()
