"""ACCT_ACTIVITY message data, in the shape Schwab's streamer has been seen to send.

Schwab publishes no schema for these: the envelope (``SchwabOrderID``, ``AccountNumber``,
``BaseEvent.EventType``) and the fixed-point numbers (``{"lo": "220470000", "signScale": 12}``
for 220.47: the value times 10^6 as a string) follow captured messages. A client should take
only the order id and the type from them and read the order itself for the rest, as the
emulator's own order object (``GET .../orders/{id}``) is the documented source.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from paper.schwab_api.order_model import Fill, SchwabOrder

SCALE = Decimal(10) ** 6


def fixed(value: Decimal | int) -> dict[str, Any]:
    """Schwab's fixed-point number: ``lo`` = |value| x 10^6; signScale 12, 13 when negative."""
    scaled = int((Decimal(value) * SCALE).to_integral_value())
    if scaled == 0:
        return {"signScale": 12}
    return {"lo": str(abs(scaled)), "signScale": 13 if scaled < 0 else 12}


def _timestamp(time_ns: int) -> dict[str, str]:
    moment = datetime.fromtimestamp(time_ns / 1e9, UTC)
    return {"DateTimeString": moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"}


def _order_info(order: SchwabOrder) -> dict[str, Any]:
    info: dict[str, Any] = {
        "OrderTypeCode": order.echo.get("orderType", "").title().replace("_", ""),
        "BuySellCode": "Buy" if order.spec.action == "BUY" else "Sell",
        "Symbol": order.symbol,
        "Quantity": fixed(order.spec.total_qty),
    }
    if order.spec.lmt_price is not None:
        info["LimitPrice"] = fixed(order.spec.lmt_price)
    if order.spec.aux_price is not None and order.spec.order_type in ("STP", "STP LMT"):
        info["StopPrice"] = fixed(order.spec.aux_price)
    return info


def _execution(fill: Fill, trans_type: str = "Fill") -> dict[str, Any]:
    return {
        "ExecutionId": fill.exec_id,
        "ExecutionQuantity": fixed(fill.quantity),
        "ExecutionPrice": fixed(fill.price),
        "ExecutionTimeStamp": _timestamp(fill.time_ns),
        "ExecutionTransType": trans_type,
    }


def activity_message(order: SchwabOrder, message_type: str, fill: Fill | None = None) -> dict[str, Any]:
    """The data (field ``"3"``, before it is JSON-encoded) of one ACCT_ACTIVITY row."""
    event: dict[str, Any] = {"EventType": message_type}
    message: dict[str, Any] = {
        "SchwabOrderID": str(order.order_id),
        "AccountNumber": order.account_number,
        "BaseEvent": event,
    }
    if message_type == "OrderAccepted":
        event["OrderAcceptedEvent"] = {"LegStatus": "LegOpen", "OrderInfo": _order_info(order)}
    elif message_type == "ExecutionCreated" and fill is not None:
        event["ExecutionCreatedEventExecutionInfo"] = _execution(fill)
    elif message_type == "OrderFillCompleted" and fill is not None:
        cumulative = order.spec.total_qty - fill.remaining
        average = sum((f.price * f.quantity for f in order.fills), Decimal(0)) / max(cumulative, 1)
        event["OrderFillCompletedEventOrderLegQuantityInfo"] = {
            "EventType": message_type,
            "LegId": "1",
            "LegStatus": "LegClosed",
            "QuantityInfo": {
                "ExecutionID": fill.exec_id,
                "CumulativeQuantity": fixed(cumulative),
                "LeavesQuantity": fixed(fill.remaining),
                "AveragePrice": fixed(average.quantize(Decimal("0.000001"))),
            },
            "ExecutionInfo": _execution(fill),
            "OrderInfoForTransactionPosting": _order_info(order),
        }
    elif message_type == "CancelAccepted":
        event["CancelAcceptedEvent"] = {"LegCancelRequestInfoList": [{"LegId": "1", "LegStatus": "LegOpen"}]}
    elif message_type == "OrderUROutCompleted":
        event["OrderUROutCompletedEvent"] = {
            "LegStatus": "LegClosed",
            "CancelQuantity": fixed(order.spec.total_qty - order.filled),
            "LeavesQuantity": fixed(0),
        }
    elif message_type == "ChangeCreated":
        parent = "" if order.parent_id is None else str(order.parent_id)
        message["ParentSchwabOrderID"] = parent
        event["ChangeCreatedEventEquityOrder"] = {
            "ParentSchwabOrderID": parent,
            "OrderInfo": _order_info(order),
        }
    elif message_type == "OrderRejected":
        event["OrderRejectedEvent"] = {"RejectReason": order.description or "Rejected"}
    return message
