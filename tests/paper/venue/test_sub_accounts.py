"""Sub-accounts (the paper Schwab API's): the same books as the gateways' account, but their own
cash, positions and values, no commission, and out of reach of the primary's global cancel."""

from __future__ import annotations

from decimal import Decimal

from paper.venue.engine import Venue
from paper.venue.events import AccountEvent, ExecutionEvent, PositionEvent
from paper.venue.messages import OrderAck, OrderReject, OrderSpec, PlaceOrder
from tests.paper.venue.support import ask, bid, quiet_venue

SUB = "SCHW0001"


def place(
    venue: Venue, client_id: int, order_id: int, spec: OrderSpec, account: str = ""
) -> OrderAck | OrderReject:
    return venue.place(PlaceOrder(client_id, order_id, spec, symbol="AAPL", account=account), venue.now_ns)


def test_a_sub_accounts_fill_is_its_own_and_pays_no_commission() -> None:
    venue = quiet_venue(sub_accounts=(SUB,))
    ask(venue, "100.00", 50)
    bid(venue, "99.00", 50)
    venue.drain()
    place(venue, 7000, 1, OrderSpec("BUY", 10, "MKT"), account=SUB)
    events = venue.drain()
    [fill] = [e.execution for e in events if isinstance(e, ExecutionEvent)]
    assert fill.account == SUB
    assert [e.position.account for e in events if isinstance(e, PositionEvent)] == [SUB]
    assert [e.snapshot.account for e in events if isinstance(e, AccountEvent)] == [SUB]
    assert venue.positions() == ()  # the primary's: nothing
    [held] = venue.positions(SUB)
    assert (held.position, held.avg_cost) == (10, Decimal("100.00"))
    cash = {v.key: v.value for v in venue.account_snapshot(SUB).values}["TotalCashValue"]
    assert Decimal(cash) == Decimal("1000000.00") - 1000  # no commission
    primary = {v.key: v.value for v in venue.account_snapshot().values}["TotalCashValue"]
    assert Decimal(primary) == Decimal("1000000.00")


def test_the_primarys_global_cancel_leaves_a_sub_accounts_orders_working() -> None:
    venue = quiet_venue(sub_accounts=(SUB,))
    place(venue, 1, 1, OrderSpec("BUY", 1, "LMT", Decimal("90.00")))
    place(venue, 7000, 1, OrderSpec("BUY", 1, "LMT", Decimal("90.00")), account=SUB)
    assert venue.global_cancel(venue.now_ns, venue.config.account) == 1
    assert [wo.account for wo in venue.open.values()] == [SUB]


def test_an_order_for_an_account_the_venue_does_not_hold_is_rejected() -> None:
    venue = quiet_venue()
    reply = place(venue, 7000, 1, OrderSpec("BUY", 1, "LMT", Decimal("90.00")), account=SUB)
    assert "Unknown account SCHW0001" in reply.message  # type: ignore[union-attr]
