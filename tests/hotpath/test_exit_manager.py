"""Exit Manager: trailing stops move the working stop order in place, never backwards."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from decimal import Decimal

import asyncpg

from brokers.base import UnknownOrderRef
from hotpath.exit_manager import ExitManager, StopMoved, TrailLevel
from hotpath.ledger_store import LedgerStore
from tests.factories import Agent, enter_command
from tests.hotpath.conftest import MAIN_PROFILE, VENUE_ACCOUNT
from tests.hotpath.in_process import in_process_intake
from tests.hotpath.test_refusal_walk import TakesOrders
from trading.commands import OrderType, Side
from trading.trailing_pacing import ModifyBudget


class Venue:
    """Records modifies the way the broker's ``modify`` would receive them."""

    def __init__(self) -> None:
        self.modifies: list[tuple[str, Decimal]] = []
        self.gone: set[str] = set()
        self.stop_limits: list[tuple[str, Decimal, Decimal]] = []

    def modify(self, order_ref: str, stop: Decimal) -> int:
        if order_ref in self.gone:
            raise UnknownOrderRef(order_ref)
        self.modifies.append((order_ref, stop))
        return 42

    def modify_stop_limit(self, order_ref: str, stop: Decimal, limit: Decimal) -> int:
        self.stop_limits.append((order_ref, stop, limit))
        return self.modify(order_ref, stop)


def test_a_sell_stop_trails_up_behind_the_price_and_never_down() -> None:
    venue = Venue()
    moves: list[StopMoved] = []
    exits = ExitManager(venue.modify, moves.append)
    start = exits.initial_stop(Side.SELL, Decimal("100.00"), trail_amount=Decimal("0.50"), trail_percent=None)
    assert start == Decimal("99.50")
    exits.track("c1", "AAPL", Side.SELL, start, trail_amount=Decimal("0.50"), trail_percent=None)

    assert exits.on_price("AAPL", Decimal("100.004"), 1) == []  # less than a tick better
    [move] = exits.on_price("AAPL", Decimal("101.237"), 7)
    assert (move.old_stop, move.new_stop, move.tick_recv_ns, move.modify_write_ns) == (
        Decimal("99.50"),
        Decimal("100.73"),
        7,
        42,
    )
    assert exits.on_price("AAPL", Decimal("100.00"), 8) == []  # the price falls: the stop stays
    assert venue.modifies == [("c1", Decimal("100.73"))] and moves == [move]
    assert exits.stop_of("AAPL", "c1") == Decimal("100.73")


def test_a_buy_stop_protecting_a_short_trails_down_with_a_percentage() -> None:
    venue = Venue()
    exits = ExitManager(venue.modify)
    start = exits.initial_stop(Side.BUY, Decimal("200"), trail_amount=None, trail_percent=Decimal("1"))
    assert start == Decimal("202.00")
    exits.track("c2", "MSFT", Side.BUY, start, trail_amount=None, trail_percent=Decimal("1"))
    [move] = exits.on_price("MSFT", Decimal("190"), 1)
    assert move.new_stop == Decimal("191.90")
    assert exits.on_price("AAPL", Decimal("1"), 1) == []  # other symbols leave it alone


def test_a_stop_the_broker_no_longer_knows_is_dropped() -> None:
    venue = Venue()
    exits = ExitManager(venue.modify)
    exits.track("c3", "AAPL", Side.SELL, Decimal("99"), trail_amount=Decimal("1"), trail_percent=None)
    venue.gone.add("c3")
    assert exits.on_price("AAPL", Decimal("150"), 1) == []
    assert exits.stop_of("AAPL", "c3") is None


def test_forgetting_a_done_order_stops_its_trailing() -> None:
    venue = Venue()
    exits = ExitManager(venue.modify)
    exits.track("c4", "AAPL", Side.SELL, Decimal("99"), trail_amount=Decimal("1"), trail_percent=None)
    exits.forget("AAPL", "c4")
    assert exits.on_price("AAPL", Decimal("150"), 1) == [] and venue.modifies == []


async def test_an_entry_trail_through_intake_moves_its_stop_no_further_than_its_sizing_allows(
    agent: Agent, ledger_pool: asyncpg.Pool, risk_profiles: None
) -> None:
    """A SELL entry trailing 1 below the bid (189.40), its edge's stop at 190.40, is sized at its
    stop and sent as a STP LMT there (its protective limit 5 bps below: 188.30). The price
    rallies to 200: an unbounded stop would follow to 199 and open the short at a notional far
    past Max Trade Size, through its protective stop. The limit moves with the stop."""
    broker, venue = TakesOrders(), Venue()
    intake = in_process_intake(LedgerStore(ledger_pool), broker, [])
    intake.exits = ExitManager(venue.modify, modify_stop_limit=venue.modify_stop_limit)
    await intake.warm()
    command = dataclasses.replace(
        enter_command(agent.agent_id, account=VENUE_ACCOUNT, side=Side.SELL, stop=Decimal("190.40")),
        order_type=OrderType.TRAIL, limit_price=None, trail_amount=Decimal("1"),
    )  # fmt: skip
    assert (await intake.handle(agent.sign(command).to_wire(), source="test")).reason is None
    [order] = broker.placed
    assert (order.order_type, order.stop_price, order.limit_price) == (
        OrderType.STP_LMT, Decimal("188.40"), Decimal("188.30")
    )  # fmt: skip

    intake.exits.on_price("AAPL", Decimal("200"), 1)
    [(ref, stop)] = venue.modifies
    assert ref == command.command_id
    assert order.quantity * stop <= MAIN_PROFILE.max_trade_size < order.quantity * (stop + Decimal("0.01"))
    assert stop < Decimal("190.40")
    assert venue.stop_limits == [(ref, stop, stop - Decimal("0.10"))]  # the limit kept its distance
    assert intake.exits.on_price("AAPL", Decimal("210"), 2) == []  # at its bound it stays


def test_every_level_a_stop_takes_is_handed_over_for_persisting_after_the_broker_write() -> None:
    venue = Venue()
    levels: list[TrailLevel] = []

    def persist(level: TrailLevel) -> None:
        # Handed over only once the broker has the level.
        assert level.moves == 0 or venue.modifies[-1] == (level.command_id, level.trailing.stop)
        levels.append(level)

    exits = ExitManager(venue.modify, persist=persist)
    exits.track("c5", "AAPL", Side.SELL, Decimal("99.00"), trail_amount=Decimal("1"), trail_percent=None)
    exits.on_price("AAPL", Decimal("101.50"), 1)
    exits.on_price("AAPL", Decimal("100.10"), 2)  # falls: no new level, but not the best price
    exits.on_price("AAPL", Decimal("102.20"), 3)

    assert [(lv.trailing.stop, lv.best_price, lv.moves) for lv in levels] == [
        (Decimal("99.00"), None, 0),
        (Decimal("100.50"), Decimal("101.50"), 1),
        (Decimal("101.20"), Decimal("102.20"), 2),
    ]
    assert {(lv.command_id, lv.symbol, lv.order_side) for lv in levels} == {("c5", "AAPL", Side.SELL)}


def test_a_resumed_stop_carries_on_with_its_best_price_and_move_count() -> None:
    venue = Venue()
    levels: list[TrailLevel] = []
    exits = ExitManager(venue.modify, persist=levels.append)
    exits.track("c6", "MSFT", Side.BUY, Decimal("201.50"), trail_amount=Decimal("2"), trail_percent=None)
    exits.resumed("MSFT", "c6", best_price=Decimal("199.50"), moves=4)
    assert exits.tracking("c6")
    assert exits.on_price("MSFT", Decimal("199.90"), 1) == []  # worse than the best seen: the stop stays
    [move] = exits.on_price("MSFT", Decimal("198.00"), 2)
    assert (move.old_stop, move.new_stop) == (Decimal("201.50"), Decimal("200.00"))
    assert (levels[-1].best_price, levels[-1].moves) == (Decimal("198.00"), 5)


class Clock:
    """A hand-moved ``perf_counter_ns`` and ``loop.call_later`` for the pacing tests."""

    def __init__(self) -> None:
        self.now = 0
        self.due: list[tuple[float, Callable[[], object]]] = []

    def __call__(self) -> int:
        return self.now

    def schedule(self, delay_s: float, callback: Callable[[], object]) -> None:
        self.due.append((delay_s, callback))

    def run_due(self) -> None:
        """Move the clock to the first scheduled callback and run it."""
        delay, callback = self.due.pop(0)
        self.now += int(delay * 1e9)
        callback()


def test_a_trailing_stop_follows_a_scripted_path_to_the_rules_level() -> None:
    """Up, a dip, a higher high, a fall short of the stop: the stop ends one trail (rounded
    down to the tick) below the best price, every write a level the rule allows."""
    venue = Venue()
    exits = ExitManager(venue.modify)
    trail = Decimal("0.75")
    start = exits.initial_stop(Side.SELL, Decimal("100.00"), trail_amount=trail, trail_percent=None)
    exits.track("p1", "AAPL", Side.SELL, start, trail_amount=trail, trail_percent=None)
    path = ["100.20", "100.95", "100.40", "101.337", "101.10", "102.004", "101.50", "101.30"]
    for n, price in enumerate(path):
        exits.on_price("AAPL", Decimal(price), n)
    best = max(Decimal(p) for p in path)
    rule = ((best - trail) / Decimal("0.01")).to_integral_value(rounding="ROUND_FLOOR") * Decimal("0.01")
    assert rule == Decimal("101.25")
    assert exits.stop_of("AAPL", "p1") == rule == venue.modifies[-1][1]
    levels = [stop for _, stop in venue.modifies]
    assert levels == sorted(levels) and len(set(levels)) == len(levels)


def test_over_budget_the_newest_level_of_each_stop_waits_and_the_nearest_goes_first() -> None:
    venue, clock = Venue(), Clock()
    moves: list[StopMoved] = []
    budget = ModifyBudget(rate=10, burst=1)
    exits = ExitManager(venue.modify, moves.append, budget=budget, schedule=clock.schedule, clock=clock)
    exits.track("wide", "AAPL", Side.SELL, Decimal("95.00"), trail_amount=Decimal("5"), trail_percent=None)
    exits.track("tight", "AAPL", Side.SELL, Decimal("99.00"), trail_amount=Decimal("1"), trail_percent=None)

    exits.on_price("AAPL", Decimal("101.00"), 1)  # both move; the budget has one write
    assert venue.modifies == [("wide", Decimal("96.00"))]
    exits.on_price("AAPL", Decimal("102.00"), 2)  # both move again: held, one level each
    assert venue.modifies == [("wide", Decimal("96.00"))] and exits.held == 2
    assert len(clock.due) == 1  # one refill timer, not one per move

    clock.run_due()  # 100 ms later: one write, the stop nearest the market
    assert venue.modifies[-1] == ("tight", Decimal("101.00"))
    clock.run_due()
    assert venue.modifies[-1] == ("wide", Decimal("97.00")) and exits.held == 0
    assert [(m.command_id, m.delayed, m.tick_recv_ns) for m in moves] == [
        ("wide", False, 1),
        ("tight", True, 1),  # its wait counts from the first tick it was not written for
        ("wide", True, 2),
    ]
    assert (exits.counts.written, exits.counts.delayed, exits.counts.coalesced) == (3, 2, 1)


def test_a_held_level_of_a_stop_the_floor_forgot_is_never_written() -> None:
    venue, clock = Venue(), Clock()
    exits = ExitManager(
        venue.modify, budget=ModifyBudget(rate=10, burst=1), schedule=clock.schedule, clock=clock
    )
    exits.track("a", "AAPL", Side.SELL, Decimal("98"), trail_amount=Decimal("1"), trail_percent=None)
    exits.track("b", "AAPL", Side.SELL, Decimal("98"), trail_amount=Decimal("1"), trail_percent=None)
    exits.on_price("AAPL", Decimal("101"), 1)
    [(first, _)] = venue.modifies
    exits.forget("AAPL", "b" if first == "a" else "a")
    clock.run_due()
    assert len(venue.modifies) == 1 and exits.held == 0
