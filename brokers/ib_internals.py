"""Every reach into ib_async's private members, in one place.

Checked against ib_async **2.1.0** (:data:`CHECKED_VERSION`, the version ``pyproject.toml`` pins);
``tests/brokers/test_ib_internals.py`` fails when the installed version differs or when one of
these members is missing or changed type on a connected client, so an upgrade is a deliberate
step: read ib_async's ``client.py`` again, adjust what follows, change the pin and the version.

Why each reach is needed (all on ``ib_async.Client``):

* ``_reqIdSeq``: the next order id the client would hand out. ib_async learns it from the
  gateway's ``nextValidId`` at connect; the floor keeps its own counter across sessions (the
  standby must not reuse an id the primary used) and takes the larger of the two.
* ``_msgQ``: the pacing throttle's queue of messages not yet written. The circuit breaker's
  global cancel must overtake it, and new orders still waiting in it would reach the broker
  after the cancel and survive it, so they are taken out (see :func:`take_queued_orders`).
* ``_prefix``: frames a message with its length, as ``sendMsg`` would, so the global cancel
  can be written straight to the socket ahead of the throttle.
* ``_onSocketHasData`` and ``_onSocketDisconnected``: the client's handlers of its connection's
  events, moved to the source-bound connection that replaces ib_async's own
  (:mod:`brokers.ib_transport`).
* ``_isThrottling``: whether the throttle is holding messages back (the benchmark's baseline
  waits for it to drain).

And on ``ib_async.Wrapper`` (``IB.wrapper``):

* ``tickString`` and ``reqId2Ticker``: ib_async parses an RTVolume tick (one per trade) into
  floats and keeps only the newest trade's time and volume per batch; the tape needs each
  trade's exact price, its venue time and the venue's running volume, so the raw value is read
  before ib_async parses it (:func:`on_rt_volume`). The decoder looks ``tickString`` up on the
  wrapper for every message, so an attribute on the instance takes its place.

And on ``ib_async.Decoder`` (``Client.decoder``):

* ``parse``: converts a decoded message's dataclasses (contract, order, order state,
  execution) from the wire's strings by the type of each field's default. It walks
  ``dataclasses.fields`` of every object on every message, an ``Order`` has ~150 fields, and
  every order event brings an ``openOrder``: a quarter of the hot path's broker-side CPU.
  :func:`plan_parsing` puts a version in its place that decides once per class which fields
  need converting and converts exactly those, the same way (``tests/brokers/test_ib_internals``
  compares the two on every field of each class). The decoder calls ``self.parse``, so an
  attribute on the instance takes its place.
* ``handlers[5]`` (``openOrder``) and, on the wrapper, ``trades``, ``permId2Trade`` and
  ``_results``: the gateway sends an ``openOrder`` with every change of an order, and for an
  order ib_async already knows its wrapper keeps only six fields of the ~150 the decoder built
  (``permId``, ``totalQuantity``, ``lmtPrice``, ``auxPrice``, ``orderType``, ``orderRef``),
  all in the message's first 26. :func:`decode_known_orders` reads those, does what the
  wrapper does with them, and hands every other message (a new order, a what-if) to ib_async's
  own decoder: a circuit breaker's hundreds of cancel acknowledgements are read without
  building hundreds of orders.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from ib_async import IB, Client, Ticker
from ib_async.connection import Connection
from ib_async.util import UNSET_DOUBLE

CHECKED_VERSION = "2.1.0"

_PLACE_ORDER = "3\0"
"""A queued placeOrder message starts with its message id, 3."""


def next_request_id(client: Client) -> int:
    """The id ``client.getReqId()`` would return next."""
    return client._reqIdSeq


def take_queued_orders(client: Client) -> list[int]:
    """Remove every placeOrder message from the pacing queue, unsent; their order ids.

    Every other queued message keeps its place."""
    queue = client._msgQ
    if not queue:
        return []
    kept = [m for m in queue if not m.startswith(_PLACE_ORDER)]
    unsent = [int(m[2 : m.index("\0", 2)]) for m in queue if m.startswith(_PLACE_ORDER)]
    queue.clear()
    queue.extend(kept)
    return unsent


def framed(client: Client, payload: bytes) -> bytes:
    """``payload`` with the length prefix ``sendMsg`` would add, ready for the socket."""
    return client._prefix(payload)


def move_socket_handlers(client: Client, old: Connection, new: Connection) -> None:
    """Unhook ``client`` from ``old``'s data and disconnect events and hook it to ``new``'s."""
    old.hasData -= client._onSocketHasData
    old.disconnected -= client._onSocketDisconnected
    new.hasData += client._onSocketHasData
    new.disconnected += client._onSocketDisconnected


def is_throttling(client: Client) -> bool:
    """True while the pacing throttle holds messages back."""
    return client._isThrottling


RT_VOLUME_TICK = 48
"""TWS's RTVolume tick (``tickString``): ``price;size;epochMillis;totalVolume;vwap;singleTrade``."""


def on_rt_volume(ib: IB, handler: Callable[[Ticker, str], None]) -> None:
    """Call ``handler(ticker, value)`` with each RTVolume tick's raw value, in the order they
    arrive, before ib_async parses it (ib_async still does, after). Exceptions are the
    handler's to keep: one here would make ib_async drop the tick."""
    wrapper = ib.wrapper
    parse = wrapper.tickString

    def tick_string(req_id: int, tick_type: int, value: str, *rest: Any) -> None:
        if tick_type == RT_VOLUME_TICK:
            # Looked up each time: ib_async replaces the map when it resets on a disconnect.
            ticker = wrapper.reqId2Ticker.get(req_id)
            if ticker is not None:
                handler(ticker, value)
        parse(req_id, tick_type, value, *rest)

    wrapper.tickString = tick_string  # type: ignore[method-assign,assignment]


_Conversion = tuple[str, type, Any]
_conversions: dict[type, tuple[_Conversion, ...]] = {}


def _conversions_of(cls: type) -> tuple[_Conversion, ...]:
    plan = _conversions.get(cls)
    if plan is None:
        plan = tuple(
            (f.name, type(f.default), f.default)
            for f in dataclasses.fields(cls)
            if type(f.default) in (int, float, bool)
        )
        _conversions[cls] = plan
    return plan


def parse_planned(obj: Any) -> None:
    """What ``Decoder.parse`` does to ``obj``: each field whose default is an int, a float or
    a bool is converted from the wire's string (an empty one gives the default); strings and
    every other field are left as they are."""
    for name, typ, default in _conversions_of(type(obj)):
        v = getattr(obj, name)
        if typ is int:
            setattr(obj, name, int(v) if v else default)
        elif typ is float:
            setattr(obj, name, float(v) if v else default)
        else:
            setattr(obj, name, bool(int(v)) if v else default)


def plan_parsing(client: Client) -> None:
    """Make ``client``'s decoder convert fields by a plan made once per class."""
    client.decoder.parse = parse_planned  # type: ignore[method-assign]


_OPEN_ORDER = 5


def decode_known_orders(client: Client, wrapper: Any) -> None:
    """Make ``client``'s decoder read an ``openOrder`` of an order ``wrapper`` (the client's
    ``IB.wrapper``) already knows by its first 26 fields; any other goes to ib_async's own."""
    decoder = client.decoder
    full = decoder.handlers[_OPEN_ORDER]

    def open_order(fields: list[str]) -> None:
        # ib_async 2.1.0's layout, for every server version: msgId, orderId, 11 contract
        # fields, action, totalQuantity, orderType, lmtPrice, auxPrice, tif, ocaGroup,
        # account, openClose, origin, orderRef, clientId, permId, ...
        try:
            order_id = int(fields[1]) if fields[1] else 0
            client_id = int(fields[24]) if fields[24] else 0
            perm_id = int(fields[25]) if fields[25] else 0
        except (IndexError, ValueError):
            full(fields)  # ib_async's decoder reports what is wrong with it
            return
        trade = wrapper.trades.get(wrapper.orderKey(client_id, order_id, perm_id))
        if trade is None or trade.order.whatIf:
            full(fields)
            return
        order = trade.order
        order.permId = perm_id
        order.totalQuantity = float(fields[14]) if fields[14] else 0.0
        order.lmtPrice = float(fields[16]) if fields[16] else UNSET_DOUBLE
        order.auxPrice = float(fields[17]) if fields[17] else UNSET_DOUBLE
        order.orderType = fields[15]
        order.orderRef = fields[23]
        wrapper.permId2Trade.setdefault(perm_id, trade)
        results = wrapper._results.get("openOrders")
        if results is None:
            wrapper.ib.openOrderEvent.emit(trade)
        else:
            results.append(trade)  # a reqOpenOrders in progress
        client.updateReqId(order_id + 1)

    decoder.handlers[_OPEN_ORDER] = open_order
