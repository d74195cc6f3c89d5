"""Server -> client messages at server version 178 (tws-protocol.md section 6), as frames.

Each function returns one complete frame (bytes) ready to write; sessions concatenate frames
and write a batch at once. Field counts are exact where ib_async tuple-unpacks (tickPrice 7,
position 16, updatePortfolio 20, commissionReport 8) — an extra field would make it drop the
message. Prices are Decimal written without exponent; quantities are ints.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal

from paper.tws.codec import Field, encode_field, encode_frame, frame
from paper.venue.messages import CommissionReport, ContractInfo, Execution, OrderUpdate, Position

SERVER_VERSION = 178
MIN_CLIENT_VERSION = 170
"""Oldest client version whose layouts these encoders produce (see the ``sv`` branches)."""

_LEN = struct.Struct(">I")
UNSET_DOUBLE = "1.7976931348623157E308"
UNSET_INT = 2147483647


def handshake_reply(version: int, connection_time: str) -> bytes:
    return encode_frame((version, connection_time))


def managed_accounts(accounts: Iterable[str]) -> bytes:
    return encode_frame((15, 1, ",".join(accounts)))


def next_valid_id(order_id: int) -> bytes:
    return encode_frame((9, 1, order_id))


def error(req_id: int, code: int, message: str) -> bytes:
    # Kept ASCII: real TWS escapes non-ASCII, and ib_async would not un-escape it here.
    text = message.encode("ascii", "backslashreplace").decode("ascii")
    return encode_frame((4, 2, req_id, code, text, ""))


def current_time(epoch_seconds: int) -> bytes:
    return encode_frame((49, 1, epoch_seconds))


def order_status(u: OrderUpdate) -> bytes:
    """orderStatus (12 fields; on the acknowledgement path, so formatted by hand)."""
    avg = "0" if u.avg_fill_price is None else format(u.avg_fill_price, "f")
    last = "0" if u.last_fill_price is None else format(u.last_fill_price, "f")
    payload = (
        f"3\0{u.order_id}\0{u.status}\0{u.filled}\0{u.remaining}\0{avg}\0{u.perm_id}\0"
        f"0\0{last}\0{u.client_id}\0{u.why_held}\0" + "0.0\0"
    ).encode()
    return _LEN.pack(len(payload)) + payload


def _const(*fields: Field) -> str:
    """A run of constant fields pre-joined, so per-message work is only the variable fields."""
    return "\0".join(encode_field(f) for f in fields)


# openOrder's constant runs (tws-protocol.md 6.3), named by the fields they start at.
_OO_7_9 = _const("0.0", "", "")  # strike right multiplier
_OO_28_34 = _const(0, 0, "", "", "", "", "")  # hidden .. faPercentage
_OO_35_65 = _const(
    "", "", "", "", "",  # modelCode goodTillDate rule80A percentOffset settlingFirm
    0, "", -1, 0,  # shortSaleSlot designatedLocation exemptCode auctionStrategy
    "", "", "", "", "",  # startingPrice stockRefPrice delta stockRangeLower/Upper
    0, 0, 0, 0, "", 0, 0, 0, "",  # displaySize block sweep AON minQty ocaType eTrade firmQuote nbbo
    0, 0,  # parentId triggerMethod
    "", 0, "", "",  # volatility volatilityType deltaNeutralOrderType deltaNeutralAuxPrice
    0, 0,  # continuousUpdate referencePriceType
)  # fmt: skip
_OO_68_85 = _const(
    "", "", "",  # basisPoints basisPointsType comboLegsDescrip
    0, 0, 0,  # comboLegCount orderComboLegCount smartComboRoutingParamCount
    "", "", "",  # scaleInitLevelSize scaleSubsLevelSize scalePriceIncrement
    "",  # hedgeType
    0, "", "", 0,  # optOutSmartRouting clearingAccount clearingIntent notHeld
    0,  # deltaNeutralContract present
    "",  # algoStrategy
    0, 0,  # solicited whatIf
)  # fmt: skip
_OO_87_105 = _const(
    "", "", "", "", "", "", "", "", "",  # margin before/change/after
    "", "", "", "", "",  # commission min max currency warningText
    0, 0,  # randomizeSize randomizePrice
    0,  # conditionCount
    "", "",  # adjustedOrderType triggerPrice
)  # fmt: skip
_OO_107_END = _const(
    "", "", "", "", 0,  # lmtPriceOffset adjustedStop/StopLimit/TrailingAmount adjustableTrailingUnit
    "", "", "",  # softDollarTier
    "",  # cashQty
    0, 0, 0, 0,  # dontUseAutoPriceForHedge isOmsContainer discretionaryUpToLimit usePriceMgmt
    "", "", 0,  # duration postToAts autoCancelParent (>= 158/160/162)
    "", "", "", "", "",  # minTradeQty minCompeteSize competeAgainstBestOffset midOffsets (>= 170)
)  # fmt: skip


def open_order(u: OrderUpdate, contract: ContractInfo, sv: int = SERVER_VERSION) -> bytes:
    """The 127-field openOrder of tws-protocol.md 6.3 (plus faProfile below version 177).

    Only the fields that vary are formatted per message; the constant runs are joined once
    at import (this message is on the order-acknowledgement path).
    """
    o = u.order
    f = encode_field
    trail_stop = f(o.trail_stop_price)
    parts = [
        "5", str(u.order_id), str(contract.con_id), contract.symbol, contract.sec_type, "",
        _OO_7_9, contract.exchange, contract.currency, contract.symbol, contract.symbol,
        o.action, str(o.total_qty), o.order_type, f(o.lmt_price), f(o.aux_price), o.tif, "",
        u.account, "", "0", o.order_ref, str(u.client_id), str(u.perm_id),
        "1" if o.outside_rth else "0", _OO_28_34,
    ]  # fmt: skip
    if sv < 177:
        parts.append("")  # faProfile
    parts += [_OO_35_65, trail_stop, f(o.trailing_percent), _OO_68_85, u.status, _OO_87_105, trail_stop]
    parts.append(_OO_107_END)
    return frame(("\0".join(parts) + "\0").encode())


def what_if_order(
    u: OrderUpdate, contract: ContractInfo, state: Sequence[str], sv: int = SERVER_VERSION
) -> bytes:
    """openOrder answering a what-if: whatIf=1 and ``state`` (fields 87-100: margins,
    commission, min/max commission, currency, warning) in place of the empty order state."""
    fields = open_order(u, contract, sv)[4:-1].decode().split("\0")
    what_if = 84 if sv >= 177 else 85  # faProfile sits before it below 177
    fields[what_if] = "1"
    fields[what_if + 2 : what_if + 2 + len(state)] = state
    return encode_frame(fields)


def open_order_end() -> bytes:
    return encode_frame((53, 1))


def completed_order(u: OrderUpdate, contract: ContractInfo, sv: int = SERVER_VERSION) -> bytes:
    """completedOrder (101): no order id or client id, the order identified by permId and
    orderRef; layout as ib_async 2.1.0 and ibapi decode it at version 178."""
    o = u.order
    fields: list[Field] = [
        101, contract.con_id, contract.symbol, contract.sec_type, "", "0.0", "", "",
        contract.exchange, contract.currency, contract.symbol, contract.symbol,
        o.action, o.total_qty, o.order_type, o.lmt_price, o.aux_price, o.tif, "", u.account,
        "", 0, o.order_ref, u.perm_id, o.outside_rth, 0, 0, "", "", "", "",
    ]  # fmt: skip
    if sv < 177:
        fields.append("")  # faProfile
    fields += [
        "", "", "", "", "",  # modelCode goodTillDate rule80A percentOffset settlingFirm
        0, "", -1,  # shortSaleSlot designatedLocation exemptCode
        "", "", "", "", "",  # startingPrice stockRefPrice delta stockRangeLower/Upper
        0, 0, 0, "", 0, 0,  # displaySize sweepToFill allOrNone minQty ocaType triggerMethod
        "", 0, "", "",  # volatility volatilityType deltaNeutralOrderType/AuxPrice
        0, 0, o.trail_stop_price, o.trailing_percent, "",  # ... comboLegsDescrip
        0, 0, 0,  # combo legs, order combo legs, smart combo routing params
        "", "", "",  # scaleInitLevelSize scaleSubsLevelSize scalePriceIncrement
        "",  # hedgeType
        "", "", 0, 0,  # clearingAccount clearingIntent notHeld deltaNeutralContract
        "",  # algoStrategy
        0, u.status, 0, 0,  # solicited status randomizeSize randomizePrice
        0,  # conditionCount
        o.trail_stop_price, "", "", 0, 0, "", u.filled, 0, 0, "", 0, 0, 0,
        exec_time(u.time_ns), u.status,
    ]  # fmt: skip
    if sv >= 170:
        fields += ["", "", "", "", ""]
    return encode_frame(fields)


def completed_orders_end() -> bytes:
    return encode_frame((102,))


def exec_time(time_ns: int) -> str:
    """``yyyymmdd HH:MM:SS UTC``: explicit zone, so ib_async never guesses local time."""
    return datetime.fromtimestamp(time_ns / 1e9, UTC).strftime("%Y%m%d %H:%M:%S") + " UTC"


def exec_details(
    req_id: int, e: Execution, contract: ContractInfo, sv: int = SERVER_VERSION
) -> bytes:
    fields: list[Field] = [
        11, req_id, e.order_id, contract.con_id, contract.symbol, contract.sec_type, "", "0.0",
        "", "", e.exchange, contract.currency, contract.symbol, contract.symbol,
        e.exec_id, exec_time(e.time_ns), e.account, e.exchange, e.side, e.shares, e.price,
        e.perm_id, e.client_id, 0, e.cum_qty, e.avg_price, e.order_ref, "", "", "",
        e.liquidity,
    ]
    if sv >= 178:
        fields.append(0)  # pendingPriceRevision
    return encode_frame(fields)


def exec_details_end(req_id: int) -> bytes:
    return encode_frame((55, 1, req_id))


def commission_report(r: CommissionReport) -> bytes:
    pnl: Field = r.realized_pnl if r.realized_pnl is not None else UNSET_DOUBLE
    return encode_frame((59, 1, r.exec_id, r.commission, r.currency, pnl, UNSET_DOUBLE, ""))


def position(p: Position, contract: ContractInfo) -> bytes:
    return encode_frame(
        (
            61, 3, p.account, contract.con_id, contract.symbol, contract.sec_type, "", "0.0", "",
            "", contract.primary_exchange, contract.currency, contract.symbol, contract.symbol,
            p.position, p.avg_cost,
        )
    )


def position_end() -> bytes:
    return encode_frame((62, 1))


def update_account_value(key: str, value: str, currency: str, account: str) -> bytes:
    return encode_frame((6, 2, key, value, currency, account))


def update_portfolio(p: Position, contract: ContractInfo) -> bytes:
    return encode_frame(
        (
            7, 8, contract.con_id, contract.symbol, contract.sec_type, "", "0.0", "", "",
            contract.primary_exchange, contract.currency, contract.symbol, contract.symbol,
            p.position, p.market_price, p.market_value, p.avg_cost, p.unrealized_pnl,
            p.realized_pnl, p.account,
        )
    )


def update_account_time(time_ns: int) -> bytes:
    return encode_frame((8, 1, datetime.fromtimestamp(time_ns / 1e9, UTC).strftime("%H:%M")))


def account_download_end(account: str) -> bytes:
    return encode_frame((54, 1, account))


def account_summary(req_id: int, account: str, tag: str, value: str, currency: str) -> bytes:
    return encode_frame((63, 1, req_id, account, tag, value, currency))


def account_summary_end(req_id: int) -> bytes:
    return encode_frame((64, 1, req_id))


def account_update_multi(
    req_id: int, account: str, key: str, value: str, currency: str
) -> bytes:
    return encode_frame((73, 1, req_id, account, "", key, value, currency))


def account_update_multi_end(req_id: int) -> bytes:
    return encode_frame((74, 1, req_id))


def position_multi(req_id: int, p: Position, contract: ContractInfo) -> bytes:
    return encode_frame(
        (
            71, 1, req_id, p.account, contract.con_id, contract.symbol, contract.sec_type, "",
            "0.0", "", "", contract.primary_exchange, contract.currency, contract.symbol,
            contract.symbol, p.position, p.avg_cost, "",
        )
    )


def position_multi_end(req_id: int) -> bytes:
    return encode_frame((72, 1, req_id))


def contract_details(req_id: int, c: ContractInfo) -> bytes:
    """40 fields (no secIds) at version >= 164."""
    return encode_frame(
        (
            10, req_id, c.symbol, c.sec_type, "", "0.0", "", c.exchange, c.currency, c.symbol,
            c.symbol, c.symbol, c.con_id, c.tick_size, "", "ACTIVETIM,LMT,MKT,STP,STPLMT,TRAIL",
            f"{c.exchange},{c.primary_exchange}", 1, 0, c.long_name, c.primary_exchange, "",
            "", "", "", "UTC", "", "", "", "", 0, 1, "", "", "", "", "COMMON",
            c.lot_size, c.lot_size, c.lot_size,
        )
    )


def contract_details_end(req_id: int) -> bytes:
    return encode_frame((52, 1, req_id))


def mkt_depth_exchanges(entries: Iterable[tuple[str, str, str, str, int]]) -> bytes:
    """(exchange, secType, listingExch, serviceDataType, aggGroup) per depth source."""
    rows = list(entries)
    return encode_frame([80, len(rows), *(f for row in rows for f in row)])


def tick_req_params(req_id: int, min_tick: Decimal, bbo_exchange: str) -> bytes:
    return encode_frame((81, req_id, min_tick, bbo_exchange, 3))


def market_data_type(req_id: int, data_type: int) -> bytes:
    return encode_frame((58, 1, req_id, data_type))


# IB tick type ids.
BID_SIZE, BID, ASK, ASK_SIZE, LAST, LAST_SIZE, VOLUME, CLOSE = 0, 1, 2, 3, 4, 5, 8, 9


def tick_price(req_id: int, tick_type: int, price: Decimal | None, size: int) -> bytes:
    """Exactly 7 fields. An empty side is price -1 size 0, as TWS sends it."""
    shown: Field = price if price is not None else "-1.0"
    return encode_frame((1, 6, req_id, tick_type, shown, 0 if price is None else size, 0))


def tick_size(req_id: int, tick_type: int, size: int) -> bytes:
    return encode_frame((2, 6, req_id, tick_type, size))


RT_VOLUME = 48


def tick_string(req_id: int, tick_type: int, value: str) -> bytes:
    return encode_frame((46, 6, req_id, tick_type, value))


def rt_volume(price: Decimal, size: int, epoch_ms: int, volume: int, vwap: Decimal) -> str:
    """TWS's RTVolume value for one trade: ``price;size;epochMillis;totalVolume;vwap;singleTrade``."""
    return f"{price};{size};{epoch_ms};{volume};{vwap};true"


def tick_snapshot_end(req_id: int) -> bytes:
    return encode_frame((57, 1, req_id))


def update_mkt_depth(req_id: int, position: int, operation: int, side: int, price: str, size: int) -> bytes:
    """``price`` is pre-formatted text: the depth path formats each price once per level.

    Hand-formatted (this runs for every row of every depth subscriber): the same bytes as
    ``encode_frame((12, 1, req_id, position, operation, side, price, size))``.
    """
    payload = f"12\x001\x00{req_id}\x00{position}\x00{operation}\x00{side}\x00{price}\x00{size}\x00".encode()
    return _LEN.pack(len(payload)) + payload
