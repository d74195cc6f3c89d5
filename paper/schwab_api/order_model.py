"""A Schwab order as the emulator keeps it, and the ``Order`` object ``GET .../orders/{id}``
returns for it."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from paper.schwab_api.orders import account_number_json, schwab_time
from paper.venue.messages import OrderSpec

OPEN_STATUSES = frozenset({"PENDING_ACKNOWLEDGEMENT", "WORKING", "PENDING_CANCEL", "PENDING_REPLACE"})
REF_PREFIX = "schwab"


@dataclass(slots=True)
class Fill:
    exec_id: str
    quantity: int
    price: Decimal
    time_ns: int
    remaining: int


@dataclass
class SchwabOrder:
    order_id: int
    account_number: str
    symbol: str
    con_id: int
    instruction: str
    spec: OrderSpec
    echo: dict[str, Any]
    entered: float
    parent_id: int | None = None
    status: str = "PENDING_ACKNOWLEDGEMENT"
    filled: int = 0
    fills: list[Fill] = field(default_factory=list)
    closed: float | None = None
    description: str = ""
    replaced_by: int | None = None
    cancel_requested: bool = False
    replacing: bool = False
    accepted_sent: bool = False

    @property
    def remaining(self) -> int:
        return (
            0
            if self.status in ("CANCELED", "REPLACED", "REJECTED", "EXPIRED")
            else max(self.spec.total_qty - self.filled, 0)
        )

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def order_ref(self) -> str:
        parent = "" if self.parent_id is None else str(self.parent_id)
        return f"{REF_PREFIX}|{self.account_number}|{self.instruction}|{parent}|{self.entered:.3f}"

    def to_json(self, successor: SchwabOrder | None = None) -> dict[str, Any]:
        """The ``Order`` object of ``GET .../orders/{id}``."""
        body: dict[str, Any] = {**self.echo}
        body.update(
            quantity=self.spec.total_qty,
            filledQuantity=self.filled,
            remainingQuantity=self.remaining,
            requestedDestination="AUTO",
            destinationLinkName="PAPR",
            orderLegCollection=[
                {
                    "orderLegType": "EQUITY",
                    "legId": 1,
                    "instrument": {"assetType": "EQUITY", "symbol": self.symbol, "instrumentId": self.con_id},
                    "instruction": self.instruction,
                    "positionEffect": "CLOSING"
                    if self.instruction in ("SELL", "BUY_TO_COVER")
                    else "OPENING",
                    "quantity": self.spec.total_qty,
                }
            ],
            orderId=self.order_id,
            cancelable=self.is_open,
            editable=self.is_open,
            status=self.status,
            enteredTime=schwab_time(self.entered),
            tag="API_PAPER",
            accountNumber=account_number_json(self.account_number),
        )
        if self.closed is not None:
            body["closeTime"] = schwab_time(self.closed)
        if self.description:
            body["statusDescription"] = self.description
        if self.fills:
            body["orderActivityCollection"] = [
                {
                    "activityType": "EXECUTION",
                    "executionType": "FILL",
                    "quantity": f.quantity,
                    "orderRemainingQuantity": f.remaining,
                    "executionLegs": [
                        {
                            "legId": 1,
                            "price": float(f.price),
                            "quantity": f.quantity,
                            "mismarkedQuantity": 0,
                            "instrumentId": self.con_id,
                            "time": schwab_time(f.time_ns / 1e9),
                        }
                    ],
                }
                for f in self.fills
            ]
        if successor is not None:
            body["replacingOrderCollection"] = [successor.to_json()]
        return body
