"""A fast placeOrder encoder whose output is ib_async's own, byte for byte.

ib_async encodes a placeOrder generically: about 115 fields, each looked up in a table of
formatters rebuilt on every call (~30 µs, several times that with cold caches), on the order
path between intake and the socket write. For the orders the floor sends, only a dozen fields
vary. :class:`PlaceOrderEncoder` runs ib_async's encoder once per (server version, order type,
exchange) with marker values in those fields, keeps the resulting field list as a template and
afterwards only substitutes the dozen values (a list copy and a join).

Formatting follows ib_async's: ``Decimal`` and ``str`` as ``str()``, ``int`` as ``str()``, bools
as ``"1"``/``"0"``, unset prices as the empty string. (ib_async also prints the int 2**31 - 1,
IB's "unset", as empty; order ids and quantities never reach it: quantities are capped at
10**9 by the command schema.) ``tests/brokers/test_ib_encode.py`` checks
the equality against ib_async for every order shape the floor produces.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ib_async import Client, Contract, Order

from brokers import ib_convert as cv
from brokers.base import BrokerOrder, OrderType

# Marker values: distinct texts no real order field carries.
_MARKERS: dict[str, Any] = {
    "orderId": 987_650_001,
    "symbol": "ZZMARKSYM",
    "currency": "ZZMARKCUR",
    "action": "ZZMARKACT",
    "totalQuantity": 987_650_002,
    "lmtPrice": Decimal("987650003.5"),
    "auxPrice": Decimal("987650004.5"),
    "tif": "ZZMARKTIF",
    "account": "ZZMARKACC",
    "orderRef": "ZZMARKREF",
    "trailStopPrice": Decimal("987650005.5"),
    "trailingPercent": Decimal("987650006.5"),
}
_CONTRACT_FIELDS = ("symbol", "currency")


class _Capture:
    """Just enough of an ib_async ``Client`` for its ``placeOrder`` to run and be recorded."""

    send = Client.send

    def __init__(self, server_version: int) -> None:
        self.version = server_version
        self.sent = ""

    def serverVersion(self) -> int:  # noqa: N802 - ib_async's name
        return self.version

    def isConnected(self) -> bool:  # noqa: N802 - ib_async's name
        return True

    def sendMsg(self, msg: str) -> None:  # noqa: N802 - ib_async's name
        self.sent = msg


@dataclass(frozen=True)
class _Template:
    fields: tuple[str, ...]
    slots: dict[str, int]
    outside_rth: int


def reference_encoding(server_version: int, order_id: int, contract: Contract, order: Order) -> str:
    """What ib_async itself would write for this order (without the length prefix)."""
    capture = _Capture(server_version)
    Client.placeOrder(capture, order_id, contract, order)  # type: ignore[arg-type]
    return capture.sent


class PlaceOrderEncoder:
    def __init__(self, server_version: int) -> None:
        self.server_version = server_version
        self._templates: dict[tuple[OrderType, str], _Template] = {}

    def warm(self, exchange: str = "SMART") -> None:
        """Build the templates of every order type now, not on the first order."""
        for order_type in OrderType:
            self._template(order_type, exchange)

    def encode(self, order: BrokerOrder, order_id: int) -> str:
        """The placeOrder message for ``order`` (validated beforehand) under ``order_id``."""
        template = self._template(order.order_type, order.exchange)
        fields = list(template.fields)
        slots = template.slots
        fields[slots["orderId"]] = str(order_id)
        fields[slots["symbol"]] = order.symbol
        fields[slots["currency"]] = order.currency
        fields[slots["action"]] = str(order.side)
        fields[slots["totalQuantity"]] = str(order.quantity)
        fields[slots["tif"]] = str(order.tif)
        fields[slots["account"]] = order.account
        fields[slots["orderRef"]] = order.order_ref
        fields[template.outside_rth] = "1" if order.outside_rth else "0"
        if order.order_type is OrderType.TRAIL:
            lmt, aux = None, order.trailing_amount
            trail_stop, trail_pct = order.stop_price, order.trailing_percent
        else:
            lmt, aux, trail_stop, trail_pct = order.limit_price, order.stop_price, None, None
        fields[slots["lmtPrice"]] = _price(lmt)
        fields[slots["auxPrice"]] = _price(aux)
        fields[slots["trailStopPrice"]] = _price(trail_stop)
        fields[slots["trailingPercent"]] = _price(trail_pct)
        return "\0".join(fields)

    def _template(self, order_type: OrderType, exchange: str) -> _Template:
        key = (order_type, exchange)
        template = self._templates.get(key)
        if template is None:
            template = self._templates[key] = self._build(order_type, exchange)
        return template

    def _build(self, order_type: OrderType, exchange: str) -> _Template:
        def capture(outside_rth: bool) -> list[str]:
            contract = Contract(
                secType="STK", symbol=_MARKERS["symbol"], exchange=exchange, currency=_MARKERS["currency"]
            )
            order = Order(
                orderType=cv.IB_ORDER_TYPE[order_type],
                outsideRth=outside_rth,
                **{k: v for k, v in _MARKERS.items() if k not in (*_CONTRACT_FIELDS, "orderId")},
            )
            return reference_encoding(self.server_version, _MARKERS["orderId"], contract, order).split("\0")

        plain, flipped = capture(False), capture(True)
        differing = [i for i, (a, b) in enumerate(zip(plain, flipped, strict=True)) if a != b]
        if len(differing) != 1:
            raise RuntimeError(f"cannot locate outsideRth in ib_async's placeOrder: {differing}")
        slots = {}
        for name, value in _MARKERS.items():
            text = str(value)
            where = [i for i, f in enumerate(plain) if f == text]
            if len(where) != 1:
                raise RuntimeError(f"cannot locate {name} in ib_async's placeOrder ({len(where)} matches)")
            slots[name] = where[0]
        return _Template(tuple(plain), slots, differing[0])


def _price(value: Decimal | None) -> str:
    return "" if value is None else str(cv.plain(value))
