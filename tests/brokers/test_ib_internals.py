"""ib_async's private members the adapter relies on (brokers/ib_internals.py) are still there,
as that module describes them, in the installed version and on a client connected to a real
gateway. A failure here means ib_async changed: re-read its client.py before changing the pin."""

from __future__ import annotations

import collections
import dataclasses
import itertools
import struct
from collections.abc import AsyncIterator
from decimal import Decimal

import ib_async
import pytest
from ib_async import Client, util

from brokers import ib_internals
from brokers.ib_transport import BoundConnection
from brokers.ibkr import IbkrBroker, IbkrConfig
from paper.tws import outgoing
from paper.venue.messages import ContractInfo, OrderSpec, OrderUpdate
from tests.brokers.conftest import HOST, PaperStack
from tests.helpers import eventually

_client_ids = itertools.count(1700)  # apart from every other suite's ids


@pytest.fixture()
async def client(paper: PaperStack) -> AsyncIterator[Client]:
    broker = IbkrBroker(IbkrConfig(HOST, paper.gateway_port, None, client_id=next(_client_ids)))
    await broker.connect()
    active = broker.router.active
    assert active is not None and active.ib is not None
    yield active.ib.client
    await broker.close()


def test_the_installed_ib_async_is_the_checked_version() -> None:
    assert ib_async.__version__ == ib_internals.CHECKED_VERSION


async def test_the_private_members_exist_with_the_expected_types_on_a_connected_client(
    client: Client,
) -> None:
    # _reqIdSeq: the next order id, an int the gateway's nextValidId set above 0.
    assert type(client._reqIdSeq) is int
    assert ib_internals.next_request_id(client) > 0
    before = ib_internals.next_request_id(client)
    assert client.getReqId() == before and ib_internals.next_request_id(client) == before + 1
    # _msgQ: the throttle's queue, a deque of str messages; _isThrottling a bool.
    assert isinstance(client._msgQ, collections.deque)
    assert type(client._isThrottling) is bool and ib_internals.is_throttling(client) is False
    # _prefix: the 4-byte big-endian length frame sendMsg writes.
    assert ib_internals.framed(client, b"58\x001\x00") == struct.pack(">I", 5) + b"58\x001\x00"
    # The socket handlers, moved onto the bound connection that replaced ib_async's own.
    assert isinstance(client.conn, BoundConnection)
    assert callable(client._onSocketHasData) and callable(client._onSocketDisconnected)
    # parse: the decoder calls it on itself, so the planned one on the instance is used.
    assert client.decoder.parse is ib_internals.parse_planned


async def test_queued_orders_are_taken_out_of_the_throttle_queue_and_the_rest_keeps_its_place(
    client: Client,
) -> None:
    queue = client._msgQ
    queue.extend(["49\x001\x00", "3\x00123456\x00rest", "4\x001\x007\x00", "3\x00123457\x00rest"])
    try:
        assert ib_internals.take_queued_orders(client) == [123456, 123457]
        assert list(queue) == ["49\x001\x00", "4\x001\x007\x00"]
    finally:
        queue.clear()


async def test_rtvolume_ticks_reach_the_hook_raw_and_ib_async_still_parses_them(paper: PaperStack) -> None:
    """The decoder looks ``tickString`` up on the wrapper per message and ``reqId2Ticker`` maps
    a request to its ticker: what :func:`ib_internals.on_rt_volume` relies on."""
    broker = IbkrBroker(IbkrConfig(HOST, paper.gateway_port, None, client_id=next(_client_ids)))
    await broker.connect()
    try:
        active = broker.router.active
        assert active is not None and active.ib is not None
        ib = active.ib
        assert "tickString" in vars(ib.wrapper), "the adapter's hook sits on the instance"
        assert isinstance(ib.wrapper.reqId2Ticker, dict)
        contract = await broker._market.qualify("MSFT", ib)
        seen: list[tuple[str, str]] = []
        ib_internals.on_rt_volume(ib, lambda ticker, value: seen.append((ticker.contract.symbol, value)))
        ticker = ib.reqMktData(contract, "233")
        await eventually(lambda: seen and ticker.rtTime is not None, timeout=20)
        symbol, value = seen[-1]
        price, size, millis = value.split(";")[:3]
        assert symbol == "MSFT" and Decimal(price) > 0 and int(size) > 0
        assert ticker.rtTime is not None  # ib_async parsed it too
        ib.cancelMktData(contract)
    finally:
        await broker.close()


_PARSED = (
    ib_async.Order, ib_async.Contract, ib_async.Stock, ib_async.OrderState, ib_async.Execution,
    ib_async.ContractDetails, ib_async.CommissionReport, ib_async.ScannerSubscription,
)  # fmt: skip


def _wire_value(default: object, i: int) -> object:
    """A field's value as the decoder leaves it before parsing: a string from the wire (empty
    every third field, to take the default's branch), or a non-string default unchanged."""
    if isinstance(default, bool):
        return "" if i % 3 == 0 else str(i % 2)
    if isinstance(default, int | float):
        return "" if i % 3 == 0 else (str(i * 7) if isinstance(default, int) else f"{i}.25")
    if isinstance(default, str):
        return f"text{i}"
    return default


@pytest.mark.parametrize("cls", _PARSED, ids=lambda c: c.__name__)
def test_the_planned_parse_converts_every_field_as_ib_asyncs_own(cls: type) -> None:
    decoder = ib_async.decoder.Decoder(wrapper=None, serverVersion=0)
    theirs, ours = cls(), cls()
    for i, f in enumerate(dataclasses.fields(cls)):
        value = _wire_value(f.default, i)
        setattr(theirs, f.name, value)
        setattr(ours, f.name, value)
    ib_async.decoder.Decoder.parse(decoder, theirs)
    ib_internals.parse_planned(ours)
    converted = [f.name for f in dataclasses.fields(cls) if type(f.default) in (int, float, bool)]
    assert converted, "each class has numeric fields to convert"
    for f in dataclasses.fields(cls):
        assert getattr(ours, f.name) == getattr(theirs, f.name), f.name
        assert type(getattr(ours, f.name)) is type(getattr(theirs, f.name)), f.name


def _open_order_fields(u: OrderUpdate, sv: int) -> list[str]:
    """The gateway's ``openOrder`` for ``u`` as ib_async's reader hands it to the decoder."""
    contract = ContractInfo("MSFT", 272093, "SMART", "NASDAQ", "USD", Decimal("0.01"), 1, "Microsoft")
    return outgoing.open_order(u, contract, sv)[4:].decode().split("\0")[:-1]


def _update(**changes: object) -> OrderUpdate:
    spec = OrderSpec("BUY", 100, "LMT", lmt_price=Decimal("410.25"), order_ref="cmd-1")
    u = OrderUpdate(
        "DU0000001", 7, 42, 9001, "MSFT", 272093, spec, "Submitted", 0, 100, None, None, 1
    )  # fmt: skip
    order = dataclasses.replace(spec, **{k: v for k, v in changes.items() if k != "status"})
    return dataclasses.replace(u, order=order, status=str(changes.get("status", u.status)))


@pytest.mark.parametrize("sv", [176, outgoing.SERVER_VERSION])
def test_a_known_orders_open_order_read_by_its_head_leaves_the_trade_as_ib_asyncs_decoder_does(
    sv: int,
) -> None:
    theirs, ours = ib_async.IB(), ib_async.IB()
    ib_internals.decode_known_orders(ours.client, ours.wrapper)
    events: dict[str, list[object]] = {"theirs": [], "ours": []}
    for name, ib in (("theirs", theirs), ("ours", ours)):
        ib.client.decoder.serverVersion = sv
        ib.openOrderEvent += events[name].append
    first = _open_order_fields(_update(), sv)
    changed = _open_order_fields(
        _update(total_qty=60, lmt_price=Decimal("409.5"), aux_price=Decimal("1.5"), order_ref="cmd-2"), sv
    )
    for ib in (theirs, ours):
        ib.client.decoder.interpret(first)  # a new order: ib_async's own decoder, both
    assert ours.wrapper.trades.keys() == theirs.wrapper.trades.keys() == {(7, 42)}
    theirs.client.decoder.interpret(changed)
    ours.client.decoder.interpret(changed)  # known: read by its head
    t, o = theirs.wrapper.trades[(7, 42)], ours.wrapper.trades[(7, 42)]
    assert o.order.totalQuantity == 60.0 and o.order.lmtPrice == 409.5 and o.order.orderRef == "cmd-2"
    assert util.dataclassAsDict(o.order) == util.dataclassAsDict(t.order)
    assert ours.wrapper.permId2Trade.keys() == theirs.wrapper.permId2Trade.keys() == {9001}
    assert [e is o for e in events["ours"]] == [e is t for e in events["theirs"]] == [True, True]
    assert ours.client._reqIdSeq == theirs.client._reqIdSeq == 43


def test_an_open_order_ib_async_does_not_know_goes_to_its_own_decoder() -> None:
    ib = ib_async.IB()
    ib_internals.decode_known_orders(ib.client, ib.wrapper)
    ib.client.decoder.serverVersion = outgoing.SERVER_VERSION
    ib.client.decoder.interpret(_open_order_fields(_update(), outgoing.SERVER_VERSION))
    trade = ib.wrapper.trades[(7, 42)]
    assert (
        trade.contract.symbol == "MSFT"
        and trade.order.action == "BUY"
        and trade.orderStatus.status == "Submitted"
    )
