"""The venue's state as the messages gateways read: an order, a position, the account
values, a symbol's quote and its depth, and the executions a filter selects.

Pure functions of the state they are given and the market time ``now_ns``; prices leave the
tick grid here, as ``Decimal``.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal

from paper.venue.account import PNL_QUANTUM, Account
from paper.venue.messages import (
    ASK,
    BID,
    AccountSnapshot,
    AccountValue,
    DepthSnapshot,
    ExecutionFilter,
    ExecutionReport,
    Level,
    OrderUpdate,
    Position,
    Tick,
)
from paper.venue.state import SymbolState, WorkingOrder


def average_price(value: Decimal, qty: int) -> Decimal:
    """``value / qty``, cut to 8 decimals only when the division does not end sooner."""
    avg = value / qty
    exponent = avg.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -8:
        avg = avg.quantize(PNL_QUANTUM)
    return avg


def order_update(wo: WorkingOrder, now_ns: int) -> OrderUpdate:
    s = wo.sym
    return OrderUpdate(
        account=wo.account,
        client_id=wo.client_id,
        order_id=wo.order_id,
        perm_id=wo.perm_id,
        symbol=s.symbol,
        con_id=s.contract.con_id,
        order=wo.spec,
        status=wo.status,
        filled=wo.filled,
        remaining=wo.remaining,
        avg_fill_price=average_price(wo.cum_value * s.tick, wo.filled) if wo.filled else None,
        last_fill_price=s.px(wo.last_fill) if wo.last_fill is not None else None,
        time_ns=now_ns,
    )


def position(s: SymbolState, account: Account) -> Position:
    state = account.positions.get(s.symbol)
    mark = s.mark()
    qty = state.qty if state else 0
    return Position(
        account=account.account_id,
        symbol=s.symbol,
        con_id=s.contract.con_id,
        position=qty,
        avg_cost=state.avg_cost() if state else Decimal(0),
        market_price=mark,
        market_value=qty * mark,
        unrealized_pnl=state.unrealized(mark) if state and qty else Decimal(0),
        realized_pnl=state.realized if state else Decimal(0),
    )


def account_snapshot(account: Account, marks: dict[str, Decimal], now_ns: int) -> AccountSnapshot:
    currency = "USD"
    values = tuple(
        AccountValue(key, str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)), currency)
        for key, value in account.values(marks)
    )
    return AccountSnapshot(account.account_id, values, now_ns)


def tick(s: SymbolState, now_ns: int) -> Tick:
    book = s.book
    bid, ask = book.best_bid(), book.best_ask()
    return Tick(
        symbol=s.symbol,
        bid=s.px(bid) if bid is not None else None,
        ask=s.px(ask) if ask is not None else None,
        last=s.px(s.last) if s.last is not None else None,
        bid_size=book.size_at(BID, bid) if bid is not None else 0,
        ask_size=book.size_at(ASK, ask) if ask is not None else 0,
        last_size=s.last_size,
        volume=s.volume,
        close=s.px(s.close),
        time_ns=now_ns,
    )


def depth_snapshot(s: SymbolState, now_ns: int) -> DepthSnapshot:
    book = s.book
    return DepthSnapshot(
        symbol=s.symbol,
        seq=book.seq,
        bids=tuple(Level(s.px(p), q) for p, q in book.ladder(BID)),
        asks=tuple(Level(s.px(p), q) for p, q in book.ladder(ASK)),
        time_ns=now_ns,
    )


def executions_matching(
    reports: Iterable[ExecutionReport], f: ExecutionFilter
) -> tuple[ExecutionReport, ...]:
    side = {"BUY": "BOT", "SELL": "SLD"}.get(f.side.upper(), f.side.upper())
    symbol = f.symbol.upper()
    return tuple(
        r
        for r in reports
        if (f.client_id is None or r.execution.client_id == f.client_id)
        and (not f.account or r.execution.account == f.account)
        and (f.since_ns is None or r.execution.time_ns >= f.since_ns)
        and (not symbol or r.execution.symbol == symbol)
        and (not side or r.execution.side == side)
    )
