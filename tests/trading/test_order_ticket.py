"""A ticket becomes the terms of a staged order, or names the field that is wrong."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from trading.commands import OrderType, Side, TimeInForce
from trading.order_ticket import Ticket, TicketInvalid, parse_ticket
from trading.step_up import OrderTerms

SYMBOLS = ("AAPL", "MSFT")
TICKET = Ticket(
    account="DU1234567", symbol="AAPL", side="BUY", order_type="LMT", quantity=10, limit_price="230.50",
    stop_loss="228",
)  # fmt: skip


def parse(ticket: Ticket, accounts: frozenset[str] = frozenset({"DU1234567"})) -> OrderTerms | TicketInvalid:
    return parse_ticket(ticket, symbols=SYMBOLS, may_trade=lambda a: a in accounts)


def test_a_good_ticket_becomes_its_terms() -> None:
    assert parse(TICKET) == OrderTerms(
        account="DU1234567", symbol="AAPL", side=Side.BUY, order_type=OrderType.LMT, quantity=10,
        tif=TimeInForce.DAY, limit_price=Decimal("230.50"), stop_loss=Decimal("228"),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"symbol": "TSLA"}, "symbol"),
        ({"account": "DU-OTHER"}, "account"),
        ({"side": "HOLD"}, "side"),
        ({"order_type": "TRAIL"}, "order_type"),
        ({"order_type": "LIMIT"}, "order_type"),
        ({"tif": "FOK"}, "tif"),
        ({"quantity": 0}, "quantity"),
        ({"quantity": -5}, "quantity"),
        ({"limit_price": "1e3"}, "limit_price"),
        ({"limit_price": "-230"}, "limit_price"),
        ({"limit_price": "0"}, "limit_price"),
        ({"limit_price": ".5"}, "limit_price"),
        ({"limit_price": "230.123456789"}, "limit_price"),
        ({"limit_price": None}, "limit_price"),
        ({"stop_price": "229"}, "stop_price"),
        ({"stop_loss": "NaN"}, "stop_loss"),
        ({"stop_loss": "228.123456789"}, "stop_loss"),
        ({"order_type": "MKT"}, "limit_price"),
        ({"order_type": "STP"}, "limit_price"),
    ],
)
def test_a_bad_field_is_named(change: dict[str, object], field: str) -> None:
    outcome = parse(dataclasses.replace(TICKET, **change))  # type: ignore[arg-type]
    assert isinstance(outcome, TicketInvalid)
    assert outcome.field == field, outcome


def test_a_stop_order_needs_its_trigger_and_takes_no_limit() -> None:
    stop = dataclasses.replace(TICKET, order_type="STP", limit_price=None, stop_price="231")
    terms = parse(stop)
    assert isinstance(terms, OrderTerms) and terms.stop_price == Decimal("231")


def test_a_trader_on_every_account_may_trade_any() -> None:
    outcome = parse_ticket(
        dataclasses.replace(TICKET, account="DU-OTHER"), symbols=SYMBOLS, may_trade=lambda a: True
    )
    assert isinstance(outcome, OrderTerms)
