"""The paper-loop audit, fed hand-made ledger and venue records."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from itertools import count
from typing import Any

import pytest

from tests.factories import enter_command, exit_command, manual_enter_command, risk_profile
from trading.commands import Command, OrderType, Side
from trading.fill_prices import FillRange
from trading.paper_loop_audit import (
    CLOSED,
    DOLLAR_RISK_OVER,
    KELLY_MISMATCH,
    NO_PROFILE,
    OPEN,
    REALIZED_LOSS_OVER,
    TRADE_SIZE_OVER,
    UNFILLED,
    VENUE_QUANTITY_DIFFERS,
    AuditInput,
    LedgeredOrder,
    ProfileChange,
    VenueExecution,
    VenueOrder,
    audit,
)
from trading.paper_loop_summary import percentile
from trading.sizing import BINDING_KELLY, BINDING_MAX_DOLLAR_RISK, BINDING_MAX_TRADE_SIZE, size_order

ACCOUNT = "DU100"
PROFILE = risk_profile(max_trade_size=Decimal("20000"), max_dollar_risk=Decimal("500"))
BANKROLL = Decimal("100000")


class Book:
    """Ledger entries and venue executions written the way the floor and the venue write them."""

    def __init__(self) -> None:
        self.seq = count(1)
        self.exec_ids = count(1)
        self.orders: list[LedgeredOrder] = []
        self.profiles: list[ProfileChange] = [ProfileChange(next(self.seq), ACCOUNT, PROFILE)]
        self.executions: list[VenueExecution] = []
        self.venue_orders: list[VenueOrder] = []

    def sized(self, command: Command, touch: Decimal, quantity: int | None = None) -> int:
        """Ledger ``command`` as the hot path does: sized at ``touch`` with the profile in force
        (or with ``quantity`` when a test wants a wrong size). Returns the quantity ledgered."""
        assert command.edge is not None and command.side is not None
        profile = self.profiles[-1].profile
        size = size_order(
            profile, bankroll=BANKROLL, side=command.side, entry_price=touch,
            stop_price=command.edge.stop_price, p=command.edge.p, b=command.edge.b,
            max_quantity=command.quantity,
        )  # fmt: skip
        sent = size.quantity if quantity is None else quantity
        detail = {"entry_price": str(touch), "bankroll": str(BANKROLL), "binding": size.binding,
                  "kelly_f": str(size.f_star), "quantity": sent}  # fmt: skip
        self.ledger(command, detail)
        return sent

    def ledger(self, command: Command, detail: dict[str, Any]) -> None:
        submitted = command.issued_at + timedelta(milliseconds=3)
        self.orders.append(LedgeredOrder(next(self.seq), command, detail, submitted_at=submitted))

    def fill(self, command: Command, *prints: tuple[int, str], sent: int | None = None) -> None:
        """The venue's order (for ``sent`` shares, else what was ledgered) and its executions."""
        ledgered = next(
            o.detail["quantity"] for o in self.orders if o.command.command_id == command.command_id
        )
        filled = sum(shares for shares, _ in prints)
        total = ledgered if sent is None else sent
        status = "Filled" if filled == total else "Submitted"
        perm_id = 1000 + len(self.venue_orders)
        self.venue_orders.append(VenueOrder(command.command_id, perm_id, total, filled, status))
        for shares, price in prints:
            self.executions.append(
                VenueExecution(f"e{next(self.exec_ids)}", command.command_id, shares, Decimal(price))
            )

    def records(self) -> AuditInput:
        return AuditInput(self.orders, self.profiles, self.executions, self.venue_orders)


def round_trip(book: Book, *, entry: str, exit: str, p: str = "0.55", stop: str = "95") -> Command:
    command = enter_command("alpha", account=ACCOUNT, limit=Decimal(entry), p=Decimal(p), stop=Decimal(stop))
    sent = book.sized(command, Decimal(entry))
    book.fill(command, (sent, entry))
    out = exit_command("alpha", account=ACCOUNT, side=Side.SELL, quantity=sent, order_type=OrderType.MKT)
    book.ledger(out, {"quantity": sent})
    book.fill(out, (sent, exit))
    return command


def test_a_clean_set_passes() -> None:
    book = Book()
    for entry, exit in (("100", "101"), ("100", "99"), ("100.50", "100.50")):
        round_trip(book, entry=entry, exit=exit)

    result = audit(book.records())

    assert result.ok, result.violations
    assert [t.outcome for t in result.trades] == [CLOSED] * 3
    assert result.summary.outcomes == {CLOSED: 3}
    assert result.summary.latency_ms["p50"] == pytest.approx(3.0)
    for trade in result.trades:
        assert trade.kelly_quantity == trade.quantity_sent
        assert trade.dollar_risk <= PROFILE.max_dollar_risk
        assert trade.notional <= PROFILE.max_trade_size
    # Max Dollar Risk 500 over a 5-dollar stop allows 100 shares; Kelly asks for more.
    first = result.trades[0]
    assert (first.quantity_sent, first.binding) == (100, BINDING_MAX_DOLLAR_RISK)
    assert first.realized_pnl == Decimal(100)
    assert result.summary.pnl == Decimal(100) - Decimal(100) + Decimal(0)


def test_one_violating_trade_is_named() -> None:
    book = Book()
    round_trip(book, entry="100", exit="101")
    # Sized right at a touch of 100, but the venue filled it at 103: 100 shares x (103 - 95).
    bad = enter_command("alpha", account=ACCOUNT, limit=Decimal("100"), stop=Decimal("95"))
    sent = book.sized(bad, Decimal("100"))
    book.fill(bad, (60, "100"), (sent - 60, "107.50"))
    round_trip(book, entry="100", exit="99.50")

    result = audit(book.records())

    assert not result.ok
    assert {v.command_id for v in result.violations} == {bad.command_id}
    assert [v.rule for v in result.violations] == [DOLLAR_RISK_OVER]
    assert "Max Dollar Risk $500" in str(result.violations[0])
    trade = next(t for t in result.trades if t.command_id == bad.command_id)
    assert trade.avg_fill == Decimal("103")
    assert trade.dollar_risk == Decimal(800)
    assert trade.outcome == OPEN
    assert result.summary.violations == {DOLLAR_RISK_OVER: 1}


def test_an_oversized_manual_order_and_a_large_realized_loss_are_named() -> None:
    book = Book()
    big = manual_enter_command("alpha", quantity=300, limit=Decimal("100"), stop_loss=Decimal("99"))
    book.ledger(big, {"quantity": 300, "entry_price": "100", "sizing": "manual"})
    book.fill(big, (300, "100"))
    out = exit_command("alpha", account=ACCOUNT, side=Side.SELL, quantity=300, order_type=OrderType.MKT)
    book.ledger(out, {"quantity": 300})
    book.fill(out, (300, "97"))

    result = audit(book.records())

    rules = sorted(v.rule for v in result.violations)
    assert rules == sorted([TRADE_SIZE_OVER, REALIZED_LOSS_OVER])
    assert result.trades[0].realized_loss == Decimal(900)
    assert result.trades[0].kelly_quantity is None


def test_a_quantity_the_sizer_would_not_give_is_named() -> None:
    book = Book()
    command = enter_command("alpha", account=ACCOUNT, limit=Decimal("100"), stop=Decimal("95"))
    book.sized(command, Decimal("100"), quantity=101)
    book.fill(command, (101, "99.50"))  # within every limit: only the size is wrong

    [violation] = audit(book.records()).violations

    assert violation.command_id == command.command_id
    assert violation.rule == KELLY_MISMATCH
    assert "the sizer gives 100" in violation.detail


def test_an_order_the_venue_holds_for_another_quantity_is_named() -> None:
    book = Book()
    round_trip(book, entry="100", exit="101")
    command = enter_command("alpha", account=ACCOUNT, limit=Decimal("100"), stop=Decimal("95"), quantity=10)
    book.sized(command, Decimal("100"))
    book.fill(command, (10, "100"), sent=12)

    [violation] = audit(book.records()).violations

    assert (violation.command_id, violation.rule) == (command.command_id, VENUE_QUANTITY_DIFFERS)
    assert "for 12 shares, the ledger's for 10" in violation.detail


def test_the_profile_in_force_when_ledgered_is_the_one_held() -> None:
    book = Book()
    book.orders.append(LedgeredOrder(0, enter_command("alpha", account="DU999"), {"quantity": 1}))
    first = round_trip(book, entry="100", exit="101")
    tighter = risk_profile(max_trade_size=Decimal("20000"), max_dollar_risk=Decimal("50"))
    book.profiles.append(ProfileChange(next(book.seq), ACCOUNT, tighter))
    second = round_trip(book, entry="100", exit="101")

    result = audit(book.records())

    by_id = {t.command_id: t for t in result.trades}
    assert by_id[first.command_id].quantity_sent == 100
    assert by_id[second.command_id].quantity_sent == 10
    assert by_id[second.command_id].max_dollar_risk == Decimal(50)
    assert [v.rule for v in result.violations] == [NO_PROFILE]
    assert by_id[result.violations[0].command_id].outcome == UNFILLED


@pytest.mark.parametrize(
    ("p", "stop", "touch", "binding"),
    [
        ("0.45", "97", "100", BINDING_KELLY),  # f* 1/12 x 100,000 = $8,333: 83 shares
        ("0.9", "98.50", "100", BINDING_MAX_TRADE_SIZE),  # Kelly $83,333 > $20,000: 200 shares
        ("0.9", "90", "100", BINDING_MAX_DOLLAR_RISK),  # 500 / 10 = 50 shares
    ],
)
def test_the_kelly_recomputation_agrees_with_the_sizer(p: str, stop: str, touch: str, binding: str) -> None:
    book = Book()
    command = enter_command("alpha", account=ACCOUNT, limit=Decimal(touch), p=Decimal(p), stop=Decimal(stop))
    low = Decimal(touch) - 1
    expected = size_order(
        PROFILE, bankroll=BANKROLL, side=Side.BUY, entry_price=FillRange(low, Decimal(touch)),
        stop_price=Decimal(stop), p=Decimal(p), b=Decimal("1.5"),
    )  # fmt: skip
    book.ledger(command, {"entry_price": touch, "lowest_fill_price": str(low), "bankroll": str(BANKROLL),
                          "quantity": expected.quantity})  # fmt: skip

    result = audit(book.records())

    assert result.ok, result.violations
    [trade] = result.trades

    assert (trade.kelly_quantity, trade.binding) == (expected.quantity, expected.binding)
    assert trade.binding == binding
    assert expected.quantity > 0


def test_sell_trades_count_risk_and_pnl_from_the_other_side() -> None:
    book = Book()
    short = enter_command("alpha", account=ACCOUNT, side=Side.SELL, limit=Decimal("100"), stop=Decimal("104"))
    sent = book.sized(short, Decimal("100"))
    book.fill(short, (sent, "100.10"))
    cover = exit_command("alpha", account=ACCOUNT, side=Side.BUY, quantity=sent, order_type=OrderType.MKT)
    book.ledger(cover, {"quantity": sent})
    book.fill(cover, (sent, "99"))

    result = audit(book.records())

    [trade] = result.trades
    assert result.ok
    assert trade.dollar_risk == (Decimal(104) - Decimal("100.10")) * sent
    assert trade.realized_pnl == Decimal("1.10") * sent
    assert trade.slippage == Decimal("-0.10")  # sold 10 cents better than the touch


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert [percentile(values, p) for p in (50, 90, 99)] == [50.0, 90.0, 99.0]
    assert percentile([7.0], 99) == 7.0


def test_money_stays_exact_where_an_average_does_not_terminate() -> None:
    book = Book()
    command = enter_command("alpha", account=ACCOUNT, limit=Decimal("100.01"), stop=Decimal("95"), quantity=3)
    book.sized(command, Decimal("100.01"))
    book.fill(command, (1, "100.00"), (2, "100.01"))
    out = exit_command("alpha", account=ACCOUNT, side=Side.SELL, quantity=3, order_type=OrderType.MKT)
    book.ledger(out, {"quantity": 3})
    book.fill(out, (1, "101"), (1, "101.01"), (1, "101.02"))

    result = audit(book.records())

    [trade] = result.trades
    assert trade.notional == Decimal("300.02")
    assert trade.dollar_risk == Decimal("15.02")  # 300.02 - 3 x 95
    assert trade.avg_fill == Decimal("100.006667")  # shown rounded; every check used the exact sum
    assert trade.realized_pnl == Decimal("3.01")  # 303.03 - 300.02
    assert trade.slippage_dollars == Decimal("-0.01")  # 300.02 against 3 x the touch of 100.01
    assert str(result.summary.pnl) == "3.01"
    assert str(result.summary.mean_slippage) == "-0.0033"


def test_the_floors_protective_stop_and_its_replacement_close_the_trade_they_protect() -> None:
    book = Book()
    entry = enter_command("alpha", account=ACCOUNT, limit=Decimal("100"), stop=Decimal("95"))
    sent = book.sized(entry, Decimal("100"))
    book.fill(entry, (sent, "100"))
    # Signed by the floor's control key, not the agent's: ids name the entry they protect.
    stop = exit_command(
        "floor-control", account=ACCOUNT, side=Side.SELL, quantity=30, order_type=OrderType.STP,
        stop_price=Decimal("96"), command_id=f"{entry.command_id}.stop-1a2b3c4d",
    )  # fmt: skip
    book.ledger(stop, {"quantity": 30})
    book.fill(stop, (30, "96"))
    again = exit_command(
        "floor-control", account=ACCOUNT, side=Side.SELL, quantity=sent - 30, order_type=OrderType.STP,
        stop_price=Decimal("95.50"), command_id=f"{stop.command_id}.restop1",
    )  # fmt: skip
    book.ledger(again, {"quantity": sent - 30})
    book.fill(again, (sent - 30, "95.50"))

    result = audit(book.records())

    assert result.ok, result.violations
    [trade] = result.trades
    assert trade.outcome == CLOSED
    assert trade.realized_pnl == 30 * Decimal(-4) + (sent - 30) * Decimal("-4.50")
