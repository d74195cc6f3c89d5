"""The order recovery re-sends after a restart is the very order intake sent, for every order
type: intake over the real ledger (Postgres) sends each; recovery reads the same entries back."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from hotpath.account import AccountBook
from hotpath.exit_manager import ExitManager
from hotpath.recovery import restore_orders
from tests.factories import enter_command
from tests.hotpath.conftest import VENUE_ACCOUNT
from tests.hotpath.test_iceberg_parents import Floor, floor, slice_of  # noqa: F401  (a fixture)
from tests.hotpath.test_refusal_walk import TakesOrders
from trading.commands import Command, OrderType, Side, TimeInForce
from trading.protective_limits import BOUNDED_TYPES


async def test_recovery_resends_exactly_the_order_intake_sent_for_every_order_type(floor: Floor) -> None:  # noqa: F811
    broker = TakesOrders()
    intake = await floor.taking_orders(broker)
    intake.exits = ExitManager(lambda order_ref, stop: 0)
    author = floor.author.agent_id

    def entry(**fields: object) -> Command:
        # Small quantities: every order fits the account's limits next to the others.
        return dataclasses.replace(enter_command(author, account=VENUE_ACCOUNT, quantity=5), **fields)  # type: ignore[arg-type]

    commands = [
        (floor.author, entry()),  # LMT (the touch is 189.40 / 189.50)
        (floor.author, entry(order_type=OrderType.MKT, limit_price=None, tif=TimeInForce.IOC)),
        (floor.author, entry(order_type=OrderType.STP, limit_price=None, stop_price=Decimal("190.00"))),
        (
            floor.author,
            entry(order_type=OrderType.STP_LMT, limit_price=Decimal("190.50"), stop_price=Decimal("190.00")),
        ),
        (floor.author, entry(order_type=OrderType.LMT, tif=TimeInForce.GTC)),
        # TRAILs go out as STP orders at their initial stop, which recovery reads from the entry.
        (
            floor.author,
            entry(
                side=Side.SELL,
                order_type=OrderType.TRAIL,
                limit_price=None,
                trail_amount=Decimal("1"),
                edge=dataclasses.replace(enter_command(author).edge, stop_price=Decimal("190.40")),  # type: ignore[arg-type]
            ),
        ),  # fmt: skip
        (
            floor.author,
            entry(
                side=Side.SELL,
                order_type=OrderType.TRAIL,
                limit_price=None,
                trail_percent=Decimal("0.5"),
                edge=dataclasses.replace(enter_command(author).edge, stop_price=Decimal("190.40")),  # type: ignore[arg-type]
            ),
        ),  # fmt: skip
        (floor.sniper, slice_of(floor.sniper.agent_id, floor.parent_id, quantity=10)),
    ]
    for signer, command in commands:
        outcome = await intake.handle(signer.sign(command).to_wire(), source="test")
        assert outcome.reason is None, (command.order_type, outcome.reason)
    sent = {order.order_ref: order for order in broker.placed}
    assert len(sent) == len(commands)
    # Entries go out bounded: a MKT as a LMT, a STP and a TRAIL as a STP_LMT, each at the
    # collar (5 bps) past the price it goes live at, and recovery sends that same limit.
    assert {sent[c.command_id].order_type for _, c in commands} == {OrderType.LMT, OrderType.STP_LMT}
    bounded = {c.command_id: c.order_type for _, c in commands if c.order_type in BOUNDED_TYPES}
    assert {sent[cid].order_type for cid in bounded} == {OrderType.LMT, OrderType.STP_LMT}
    mkt = next(cid for cid, t in bounded.items() if t is OrderType.MKT)
    assert sent[mkt].limit_price == Decimal("189.60")  # the ask 189.50 x 1.0005 = 189.594750, up
    stp = next(cid for cid, t in bounded.items() if t is OrderType.STP)
    assert (sent[stp].stop_price, sent[stp].limit_price) == (Decimal("190.00"), Decimal("190.10"))

    # No broker ever answered, so every entry is one recovery must send: as it was sent.
    restored = await restore_orders(floor.pool, {}, AccountBook())
    resent = {r.order.order_ref: r for r in restored.to_send if r.order.order_ref in sent}
    assert {ref: r.order for ref, r in resent.items()} == sent
    for _, command in commands:
        again = resent[command.command_id]
        trails = command.order_type is OrderType.TRAIL
        assert again.trail_stop == (sent[command.command_id].stop_price if trails else None)
        limit = sent[command.command_id].limit_price if command.command_id in bounded else None
        assert again.protective_limit == limit
