"""Each Schwab account's own positions and cash, from the fills of its own orders.

The paper venue keeps one account, which the TWS gateways' IBKR account is. The emulator's
accounts front it for trading, but what ``GET /trader/v1/accounts/{hash}`` reports is the
account's own: positions and cash made only by the orders placed through this account, valued
at the venue's marks (mid, else last). Commissions are 0 (Schwab's equity trades are
commission-free). Buying power follows Reg T margin: twice the equity less the gross value of
the positions, never below zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

CENT = Decimal("0.01")
PRICE_QUANTUM = Decimal("0.000001")
INITIAL_CASH = Decimal("1000000.00")


@dataclass
class Holding:
    quantity: int = 0
    """Signed: long above zero, short below."""
    average: Decimal = Decimal(0)
    """The average opening price of what is held."""
    realized: Decimal = Decimal(0)


@dataclass
class AccountBook:
    """One Schwab account's cash and holdings."""

    cash: Decimal = INITIAL_CASH
    holdings: dict[str, Holding] = field(default_factory=dict)

    def apply(self, symbol: str, signed_quantity: int, price: Decimal) -> None:
        """One fill: ``signed_quantity`` above zero bought, below zero sold, at ``price``."""
        self.cash -= signed_quantity * price
        holding = self.holdings.setdefault(symbol, Holding())
        before = holding.quantity
        after = before + signed_quantity
        if before == 0 or (before > 0) == (signed_quantity > 0):
            # Opening or adding: the average moves towards this price.
            total = abs(before) * holding.average + abs(signed_quantity) * price
            holding.average = (total / abs(after)).quantize(PRICE_QUANTUM)
        else:
            closed = min(abs(signed_quantity), abs(before))
            direction = 1 if before > 0 else -1
            holding.realized += (price - holding.average) * closed * direction
            if after == 0:
                holding.average = Decimal(0)
            elif (after > 0) != (before > 0):
                holding.average = price  # flipped: what is left opened at this price
        holding.quantity = after

    def market_value(self, marks: dict[str, Decimal]) -> tuple[Decimal, Decimal]:
        """Net and gross value of the holdings at ``marks``."""
        net = gross = Decimal(0)
        for symbol, holding in self.holdings.items():
            value = holding.quantity * marks.get(symbol, holding.average)
            net += value
            gross += abs(value)
        return net, gross

    def balances(self, marks: dict[str, Decimal]) -> dict[str, Decimal]:
        net, gross = self.market_value(marks)
        equity = self.cash + net
        buying_power = max(2 * equity - gross, Decimal(0))
        return {
            "cash": self.cash.quantize(CENT),
            "equity": equity.quantize(CENT),
            "long_value": sum(
                (h.quantity * marks.get(s, h.average) for s, h in self.holdings.items() if h.quantity > 0),
                Decimal(0),
            ).quantize(CENT),
            "short_value": sum(
                (h.quantity * marks.get(s, h.average) for s, h in self.holdings.items() if h.quantity < 0),
                Decimal(0),
            ).quantize(CENT),
            "buying_power": buying_power.quantize(CENT),
        }


def account_json(
    number: str, book: AccountBook, marks: dict[str, Decimal], con_ids: dict[str, int], positions: bool
) -> dict[str, Any]:
    """``GET /trader/v1/accounts/{hash}``'s body (``positions`` with ``fields=positions``)."""
    b = {k: float(v) for k, v in book.balances(marks).items()}
    account: dict[str, Any] = {
        "type": "MARGIN",
        "accountNumber": number,
        "roundTrips": 0,
        "isDayTrader": False,
        "isClosingOnlyRestricted": False,
        "pfcbFlag": False,
        "initialBalances": {
            "liquidationValue": b["equity"], "cashBalance": b["cash"], "buyingPower": b["buying_power"],
            "accountValue": b["equity"],
        },
        "currentBalances": {
            "availableFunds": b["cash"], "buyingPower": b["buying_power"], "equity": b["equity"],
            "liquidationValue": b["equity"], "cashBalance": b["cash"], "longMarketValue": b["long_value"],
            "shortMarketValue": b["short_value"],
        },
        "projectedBalances": {"availableFunds": b["cash"], "buyingPower": b["buying_power"]},
    }  # fmt: skip
    if positions:
        account["positions"] = [
            _position(symbol, h, marks.get(symbol, h.average), con_ids.get(symbol, 0))
            for symbol, h in sorted(book.holdings.items())
            if h.quantity != 0
        ]
    return {
        "securitiesAccount": account,
        "aggregatedBalance": {"currentLiquidationValue": b["equity"], "liquidationValue": b["equity"]},
    }


def _position(symbol: str, h: Holding, mark: Decimal, con_id: int) -> dict[str, Any]:
    long = h.quantity > 0
    unrealized = float((mark - h.average) * h.quantity)
    return {
        "shortQuantity": float(max(-h.quantity, 0)),
        "longQuantity": float(max(h.quantity, 0)),
        "averagePrice": float(h.average),
        "averageLongPrice": float(h.average) if long else 0.0,
        "averageShortPrice": 0.0 if long else float(h.average),
        "marketValue": float(h.quantity * mark),
        "longOpenProfitLoss": unrealized if long else 0.0,
        "shortOpenProfitLoss": 0.0 if long else unrealized,
        "instrument": {"assetType": "EQUITY", "type": "EQUITY", "symbol": symbol, "instrumentId": con_id},
    }
