"""The floor's order map: exact average prices, execution dedupe, refusal records."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from hotpath.account import AccountBook, LastPrice
from hotpath.floor_orders import FloorOrder, refusal_event
from tests.factories import enter_command
from trading.commands import CommandKind, Side, utc_now_ms
from trading.order_events import EventKind, decode, encode


def order(quantity: int = 10) -> FloorOrder:
    return FloorOrder.from_command(enter_command("alpha", quantity=quantity), quantity)


def test_fills_accumulate_to_an_exact_average_and_a_filled_event() -> None:
    o = order(3)
    assert o.apply_fill("e1", 1, Decimal("100.01")) is not None
    last = o.apply_fill("e2", 2, Decimal("100.02"))
    assert last is not None and o.done and o.filled_qty == 3
    assert o.avg_fill_price == Decimal("300.05") / 3
    # Nothing fills beyond the order's quantity, whatever the broker reports.
    assert o.apply_fill("e3", 1, Decimal(1)) is None and o.filled_qty == 3
    event = o.event(EventKind.FILLED, last_fill=last)
    assert event.kind is EventKind.FILLED and event.filled_qty == 3 and event.last_fill == last
    assert decode(encode(event)) == event


def test_an_execution_reported_twice_is_applied_once() -> None:
    o = order(10)
    assert o.apply_fill("e1", 4, Decimal("10")) is not None
    assert o.apply_fill("e1", 4, Decimal("10")) is None
    assert o.filled_qty == 4 and not o.done


def test_a_refusal_before_sizing_carries_the_requested_bound_or_one() -> None:
    bounded = refusal_event(enter_command("alpha", quantity=25), "risk.no_profile")
    unbounded = refusal_event(enter_command("alpha"), "sizing.no_edge")
    sized = refusal_event(enter_command("alpha"), "risk.max_position", quantity=40)
    assert bounded is not None and (bounded.quantity, bounded.reason) == (25, "risk.no_profile")
    assert unbounded is not None and unbounded.quantity == 1 and unbounded.filled_qty == 0
    assert sized is not None and sized.quantity == 40 and sized.kind is EventKind.REJECTED


def test_a_command_without_an_order_has_no_orders_event() -> None:
    from trading.commands import Command

    cancel = Command(
        kind=CommandKind.CANCEL, command_id="c1", agent_id="alpha", account="DU1", nonce="n",
        issued_at=utc_now_ms(), target_command_id="c0",
    )  # fmt: skip
    assert refusal_event(cancel, "intake.unknown_order") is None


def test_exposure_uses_the_mark_and_falls_back_to_cost() -> None:
    book = AccountBook()
    book.set_position("DU1", "AAPL", 10, Decimal("100"))
    book.set_position("DU1", "MSFT", -5, Decimal("400"))
    book.set_position("DU2", "AAPL", 99, Decimal("100"))
    assert book.gross_exposure("DU1") == Decimal("3000")
    book.on_quote("AAPL", LastPrice(Decimal("110"), Decimal("112"), None, 0))
    assert book.gross_exposure("DU1") == Decimal("1110") + Decimal("2000")
    book.on_fill("DU1", "AAPL", Side.SELL, 10)
    assert book.position("DU1", "AAPL") == 0 and book.gross_exposure("DU1") == Decimal("2000")


def test_price_age_of_an_unquoted_symbol_exceeds_any_limit() -> None:
    book = AccountBook()
    assert book.price_age_ms("NVDA") >= 10**12
    book.on_quote("NVDA", LastPrice(None, None, Decimal("1"), recv_ns=1_000_000))
    assert book.price_age_ms("NVDA", now_ns=251_000_000) == 250


def test_working_quantity_follows_orders_as_they_start_fill_and_end() -> None:
    book = AccountBook()

    def order(cid: str, side: Side, qty: int, symbol: str = "AAPL") -> FloorOrder:
        return FloorOrder(cid, "agent", "DU1", symbol, side, qty, Decimal("100"), "DAY", None)

    a, b, c = order("a", Side.SELL, 100), order("b", Side.SELL, 50), order("c", Side.BUY, 30)
    for o in (a, b, c, order("d", Side.SELL, 70, symbol="MSFT")):
        book.order_working(o)
    book.order_working(a)  # told twice (a restart re-sends it): counted once
    assert book.working_qty("DU1", "AAPL", Side.SELL) == 150
    assert book.working_qty("DU1", "AAPL", Side.BUY) == 30
    assert book.working_qty("DU2", "AAPL", Side.SELL) == 0

    book.on_fill("DU1", "AAPL", Side.SELL, 40, "a")  # partly filled: 60 of a still open
    assert book.working_qty("DU1", "AAPL", Side.SELL) == 110
    book.order_done("DU1", "b")  # cancelled with nothing filled
    assert book.working_qty("DU1", "AAPL", Side.SELL) == 60
    exit_sell = dataclasses.replace(order("e", Side.SELL, 25), reduce_only=True)
    book.order_working(exit_sell)
    assert book.working_qty("DU1", "AAPL", Side.SELL) == 85
    assert book.working_qty("DU1", "AAPL", Side.SELL, exits_only=True) == 25
    book.order_done("DU1", "e")
    assert book.working_qty("DU1", "AAPL", Side.SELL, exits_only=True) == 0
    book.on_fill("DU1", "AAPL", Side.SELL, 60, "a")
    book.order_done("DU1", "a")  # filled: done after its last fill
    book.on_fill("DU1", "AAPL", Side.SELL, 5, "a")  # a late report of a done order changes nothing
    book.order_done("DU1", "a")
    assert book.working_qty("DU1", "AAPL", Side.SELL) == 0
    assert book.position("DU1", "AAPL") == -105
    assert book.open_orders("DU1") == 2  # c and d
