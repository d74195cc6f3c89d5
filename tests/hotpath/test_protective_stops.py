"""Every filled entry's position is stopped at the broker for what the desk's exits leave
uncovered: placed on the fill, withdrawn when a desk exit takes its place, placed again when
that exit goes, and said when it cannot be."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from hotpath.account import AccountBook
from hotpath.exit_manager import ExitManager
from hotpath.floor_orders import FloorOrder
from hotpath.protective_stops import (
    PROTECTED,
    STOP_NOT_WITHDRAWN,
    STOP_WITHDRAWN,
    UNPROTECTED,
    ProtectiveStops,
)
from tests.factories import enter_command, exit_command
from trading.commands import Command, OrderType, Side
from trading.iceberg_parents import CONTROL
from trading.orders import Cancelled, Rejected
from trading.signing import SignedCommand, generate_private_key

ACCOUNT = "DU1"


class Floor:
    """The account book, the order map and a protector whose sends and cancels are recorded."""

    def __init__(self, *, halted: bool = False, key: bool = True, withdraw_wait_s: float = 5.0) -> None:
        self.halted = halted
        self.orders: dict[str, FloorOrder] = {}
        self.book = AccountBook()
        self.sent: list[SignedCommand] = []
        self.cancelled: list[str] = []
        self.ops: list[tuple[str, str, dict[str, Any]]] = []
        self.exits = ExitManager(lambda ref, stop: 1)
        self.protector = ProtectiveStops(
            self.exits, self.orders, self.book, self._send, self.cancelled.append,
            generate_private_key() if key else None, CONTROL,
            lambda kind, severity, detail: self.ops.append((kind, severity, dict(detail))),
            lambda: self.halted, confirm_s=0.05, withdraw_wait_s=withdraw_wait_s,
        )  # fmt: skip
        self.book.on_change = self.protector.on_change
        self.protector.start()

        self.sending: asyncio.Event | None = None
        """Set: a send waits for it, then fails (intake never took the stop)."""

    async def _send(self, envelope: SignedCommand) -> None:
        if self.sending is not None:
            await self.sending.wait()
            raise ConnectionError("Kafka unreachable")
        self.sent.append(envelope)

    def working(self, command: Command, quantity: int) -> FloorOrder:
        order = FloorOrder.from_command(command, quantity)
        order.acknowledged(len(self.orders) + 1)
        self.orders[order.command_id] = order
        self.book.order_working(order)
        return order

    def fill(self, order: FloorOrder, quantity: int, price: Decimal) -> None:
        order.apply_fill(f"x{len(order.exec_ids)}", quantity, price)
        self.book.on_fill(order.account, order.symbol, order.side, quantity, order.command_id)
        if order.done:
            self.book.order_done(order.account, order.command_id)

    def kinds(self) -> list[str]:
        return [kind for kind, _, _ in self.ops]


async def settled() -> None:
    """Let the coalesced look at the position and the sends run."""
    for _ in range(3):
        await asyncio.sleep(0)


async def test_a_filled_entry_is_stopped_at_its_own_stop_trailing_by_its_distance_to_it() -> None:
    floor = Floor()
    entry = floor.working(
        enter_command("desk", account=ACCOUNT, limit=Decimal("100"), stop=Decimal("98.5")), 10
    )
    floor.fill(entry, 4, Decimal("100.20"))
    floor.fill(entry, 6, Decimal("100.20"))  # both fills in one go: one stop for the ten
    await settled()

    [envelope] = floor.sent
    stop = envelope.command
    assert (stop.kind.value, stop.agent_id, stop.account, stop.symbol) == ("exit", CONTROL, ACCOUNT, "AAPL")
    assert (stop.side, stop.quantity, stop.order_type) == (Side.SELL, 10, OrderType.TRAIL)
    assert (stop.stop_price, stop.trail_amount) == (Decimal("98.5"), Decimal("1.70"))
    assert stop.command_id.startswith(f"{entry.command_id}.stop-")
    assert floor.kinds() == [PROTECTED]


async def test_a_desk_exit_takes_the_floors_stop_place_and_its_cancel_brings_it_back() -> None:
    floor = Floor()
    entry = floor.working(
        enter_command("desk", account=ACCOUNT, limit=Decimal("100"), stop=Decimal("98")), 10
    )
    floor.fill(entry, 10, Decimal("100"))
    await settled()
    [envelope] = floor.sent
    stop = floor.working(envelope.command, 10)
    assert stop.protective
    # The risk gate does not count the floor's stop as an exit: the desk's exit passes.
    assert floor.book.working_qty(ACCOUNT, "AAPL", Side.SELL, exits_only=True) == 0

    take_profit = floor.working(
        exit_command("desk", account=ACCOUNT, side=Side.SELL, quantity=6, limit=Decimal("103")), 6
    )
    await settled()
    # 10 + 6 would sell more than the 10 held: the floor's stop goes, one for the other 4 comes.
    assert floor.cancelled == [stop.command_id]
    assert floor.kinds() == [PROTECTED, STOP_WITHDRAWN, PROTECTED]
    [_, cover] = floor.sent
    assert (cover.command.quantity, cover.command.stop_price) == (4, Decimal("98"))

    stop.end(Cancelled("broker.cancelled"))  # the withdrawal's confirmation: no loss, nothing new
    floor.book.order_done(ACCOUNT, stop.command_id)
    await settled()
    assert len(floor.sent) == 2

    floor.working(cover.command, 4)
    floor.book.order_done(ACCOUNT, take_profit.command_id)  # the desk pulls its exit
    await settled()
    assert [e.command.quantity for e in floor.sent[2:]] == [6]


async def test_an_entry_without_a_stop_is_said_to_be_unprotected() -> None:
    floor = Floor()
    manual = enter_command("desk", account=ACCOUNT, limit=Decimal("100"), quantity=3)
    manual = Command(**{**manual.__dict__, "edge": None})
    entry = floor.working(manual, 3)
    floor.fill(entry, 3, Decimal("100"))
    await settled()
    assert floor.sent == []
    [(kind, severity, detail)] = floor.ops
    assert (kind, severity, detail["uncovered"]) == (UNPROTECTED, "warning", 3)
    assert "send an exit stop" in detail["advice"]


async def test_while_halted_nothing_is_sent_and_the_position_is_said_unprotected() -> None:
    floor = Floor(halted=True)
    entry = floor.working(enter_command("desk", account=ACCOUNT, limit=Decimal("100"), stop=Decimal("98")), 2)
    floor.fill(entry, 2, Decimal("100"))
    await settled()
    assert floor.sent == []
    [(kind, severity, detail)] = floor.ops
    assert (kind, severity) == (UNPROTECTED, "critical") and "re-arm" in detail["advice"]


async def test_a_stop_intake_never_took_is_said_unprotected_once() -> None:
    floor = Floor()
    entry = floor.working(enter_command("desk", account=ACCOUNT, limit=Decimal("100"), stop=Decimal("98")), 2)
    floor.fill(entry, 2, Decimal("100"))
    await settled()
    await asyncio.sleep(0.1)  # past confirm_s: the stop never started working
    await settled()
    assert floor.kinds() == [PROTECTED, UNPROTECTED] and len(floor.sent) == 1


async def test_positions_a_halt_left_without_stops_are_protected_once_re_armed() -> None:
    floor = Floor(halted=True)
    entry = floor.working(enter_command("desk", account=ACCOUNT, limit=Decimal("100"), stop=Decimal("98")), 2)
    floor.fill(entry, 2, Decimal("100"))
    await settled()
    floor.protector.rearmed()  # still halted: nothing
    await settled()
    assert floor.sent == []

    floor.halted = False
    floor.protector.rearmed()
    await settled()
    [envelope] = floor.sent
    assert (envelope.command.quantity, envelope.command.stop_price) == (2, Decimal("98"))


async def test_a_stop_counted_working_from_its_decision_is_the_floors_once_it_reaches_the_broker() -> None:
    floor = Floor()
    entry = floor.working(
        enter_command("desk", account=ACCOUNT, limit=Decimal("100"), stop=Decimal("98")), 10
    )
    floor.fill(entry, 10, Decimal("100"))
    await settled()
    [envelope] = floor.sent
    # Intake counts an order working from its decision, before its commit and before its order
    # map holds it (hotpath.overlap); the order map has it once the broker was written.
    stop = FloorOrder.from_command(envelope.command, 10)
    floor.book.order_working(stop)
    await settled()
    stop.acknowledged(99)
    floor.orders[stop.command_id] = stop
    floor.book.order_working(stop)
    await asyncio.sleep(0.1)  # past confirm_s: it is working, nothing to say
    await settled()
    assert floor.kinds() == [PROTECTED]

    floor.working(
        exit_command("desk", account=ACCOUNT, side=Side.SELL, quantity=10, limit=Decimal("103")), 10
    )
    await settled()
    assert floor.cancelled == [stop.command_id]  # the floor knows its stop: the desk's exit takes its place


async def test_a_stop_ledgered_and_not_sent_is_said_unprotected_at_once_not_as_the_desks_cancel() -> None:
    floor = Floor()
    entry = floor.working(enter_command("desk", account=ACCOUNT, limit=Decimal("100"), stop=Decimal("98")), 2)
    floor.fill(entry, 2, Decimal("100"))
    await settled()
    [envelope] = floor.sent
    stop = FloorOrder.from_command(envelope.command, 2)
    floor.book.order_working(stop)
    floor.orders[stop.command_id] = stop
    stop.end(Rejected("risk.halted"))  # the breaker tripped while its entry committed
    floor.book.order_done(ACCOUNT, stop.command_id)
    await settled()
    assert floor.kinds() == [PROTECTED, UNPROTECTED]
    detail = floor.ops[-1][2]
    assert (detail["stop_command_id"], detail["reason"]) == (stop.command_id, "risk.halted")
    assert "desk" not in detail["advice"]
    await asyncio.sleep(0.1)  # past confirm_s: said once, not sent again at this position
    await settled()
    assert floor.kinds() == [PROTECTED, UNPROTECTED] and len(floor.sent) == 1


async def _long_with_the_floors_stop(floor: Floor, quantity: int = 10) -> FloorOrder:
    entry = floor.working(
        enter_command("desk", account=ACCOUNT, limit=Decimal("100"), stop=Decimal("98")), quantity
    )
    floor.fill(entry, quantity, Decimal("100"))
    await settled()
    [envelope] = floor.sent
    return floor.working(envelope.command, quantity)


async def _exit_waiting(floor: Floor, quantity: int) -> tuple[FloorOrder, FloorOrder, asyncio.Future[bool]]:
    """A long of 10 the floor's stop protects, and a desk's exit of ``quantity`` decided: the
    stop, the exit and the exit's wait for the broker write."""
    stop = await _long_with_the_floors_stop(floor)
    exit_order = _desk_exit(floor, quantity)
    await settled()
    assert floor.cancelled == [stop.command_id]
    cleared = floor.protector.clearance(exit_order)
    assert cleared is not None
    return stop, exit_order, cleared


def _cancel_confirmed(floor: Floor, stop: FloorOrder) -> None:
    stop.end(Cancelled("broker.cancelled"))
    floor.book.order_done(ACCOUNT, stop.command_id)


def _desk_exit(floor: Floor, quantity: int) -> FloorOrder:
    command = exit_command("desk", account=ACCOUNT, side=Side.SELL, quantity=quantity, limit=Decimal("103"))
    order = FloorOrder.from_command(command, quantity)
    floor.book.order_working(order)  # counted from its decision, before the broker sees it
    return order


async def test_a_desk_exit_waits_until_the_floors_stop_withdrawn_for_it_has_ended_at_the_broker() -> None:
    """Between the stop's cancel and its confirmation the stop still works: an exit written in
    that moment and a stop the market reaches would both sell."""
    floor = Floor()
    stop, _, cleared = await _exit_waiting(floor, 10)
    await settled()
    assert not cleared.done()  # cancel written, not confirmed: the stop may still fill

    _cancel_confirmed(floor, stop)
    assert await asyncio.wait_for(cleared, 1.0) is True


async def test_a_stop_that_fills_before_its_cancel_lands_clears_the_exit_on_a_flat_position() -> None:
    floor = Floor()
    stop, _, cleared = await _exit_waiting(floor, 10)

    floor.fill(stop, 10, Decimal("97.90"))  # the market reached it first
    assert await asyncio.wait_for(cleared, 1.0) is True
    # Clear to be checked again: intake then finds the position flat and refuses the exit.
    assert floor.book.position(ACCOUNT, "AAPL") == 0


async def test_a_partial_exit_waits_for_the_old_stop_not_for_the_cover_of_the_rest() -> None:
    """A desk exit for 6 of 10: the stop for 10 goes and one for the other 4 is sent. The exit
    may go once the 10 have ended; the 4 and the 6 together are the position."""
    floor = Floor()
    stop, _, cleared = await _exit_waiting(floor, 6)
    assert len(floor.sent) == 2
    _cancel_confirmed(floor, stop)
    assert await asyncio.wait_for(cleared, 1.0) is True


async def test_an_exit_no_floor_stop_overlaps_goes_at_once() -> None:
    floor = Floor()
    stop = await _long_with_the_floors_stop(floor)
    _cancel_confirmed(floor, stop)  # the desk cancelled the floor's stop
    await settled()
    assert floor.protector.clearance(_desk_exit(floor, 10)) is None
    protective = FloorOrder.from_command(floor.sent[0].command, 10)
    assert floor.protector.clearance(protective) is None  # the floor's own stops never wait


async def test_a_stop_whose_end_is_never_confirmed_keeps_the_exit_back_and_says_so() -> None:
    floor = Floor(withdraw_wait_s=0.05)
    stop, exit_order, cleared = await _exit_waiting(floor, 10)
    assert await asyncio.wait_for(cleared, 1.0) is False
    [(kind, severity, detail)] = [op for op in floor.ops if op[0] == STOP_NOT_WITHDRAWN]
    assert severity == "critical" and detail["stops"] == [stop.command_id]
    assert detail["command_id"] == exit_order.command_id and "send the exit again" in detail["advice"]


async def test_an_exit_waiting_on_a_stop_still_being_sent_goes_once_that_send_fails() -> None:
    """The stop never reaches intake: nothing of the floor's will sell beside the exit, so the
    exit need not wait out ``withdraw_wait_s``."""
    floor = Floor()
    floor.sending = asyncio.Event()
    entry = floor.working(
        enter_command("desk", account=ACCOUNT, limit=Decimal("100"), stop=Decimal("98")), 10
    )
    floor.fill(entry, 10, Decimal("100"))
    await settled()  # the stop is on its way to intake
    cleared = floor.protector.clearance(_desk_exit(floor, 10))
    assert cleared is not None and not cleared.done()

    floor.sending.set()
    assert await asyncio.wait_for(cleared, 1.0) is True
    assert UNPROTECTED in floor.kinds()
