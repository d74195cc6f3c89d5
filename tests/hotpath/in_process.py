"""Intake run in the test's own process over the real ledger (Postgres), for the cases a
running hot path cannot be steered into: a revocation between two registry loads, a breaker
trip during a commit, a connection lost mid-append. Records go to a list, not to Kafka."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from brokers.base import BrokerOrder, Placement
from bus.topics import SECURITY_EVENTS
from hotpath.account import AccountBook, LastPrice
from hotpath.circuit_breaker import CircuitBreaker
from hotpath.circuit_breaker_log import BreakerLog
from hotpath.exit_manager import ExitManager
from hotpath.floor_orders import FloorOrder
from hotpath.intake import Intake
from hotpath.ports import EventProducer, HotLedger
from hotpath.protective_stops import ProtectiveStops
from observability.security import SecurityLog, SecurityRecorder
from observability.telemetry import setup
from tests.factories import Agent, exit_command
from tests.helpers import eventually
from tests.hotpath.conftest import VENUE_ACCOUNT
from trading.commands import Command, CommandKind, OrderType, Side, TimeInForce, utc_now_ms
from trading.iceberg_parents import CONTROL
from trading.order_events import OrderEvent
from trading.orders import Cancelled
from trading.signing import SignedCommand


class BankrollOnly:
    """Reports a net liquidation, as the broker session does; anything else is a failure."""

    async def net_liquidation(self, account: str) -> Decimal:
        return Decimal("1000000")

    def __getattr__(self, name: str) -> Callable[..., object]:
        raise AssertionError(f"intake reached the broker ({name}) for a command it must not send")


def in_process_intake(
    ledger: HotLedger,
    broker: object,
    emitted: list[OrderEvent],
    *,
    breaker: CircuitBreaker | None = None,
    breaker_log: BreakerLog | None = None,
    producer: EventProducer | None = None,
    security: SecurityRecorder | None = None,
) -> Intake:
    """Intake over ``ledger`` and ``broker`` with a fresh AAPL quote, appending every record it
    would publish to ``emitted``; the records intake sends straight to Kafka (an iceberg parent's
    or control's) go through ``producer`` (a real one, when the test makes such commands)."""
    book = AccountBook()
    book.on_quote("AAPL", LastPrice(Decimal("189.40"), Decimal("189.50"), None, time.perf_counter_ns()))
    return Intake(
        broker=broker,  # type: ignore[arg-type]
        ledger=ledger,
        producer=producer,  # type: ignore[arg-type]  # None: records go to `emit` only
        security=security or SecurityLog(ledger, None, SECURITY_EVENTS),  # type: ignore[arg-type]
        breaker=breaker or CircuitBreaker(lambda: None, lambda trip: None),
        book=book,
        orders={},
        metrics=setup("in-process-intake").metrics,
        emit=emitted.append,
        breaker_log=breaker_log,
    )


SYMBOL = "AAPL"
HELD = 10


class RecordingBroker(BankrollOnly):
    """Takes every order written to it; anything else intake asks is a failure."""

    def __init__(self) -> None:
        self.placed: list[BrokerOrder] = []

    def place(self, order: BrokerOrder) -> Placement:
        self.placed.append(order)
        return Placement(
            order.order_ref, True, time.perf_counter_ns(), client_id=1, order_id=len(self.placed)
        )


class ProtectedLong:
    """A long of ``HELD`` shares in intake's book, stopped by the floor's working stop."""

    held = HELD

    def __init__(self, intake: Intake, *, withdraw_wait_s: float = 5.0) -> None:
        self.intake = intake
        self.cancels: list[str] = []
        self.ops: list[tuple[str, str, dict[str, Any]]] = []
        self.protector = ProtectiveStops(
            ExitManager(lambda ref, stop: 1), intake.orders, intake.book, self._send, self.cancels.append,
            None, CONTROL, lambda kind, severity, detail: self.ops.append((kind, severity, dict(detail))),
            lambda: False, withdraw_wait_s=withdraw_wait_s,
        )  # fmt: skip
        intake.book.on_change = self.protector.on_change
        intake.exit_clearance = self.protector.clearance
        self.protector.start()
        intake.book.on_fill(VENUE_ACCOUNT, SYMBOL, Side.BUY, HELD)
        stop = Command(
            kind=CommandKind.EXIT, command_id=f"entry-{uuid.uuid4().hex[:8]}.stop-1", agent_id=CONTROL,
            account=VENUE_ACCOUNT, nonce=uuid.uuid4().hex, issued_at=utc_now_ms(), symbol=SYMBOL,
            side=Side.SELL, order_type=OrderType.TRAIL, stop_price=Decimal("185"),
            trail_amount=Decimal("4"), tif=TimeInForce.GTC, quantity=HELD,
        )  # fmt: skip
        self.stop = FloorOrder.from_command(stop, HELD)
        self.stop.acknowledged(1)
        intake.orders[stop.command_id] = self.stop
        intake.book.order_working(self.stop)

    async def _send(self, envelope: SignedCommand) -> None:
        raise AssertionError(f"no stop should be placed: {envelope.command}")

    async def exit_in_flight(self, agent: Agent) -> tuple[str, asyncio.Task[Any]]:
        """The desk's exit of the whole position, decided and ledgered, waiting at the broker
        write while the floor's stop is being withdrawn."""
        envelope = agent.sign(
            exit_command(
                agent.agent_id, account=VENUE_ACCOUNT, side=Side.SELL, quantity=HELD, limit=Decimal("189.40")
            )
        )
        cid = envelope.command.command_id
        task = asyncio.create_task(self.intake.handle(envelope.to_wire(), source="test"))
        await eventually(lambda: cid in self.intake.orders and self.stop.command_id in self.cancels)
        for _ in range(20):  # the loop runs on: nothing sends the exit before the stop has ended
            await asyncio.sleep(0)
        assert not task.done()
        return cid, task

    def stop_cancelled(self) -> None:
        self.stop.end(Cancelled("broker.cancelled"))
        self.intake.book.order_done(VENUE_ACCOUNT, self.stop.command_id)

    def stop_filled(self) -> None:
        self.stop.apply_fill("x-stop", HELD, Decimal("184.90"))
        self.intake.book.on_fill(VENUE_ACCOUNT, SYMBOL, Side.SELL, HELD, self.stop.command_id)
        self.intake.book.order_done(VENUE_ACCOUNT, self.stop.command_id)
