"""Start-up's re-attach of trailing stops against real Postgres and the paper venue: a level the
floor recorded but whose modify never left the dying process is sent to the broker's order (in
place), and a level the trailing rule could not have reached is not believed."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

import asyncpg

from brokers.base import OpenOrder
from brokers.ibkr import IbkrBroker, IbkrConfig
from config.settings import FloorSettings
from hotpath.broker_orders import broker_order
from hotpath.exit_manager import ExitManager
from hotpath.floor_orders import FloorOrder
from hotpath.ledger_store import LedgerStore
from hotpath.recovery import Adopted, connect_and_resend
from hotpath.trailing_restore import LEVEL_IGNORED, REATTACHED, reattach_trailing_stops
from ledger.append import Decision, append_command
from ledger.stop_levels import StopLevel, write_stop_levels
from tests.factories import Agent, exit_command
from tests.fixtures.paper import PaperStack
from tests.helpers import eventually
from tests.hotpath.conftest import VENUE_ACCOUNT
from tests.hotpath.in_process import in_process_intake
from tests.hotpath.live_floor import CENT
from trading.commands import Command, OrderType, Side
from trading.trailing_resume import ResumedFrom

SYMBOL = "MSFT"


def level(command: Command, stop: Decimal, best: Decimal) -> StopLevel:
    return StopLevel(
        command_id=command.command_id,
        account=command.account,
        symbol=SYMBOL,
        side=Side.SELL,
        stop=stop,
        best_price=best,
        trail_amount=command.trail_amount,
        trail_percent=None,
        tick=CENT,
        bound=None,
        updated_at=datetime.now(UTC),
        moves=3,
    )


async def stop_at_venue(broker: IbkrBroker, order_ref: str) -> OpenOrder | None:
    return next((o for o in await broker.open_orders() if o.order_ref == order_ref), None)


async def test_a_recorded_level_the_broker_never_got_is_sent_at_start_up_and_a_planted_one_is_not(
    floor_settings: FloorSettings,
    paper: PaperStack,
    agent: Agent,
    ledger_pool: asyncpg.Pool,
    risk_profiles: None,
) -> None:
    bid, _ = await paper.quote(SYMBOL)
    initial = (bid * Decimal("0.9")).quantize(CENT, ROUND_DOWN)  # far below: never triggers here
    commands = [
        exit_command(
            agent.agent_id,
            account=VENUE_ACCOUNT,
            side=Side.SELL,
            quantity=2,
            symbol=SYMBOL,
            order_type=OrderType.TRAIL,
            trail_amount=Decimal("1.00"),
        )  # fmt: skip
        for _ in range(2)
    ]
    lagging, planted = commands
    for command in commands:
        detail = {"quantity": 2, "initial_stop": str(initial)}
        await append_command(ledger_pool, agent.sign(command), decision=Decision.ACCEPTED, detail=detail)
    orders = [broker_order(c, 2, initial) for c in commands]
    config = IbkrConfig.from_settings(floor_settings, client_id=70 + uuid.uuid4().int % 20)

    first_life = IbkrBroker(config)
    await first_life.connect()
    for order in orders:
        assert first_life.place(order).sent
    refs = [c.command_id for c in commands]
    await eventually(lambda: _all_at_venue(first_life, refs), timeout=10.0)
    await first_life.close()  # the process dies with both stops working at their initial level

    # It had moved the first to initial + 3 (recorded) but the modify never left; the second's row
    # claims a level no trail of 1.00 reaches from the best price it names.
    await write_stop_levels(
        ledger_pool,
        [level(lagging, initial + 3, initial + 4), level(planted, initial + 3, initial + Decimal("3.50"))],
    )

    second_life = IbkrBroker(config)
    await connect_and_resend(second_life, [], adopted=[Adopted(o, 0) for o in orders])
    try:
        intake = in_process_intake(LedgerStore(ledger_pool), second_life, [])
        intake.exits = ExitManager(lambda ref, stop: second_life.modify(ref, stop_price=stop))
        floor_orders = {c.command_id: FloorOrder.from_command(c, 2) for c in commands}
        ops: list[tuple[str, str, Mapping[str, Any]]] = []

        result = await reattach_trailing_stops(
            ledger_pool, second_life, intake, floor_orders, lambda *event: ops.append(event)
        )

        first, second = result.resumed[lagging.command_id], result.resumed[planted.command_id]
        assert (first.stop, first.source, first.modify_broker) == (initial + 3, ResumedFrom.PERSISTED, True)
        assert (second.stop, second.source, second.modify_broker) == (initial, ResumedFrom.INITIAL, False)
        assert intake.exits.stop_of(SYMBOL, lagging.command_id) == initial + 3
        assert intake.exits.stop_of(SYMBOL, planted.command_id) == initial
        moved = await eventually(lambda: _stop_is(second_life, lagging.command_id, initial + 3), timeout=10.0)
        kept = await stop_at_venue(second_life, planted.command_id)
        assert kept is not None and kept.stop_price == initial and kept.perm_id != moved.perm_id
        assert [d["command_id"] for kind, _, d in ops if kind == LEVEL_IGNORED] == [planted.command_id]
        assert {d["command_id"] for kind, _, d in ops if kind == REATTACHED} == {
            c.command_id for c in commands
        }
    finally:
        for command in commands:
            second_life.cancel(command.command_id)
        await eventually(lambda: _none_at_venue(second_life, refs), timeout=10.0)
        await second_life.close()


async def _stop_is(broker: IbkrBroker, order_ref: str, stop: Decimal) -> OpenOrder | None:
    order = await stop_at_venue(broker, order_ref)
    return order if order is not None and order.stop_price == stop else None


async def _all_at_venue(broker: IbkrBroker, order_refs: list[str]) -> bool:
    return set(order_refs) <= {o.order_ref for o in await broker.open_orders()}


async def _none_at_venue(broker: IbkrBroker, order_refs: list[str]) -> bool:
    return not set(order_refs) & {o.order_ref for o in await broker.open_orders()}
