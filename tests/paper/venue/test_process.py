"""The venue process through the gateway client: requests, replies and the event stream."""

from __future__ import annotations

import asyncio
import socket
import struct
from decimal import Decimal

import pytest

from paper.venue.client import UnknownSymbol, VenueClient, VenueError
from paper.venue.events import (
    AccountEvent,
    CommissionEvent,
    DepthEvent,
    ExecutionEvent,
    OrderEvent,
    PositionEvent,
    TickEvent,
    VenueEvent,
)
from paper.venue.messages import (
    ASK,
    BID,
    CODE_ORDER_CANCELLED,
    ERR_BAD_REQUEST,
    ERR_CANCEL_NOT_CANCELLABLE,
    ERR_CANCEL_NOT_FOUND,
    ERR_DUPLICATE_ORDER_ID,
    ExecutionFilter,
    OrderAck,
    OrderReject,
    OrderSpec,
    PlaceOrder,
    Welcome,
)
from tests.helpers import eventually
from tests.paper.venue.conftest import VenueProcess


def buy(client_id: int, order_id: int, qty: int, price: Decimal | None, symbol: str = "AAPL") -> PlaceOrder:
    order_type = "MKT" if price is None else "LMT"
    return PlaceOrder(client_id, order_id, OrderSpec("BUY", qty, order_type, lmt_price=price), symbol=symbol)


async def test_contract_lookup_by_symbol_and_con_id_and_unknown_symbol_error(venue: VenueClient) -> None:
    assert venue.welcome is not None and venue.welcome.accounts == ("DU1234567",)
    aapl = await venue.contract("AAPL")
    assert (aapl.con_id, aapl.primary_exchange, aapl.currency, aapl.tick_size, aapl.lot_size) == (
        265598,
        "NASDAQ",
        "USD",
        Decimal("0.01"),
        1,
    )
    assert await venue.contract_by_con_id(aapl.con_id) == aapl
    assert len(await venue.contracts()) == 5
    with pytest.raises(UnknownSymbol) as err:
        await venue.contract("NOPE")
    assert err.value.code == 200


async def test_marketable_order_is_acked_filled_and_reported_in_order(venue: VenueClient) -> None:
    events: list[VenueEvent] = []
    venue.add_listener(events.append)
    tick = await venue.subscribe_ticks("AAPL")
    assert tick.ask is not None and tick.bid is not None and tick.bid < tick.ask
    order_id = await venue.next_valid_id(1)
    ack = await venue.place_order(buy(1, order_id, 50, tick.ask + Decimal("1.00")))
    assert isinstance(ack, OrderAck) and ack.update.status == "Filled"
    await eventually(lambda: any(isinstance(e, AccountEvent) for e in events))
    mine = [e for e in events if not isinstance(e, TickEvent | DepthEvent)]
    kinds = [type(e).__name__ for e in mine]
    assert kinds[0] == "OrderEvent" and mine[0].update.status == "Submitted"  # type: ignore[union-attr]
    first_exec = kinds.index("ExecutionEvent")
    assert kinds[first_exec : first_exec + 3] == ["ExecutionEvent", "CommissionEvent", "OrderEvent"]
    executions = [e.execution for e in mine if isinstance(e, ExecutionEvent)]
    commissions = [e.report for e in mine if isinstance(e, CommissionEvent)]
    assert [c.exec_id for c in commissions] == [x.exec_id for x in executions]
    assert sum(x.shares for x in executions) == 50
    assert all(x.perm_id == ack.perm_id and x.side == "BOT" for x in executions)
    final = [e.update for e in mine if isinstance(e, OrderEvent)][-1]
    assert (final.status, final.filled, final.remaining) == ("Filled", 50, 0)
    (position_event,) = [e for e in mine if isinstance(e, PositionEvent)]
    assert position_event.position.position == 50
    reports = await venue.executions(ExecutionFilter(client_id=1))
    assert [r.execution for r in reports] == executions
    assert [p.position for p in await venue.positions()] == [50]
    values = {v.key: v.value for v in (await venue.account_values()).values}
    assert Decimal(values["GrossPositionValue"]) > 0


async def test_resting_order_cancel_and_ib_error_codes_over_the_wire(venue: VenueClient) -> None:
    tick = await venue.subscribe_ticks("MSFT")
    assert tick.bid is not None
    low = tick.bid - Decimal("20.00")
    order_id = await venue.next_valid_id(2)
    ack = await venue.place_order(buy(2, order_id, 10, low, "MSFT"))
    assert isinstance(ack, OrderAck) and ack.update.status == "Submitted"
    assert [o.order_id for o in await venue.open_orders(2)] == [order_id]
    duplicate = await venue.place_order(buy(2, order_id - 1, 10, low, "MSFT"))
    assert isinstance(duplicate, OrderReject) and duplicate.code == ERR_DUPLICATE_ORDER_ID
    cancelled = await venue.cancel_order(2, order_id)
    assert cancelled.code == CODE_ORDER_CANCELLED and cancelled.ok
    assert (await venue.cancel_order(2, order_id)).code == ERR_CANCEL_NOT_CANCELLABLE
    assert (await venue.cancel_order(2, order_id + 1000)).code == ERR_CANCEL_NOT_FOUND
    assert await venue.open_orders(2) == ()
    (done,) = await venue.completed_orders(2)
    assert (done.order_id, done.status, done.filled, done.remaining) == (order_id, "Cancelled", 0, 10)


async def test_global_cancel_with_a_thousand_open_orders(venue: VenueClient) -> None:
    tick = await venue.subscribe_ticks("NVDA")
    assert tick.bid is not None
    first = await venue.next_valid_id(3)
    price = tick.bid - Decimal("10.00")
    replies = await asyncio.gather(
        *(venue.place_order(buy(3, first + i, 1, price, "NVDA")) for i in range(1000))
    )
    assert all(isinstance(r, OrderAck) for r in replies)
    assert len(await venue.open_orders(None)) == 1000
    cancelled: list[OrderEvent] = []
    venue.add_listener(lambda e: cancelled.append(e) if isinstance(e, OrderEvent) else None)
    assert await venue.global_cancel() == 1000
    assert await venue.open_orders(None) == ()
    assert sum(1 for e in cancelled if e.update.status == "Cancelled") == 1000


async def test_next_valid_id_never_goes_backwards_across_gateway_reconnects(
    venue: VenueClient, venue_process: VenueProcess
) -> None:
    start = await venue.next_valid_id(21)
    ack = await venue.place_order(buy(21, start + 40, 1, Decimal("1.00")))
    assert isinstance(ack, OrderAck)
    await venue.close()
    again = await VenueClient.connect(venue_process.host, venue_process.port, "gw-test-2")
    try:
        assert await again.next_valid_id(21) == start + 41
        reused = await again.place_order(buy(21, start + 40, 1, Decimal("1.00")))
        # The same (client, id) is the open order itself: resending it is a modify, not a new order.
        assert isinstance(reused, OrderAck) and reused.perm_id == ack.perm_id
        lower = await again.place_order(buy(21, start + 39, 1, Decimal("1.00")))
        assert isinstance(lower, OrderReject) and lower.code == ERR_DUPLICATE_ORDER_ID
    finally:
        await again.close()


async def test_depth_stream_applied_to_the_snapshot_matches_the_book_after_10000_updates(
    venue: VenueClient, venue_process: VenueProcess
) -> None:
    venue_process.control("POST", "/symbols/AAPL/rate", {"rate": 5000})
    changes: list[tuple[int, int, Decimal, int]] = []

    def record(event: VenueEvent) -> None:
        if isinstance(event, DepthEvent) and event.symbol == "AAPL":
            changes.extend((c.seq, c.side, c.price, c.size) for c in event.changes)

    venue.add_listener(record)
    start = await venue.subscribe_depth("AAPL")
    await eventually(lambda: len(changes) >= 10_000, timeout=30)
    final = await venue.subscribe_depth("AAPL")
    venue_process.control("POST", "/symbols/AAPL/rate", {"rate": 20})
    book = {BID: {lv.price: lv.size for lv in start.bids}, ASK: {lv.price: lv.size for lv in start.asks}}
    expected_seq = start.seq
    for seq, side, price, size in changes:
        if seq > final.seq:
            break
        if seq <= start.seq:
            continue
        assert seq == expected_seq + 1, "depth changes arrive without gaps"
        expected_seq = seq
        if size:
            book[side][price] = size
        else:
            book[side].pop(price, None)
    assert expected_seq == final.seq
    assert book[BID] == {lv.price: lv.size for lv in final.bids}
    assert book[ASK] == {lv.price: lv.size for lv in final.asks}
    assert max(book[BID]) < min(book[ASK])


async def test_malformed_requests_are_refused_and_garbage_frames_hurt_only_their_sender(
    venue: VenueClient, venue_process: VenueProcess
) -> None:
    with pytest.raises(VenueError) as err:
        await venue._request(Welcome((), 0, 1.0, 0), Welcome)
    assert err.value.code == ERR_BAD_REQUEST
    raw = socket.create_connection((venue_process.host, venue_process.port))
    try:
        payload = b'[["q",1,["PlaceOrder","not","numbers"]]]'
        raw.sendall(struct.pack(">I", len(payload)) + payload)
        raw.sendall(struct.pack(">I", 9) + b"not json!")
        raw.settimeout(5)
        while raw.recv(65536):
            pass  # the venue answers the first frame, then closes on the garbage
    finally:
        raw.close()
    assert (await venue.current_time_ns()) > 0
    assert isinstance(await venue.place_order(buy(31, await venue.next_valid_id(31), 1, None)), OrderAck)
