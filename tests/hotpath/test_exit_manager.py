"""Exit Manager: trailing stops move the working stop order in place, never backwards."""

from __future__ import annotations

import dataclasses
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
