"""Client -> server messages at server version 178, decoded into frozen dataclasses.

``decode(fields)`` turns one frame's fields into a message object or raises FieldError
(bad or missing field) / UnknownMessage (an id no TWS client sends). Ids TWS knows but the
paper venue does not serve decode to :class:`Unsupported`, carrying the request id when the
message has one so the session can fail that request instead of leaving the client waiting.
Prices stay exact: Decimal straight from the client's text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from paper.tws.codec import FieldError, Fields


class UnknownMessage(ValueError):
    def __init__(self, msg_id: int) -> None:
        self.msg_id = msg_id
        super().__init__(f"unknown message id {msg_id}")


@dataclass(frozen=True, slots=True)
class ContractRef:
    con_id: int
    symbol: str
    sec_type: str
    exchange: str
    primary_exchange: str
    currency: str
    local_symbol: str


@dataclass(frozen=True, slots=True)
class StartApi:
    client_id: int
    capabilities: str


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    order_id: int
    contract: ContractRef
    action: str
    total_qty: Decimal | None
    order_type: str
    lmt_price: Decimal | None
    aux_price: Decimal | None
    tif: str
    account: str
    order_ref: str
    transmit: bool
    parent_id: int
    outside_rth: bool
    trail_stop_price: Decimal | None
    trailing_percent: Decimal | None
    what_if: bool
    has_combo_legs: bool
    has_conditions: bool


@dataclass(frozen=True, slots=True)
class CancelOrder:
    order_id: int


@dataclass(frozen=True, slots=True)
class ReqMktData:
    req_id: int
    contract: ContractRef
    generic_ticks: str
    snapshot: bool


@dataclass(frozen=True, slots=True)
class CancelMktData:
    req_id: int


@dataclass(frozen=True, slots=True)
class ReqMktDepth:
    req_id: int
    contract: ContractRef
    num_rows: int
    smart_depth: bool


@dataclass(frozen=True, slots=True)
class CancelMktDepth:
    req_id: int


@dataclass(frozen=True, slots=True)
class ReqContractDetails:
    req_id: int
    contract: ContractRef


@dataclass(frozen=True, slots=True)
class ReqExecutions:
    req_id: int
    client_id: int
    account: str
    time: str
    symbol: str
    sec_type: str
    exchange: str
    side: str


@dataclass(frozen=True, slots=True)
class ReqIds:
    num_ids: int


@dataclass(frozen=True, slots=True)
class ReqOpenOrders:
    pass


@dataclass(frozen=True, slots=True)
class ReqAllOpenOrders:
    pass


@dataclass(frozen=True, slots=True)
class ReqAutoOpenOrders:
    auto_bind: bool


@dataclass(frozen=True, slots=True)
class ReqCompletedOrders:
    api_only: bool


@dataclass(frozen=True, slots=True)
class ReqAccountUpdates:
    subscribe: bool
    account: str


@dataclass(frozen=True, slots=True)
class ReqAccountUpdatesMulti:
    req_id: int
    account: str
    model_code: str


@dataclass(frozen=True, slots=True)
class CancelAccountUpdatesMulti:
    req_id: int


@dataclass(frozen=True, slots=True)
class ReqAccountSummary:
    req_id: int
    group: str
    tags: str


@dataclass(frozen=True, slots=True)
class CancelAccountSummary:
    req_id: int


@dataclass(frozen=True, slots=True)
class ReqPositions:
    pass


@dataclass(frozen=True, slots=True)
class CancelPositions:
    pass


@dataclass(frozen=True, slots=True)
class ReqPositionsMulti:
    req_id: int
    account: str
    model_code: str


@dataclass(frozen=True, slots=True)
class CancelPositionsMulti:
    req_id: int


@dataclass(frozen=True, slots=True)
class ReqCurrentTime:
    pass


@dataclass(frozen=True, slots=True)
class ReqGlobalCancel:
    pass


@dataclass(frozen=True, slots=True)
class ReqMarketDataType:
    data_type: int


@dataclass(frozen=True, slots=True)
class ReqManagedAccts:
    pass


@dataclass(frozen=True, slots=True)
class ReqMktDepthExchanges:
    pass


@dataclass(frozen=True, slots=True)
class Unsupported:
    """A message TWS knows that this venue does not serve; ``req_id`` None if it has none."""

    msg_id: int
    req_id: int | None


ClientMessage = (
    StartApi | PlaceOrder | CancelOrder | ReqMktData | CancelMktData | ReqMktDepth | CancelMktDepth
    | ReqContractDetails | ReqExecutions | ReqIds | ReqOpenOrders | ReqAllOpenOrders
    | ReqAutoOpenOrders | ReqCompletedOrders | ReqAccountUpdates | ReqAccountUpdatesMulti
    | CancelAccountUpdatesMulti | ReqAccountSummary | CancelAccountSummary | ReqPositions
    | CancelPositions | ReqPositionsMulti | CancelPositionsMulti | ReqCurrentTime
    | ReqGlobalCancel | ReqMarketDataType | ReqManagedAccts | ReqMktDepthExchanges | Unsupported
)


def _contract(f: Fields) -> ContractRef:
    con_id = f.int("conId", default=0)
    symbol = f.text("symbol")
    sec_type = f.text("secType")
    f.skip(4, "lastTradeDate/strike/right/multiplier")
    exchange = f.text("exchange")
    primary = f.text("primaryExchange")
    currency = f.text("currency")
    local_symbol = f.text("localSymbol")
    f.skip(1, "tradingClass")
    return ContractRef(con_id, symbol, sec_type, exchange, primary, currency, local_symbol)


def _start_api(f: Fields) -> StartApi:
    f.skip(1, "version")
    client_id = f.int("clientId")
    caps = f.text("optionalCapabilities") if f.remaining() else ""
    return StartApi(client_id, caps)


PLAIN_ORDER_FIELDS = 114
"""A placeOrder at server version 178 without any optional block (tws-protocol.md 5.5)."""


def _place_order(f: Fields) -> PlaceOrder:
    fields = f.fields
    if (
        len(fields) == PLAIN_ORDER_FIELDS
        and fields[4] != "BAG"
        and fields[64] == ""  # deltaNeutralOrderType
        and fields[72] in _NO_SCALE  # scalePriceIncrement
        and fields[76] == ""  # hedgeType
        and fields[81] in ("", "0")  # deltaNeutralContract
        and fields[82] == ""  # algoStrategy
        and fields[89] in ("", "0")  # conditionCount
        and fields[18].replace(" ", "") != "PEGBENCH"
    ):
        return _plain_order(f)
    return _any_order(f)


_NO_SCALE = frozenset({"", "0", "0.0", "1.7976931348623157e+308", "1.7976931348623157E308"})


def _plain_order(f: Fields) -> PlaceOrder:
    """The common case read by position: the same result as ``_any_order`` (a property test
    holds them to that), without walking 114 fields one call at a time."""
    x = f.fields

    def number(index: int, name: str) -> Decimal | None:
        f.pos = index
        return f.decimal(name)

    def flag(index: int, name: str) -> bool:
        f.pos = index
        return f.bool(name)

    f.pos = 1
    order_id = f.int("orderId")
    con_id = f.int("conId", default=0)
    f.pos = 28
    parent_id = f.int("parentId", default=0)
    f.pos = len(x)
    return PlaceOrder(
        order_id=order_id,
        contract=ContractRef(con_id, x[3], x[4], x[9], x[10], x[11], x[12]),
        action=x[16],
        total_qty=number(17, "totalQuantity"),
        order_type=x[18],
        lmt_price=number(19, "lmtPrice"),
        aux_price=number(20, "auxPrice"),
        tif=x[21],
        account=x[23],
        order_ref=x[26],
        transmit=flag(27, "transmit"),
        parent_id=parent_id,
        outside_rth=flag(33, "outsideRth"),
        trail_stop_price=number(68, "trailStopPrice"),
        trailing_percent=number(69, "trailingPercent"),
        what_if=flag(84, "whatIf"),
        has_combo_legs=False,
        has_conditions=False,
    )


def _any_order(f: Fields) -> PlaceOrder:
    # Layout in tws-protocol.md section 5.5; conditional blocks are consumed so that the
    # fields behind them (whatIf, conditions) are read from the right place.
    order_id = f.int("orderId")
    contract = _contract(f)
    f.skip(2, "secIdType/secId")
    action = f.text("action")
    total_qty = f.decimal("totalQuantity")
    order_type = f.text("orderType")
    lmt_price = f.decimal("lmtPrice")
    aux_price = f.decimal("auxPrice")
    tif = f.text("tif")
    f.skip(1, "ocaGroup")
    account = f.text("account")
    f.skip(2, "openClose/origin")
    order_ref = f.text("orderRef")
    transmit = f.bool("transmit")
    parent_id = f.int("parentId", default=0)
    f.skip(4, "blockOrder/sweepToFill/displaySize/triggerMethod")
    outside_rth = f.bool("outsideRth")
    f.skip(1, "hidden")
    has_combo = contract.sec_type == "BAG"
    if has_combo:
        for _ in range(_count(f, "comboLegCount")):
            f.skip(8, "comboLeg")
        for _ in range(_count(f, "orderComboLegCount")):
            f.skip(1, "orderComboLegPrice")
        for _ in range(_count(f, "smartComboRoutingParamCount")):
            f.skip(2, "smartComboRoutingParam")
    f.skip(29, "sharesAllocation..volatilityType")  # fields 36-64
    if f.text("deltaNeutralOrderType"):
        f.skip(1, "deltaNeutralAuxPrice")
        f.skip(8, "deltaNeutral block")
    else:
        f.skip(1, "deltaNeutralAuxPrice")
    f.skip(2, "continuousUpdate/referencePriceType")
    trail_stop_price = f.decimal("trailStopPrice")
    trailing_percent = f.decimal("trailingPercent")
    f.skip(2, "scaleInitLevelSize/scaleSubsLevelSize")
    increment = f.decimal("scalePriceIncrement")
    if increment is not None and increment > 0:
        f.skip(7, "scale block")
    f.skip(3, "scaleTable/activeStartTime/activeStopTime")
    if f.text("hedgeType"):
        f.skip(1, "hedgeParam")
    f.skip(4, "optOutSmartRouting/clearingAccount/clearingIntent/notHeld")
    if f.bool("deltaNeutralContract"):
        f.skip(3, "deltaNeutralContract block")
    if f.text("algoStrategy"):
        for _ in range(_count(f, "algoParamCount")):
            f.skip(2, "algoParam")
    f.skip(1, "algoId")
    what_if = f.bool("whatIf")
    f.skip(4, "orderMiscOptions/solicited/randomizeSize/randomizePrice")
    if order_type.replace(" ", "") == "PEGBENCH":
        f.skip(5, "PEG BENCH block")
    conditions = _count(f, "conditionCount")
    # Conditions have type-dependent lengths; an order with any is refused (unsupported),
    # so the rest of the message need not be walked.
    return PlaceOrder(
        order_id=order_id,
        contract=contract,
        action=action,
        total_qty=total_qty,
        order_type=order_type,
        lmt_price=lmt_price,
        aux_price=aux_price,
        tif=tif,
        account=account,
        order_ref=order_ref,
        transmit=transmit,
        parent_id=parent_id,
        outside_rth=outside_rth,
        trail_stop_price=trail_stop_price,
        trailing_percent=trailing_percent,
        what_if=what_if,
        has_combo_legs=has_combo,
        has_conditions=conditions > 0,
    )


MAX_REPEAT = 1000
"""Upper bound for any count field; a larger count is an out-of-range field, not a loop."""


def _count(f: Fields, name: str) -> int:
    value = f.int(name, default=0)
    if not 0 <= value <= MAX_REPEAT:
        raise FieldError(f.msg_id, f.pos - 1, name, str(value))
    return value


def _versioned(build: Callable[[Fields], ClientMessage]) -> Callable[[Fields], ClientMessage]:
    def read(f: Fields) -> ClientMessage:
        f.skip(1, "version")
        return build(f)

    return read


def _req_mkt_data(f: Fields) -> ReqMktData:
    req_id = f.int("tickerId")
    contract = _contract(f)
    if contract.sec_type == "BAG":
        for _ in range(_count(f, "comboLegCount")):
            f.skip(4, "comboLeg")
    if f.bool("deltaNeutralContract"):
        f.skip(3, "deltaNeutralContract block")
    generic = f.text("genericTickList")
    snapshot = f.bool("snapshot")
    return ReqMktData(req_id, contract, generic, snapshot)


def _req_mkt_depth(f: Fields) -> ReqMktDepth:
    req_id = f.int("tickerId")
    contract = _contract(f)
    num_rows = f.int("numRows")
    smart = f.bool("isSmartDepth")
    if not 0 < num_rows <= 1000:
        raise FieldError(f.msg_id, f.pos - 2, "numRows", str(num_rows))
    return ReqMktDepth(req_id, contract, num_rows, smart)


def _req_contract_details(f: Fields) -> ReqContractDetails:
    return ReqContractDetails(f.int("reqId"), _contract(f))


def _req_executions(f: Fields) -> ReqExecutions:
    return ReqExecutions(
        req_id=f.int("reqId"),
        client_id=f.int("clientId", default=0),
        account=f.text("acctCode"),
        time=f.text("time"),
        symbol=f.text("symbol"),
        sec_type=f.text("secType"),
        exchange=f.text("exchange"),
        side=f.text("side"),
    )


def _req_id_only(
    kind: Callable[[int], ClientMessage], name: str = "reqId"
) -> Callable[[Fields], ClientMessage]:
    def read(f: Fields) -> ClientMessage:
        return kind(f.int(name))

    return read


def _unsupported_with_id(f: Fields) -> ClientMessage:
    return Unsupported(f.msg_id, f.int("reqId"))


def _unsupported_no_id(f: Fields) -> ClientMessage:
    return Unsupported(f.msg_id, None)


def _unversioned_unsupported_with_id(f: Fields) -> ClientMessage:
    return Unsupported(f.msg_id, f.int("reqId"))


_DECODERS: dict[int, Callable[[Fields], ClientMessage]] = {
    1: _versioned(_req_mkt_data),
    2: _versioned(_req_id_only(CancelMktData)),
    3: _place_order,
    4: _versioned(lambda f: CancelOrder(f.int("orderId"))),
    5: _versioned(lambda f: ReqOpenOrders()),
    6: _versioned(lambda f: ReqAccountUpdates(f.bool("subscribe"), f.text("acctCode"))),
    7: _versioned(_req_executions),
    8: _versioned(lambda f: ReqIds(f.int("numIds"))),
    9: _versioned(_req_contract_details),
    10: _versioned(_req_mkt_depth),
    11: _versioned(_req_id_only(CancelMktDepth)),
    15: _versioned(lambda f: ReqAutoOpenOrders(f.bool("bAutoBind"))),
    16: _versioned(lambda f: ReqAllOpenOrders()),
    17: _versioned(lambda f: ReqManagedAccts()),
    49: _versioned(lambda f: ReqCurrentTime()),
    58: _versioned(lambda f: ReqGlobalCancel()),
    59: _versioned(lambda f: ReqMarketDataType(f.int("marketDataType"))),
    61: _versioned(lambda f: ReqPositions()),
    62: _versioned(lambda f: ReqAccountSummary(f.int("reqId"), f.text("groupName"), f.text("tags"))),
    63: _versioned(_req_id_only(CancelAccountSummary)),
    64: _versioned(lambda f: CancelPositions()),
    71: _start_api,
    74: _versioned(lambda f: ReqPositionsMulti(f.int("reqId"), f.text("account"), f.text("modelCode"))),
    75: _versioned(_req_id_only(CancelPositionsMulti)),
    76: _versioned(
        lambda f: ReqAccountUpdatesMulti(f.int("reqId"), f.text("account"), f.text("modelCode"))
    ),
    77: _versioned(_req_id_only(CancelAccountUpdatesMulti)),
    82: lambda f: ReqMktDepthExchanges(),
    99: lambda f: ReqCompletedOrders(f.bool("apiOnly")),
}

# Known TWS requests the venue does not serve. Those carrying a request id get an error for
# that id (so the client's request ends); the rest are acknowledged by silence, as TWS does
# for settings such as setServerLogLevel.
_UNSUPPORTED_VERSIONED_WITH_ID = frozenset({21, 50, 52, 54, 55, 67, 68, 69})
_UNSUPPORTED_UNVERSIONED_WITH_ID = frozenset(
    {20, 22, 78, 79, 81, 83, 84, 86, 87, 88, 92, 94, 96, 97, 100, 102, 104}
)
_UNSUPPORTED_NO_ID = frozenset(
    {12, 13, 14, 18, 19, 23, 24, 25, 51, 53, 56, 57, 65, 66, 70, 72, 73, 80, 85, 89, 90, 93,
     95, 98, 101, 103}
)
# reqHistoricalData (20) and reqScannerSubscription (22) have no version field; cancels of
# historical data / scanners (25, 23) carry one but need no answer.
for _msg_id in _UNSUPPORTED_VERSIONED_WITH_ID:
    _DECODERS[_msg_id] = _versioned(_unsupported_with_id)
for _msg_id in _UNSUPPORTED_UNVERSIONED_WITH_ID:
    _DECODERS[_msg_id] = _unversioned_unsupported_with_id
for _msg_id in _UNSUPPORTED_NO_ID:
    _DECODERS[_msg_id] = _unsupported_no_id

KNOWN_IDS = frozenset(_DECODERS)


def decode(fields: Sequence[str]) -> ClientMessage:
    f = Fields(fields)
    reader = _DECODERS.get(f.msg_id)
    if reader is None:
        raise UnknownMessage(f.msg_id)
    return reader(f)
