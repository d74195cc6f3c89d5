"""A Schwab account's JSON from the paper venue's account of the same number.

Each Schwab account is a venue sub-account (``python -m paper.venue --sub-accounts``, which
`floor up` passes): it trades the same books as the TWS gateways' account, but its cash,
positions and values are its own and it pays no commission, as at Schwab. What
``GET /trader/v1/accounts/{hash}`` reports is the venue's view of it: positions at the venue's
marks, net liquidation, cash and buying power.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from paper.venue.messages import AccountSnapshot, Position


def _number(text: str) -> Decimal:
    try:
        return Decimal(text)
    except ArithmeticError:
        return Decimal(0)


def account_json(
    number: str, snapshot: AccountSnapshot, positions: tuple[Position, ...] | None
) -> dict[str, Any]:
    """``GET /trader/v1/accounts/{hash}``'s body; ``positions`` only with ``fields=positions``."""
    values = {v.key: float(_number(v.value)) for v in snapshot.values}
    equity = values.get("NetLiquidation", 0.0)
    cash = values.get("TotalCashValue", 0.0)
    buying_power = values.get("BuyingPower", 0.0)
    available = values.get("AvailableFunds", 0.0)
    account: dict[str, Any] = {
        "type": "MARGIN",
        "accountNumber": number,
        "roundTrips": 0,
        "isDayTrader": False,
        "isClosingOnlyRestricted": False,
        "pfcbFlag": False,
        "initialBalances": {
            "liquidationValue": equity, "cashBalance": cash, "buyingPower": buying_power,
            "accountValue": equity,
        },
        "currentBalances": {
            "availableFunds": available, "buyingPower": buying_power, "equity": equity,
            "liquidationValue": equity, "cashBalance": cash,
            "longMarketValue": sum(float(p.market_value) for p in positions or () if p.position > 0),
            "shortMarketValue": sum(float(p.market_value) for p in positions or () if p.position < 0),
        },
        "projectedBalances": {"availableFunds": available, "buyingPower": buying_power},
    }  # fmt: skip
    if positions is not None:
        account["positions"] = [_position(p) for p in positions if p.position != 0]
    return {
        "securitiesAccount": account,
        "aggregatedBalance": {"currentLiquidationValue": equity, "liquidationValue": equity},
    }


def _position(p: Position) -> dict[str, Any]:
    long = p.position > 0
    unrealized = float(p.unrealized_pnl)
    return {
        "shortQuantity": float(max(-p.position, 0)),
        "longQuantity": float(max(p.position, 0)),
        "averagePrice": float(p.avg_cost),
        "averageLongPrice": float(p.avg_cost) if long else 0.0,
        "averageShortPrice": 0.0 if long else float(p.avg_cost),
        "marketValue": float(p.market_value),
        "longOpenProfitLoss": unrealized if long else 0.0,
        "shortOpenProfitLoss": 0.0 if long else unrealized,
        "instrument": {"assetType": "EQUITY", "type": "EQUITY", "symbol": p.symbol, "instrumentId": p.con_id},
    }
