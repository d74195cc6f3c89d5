"""Intake run in the test's own process over the real ledger (Postgres), for the cases a
running hot path cannot be steered into: a revocation between two registry loads, a breaker
trip during a commit, a connection lost mid-append. Records go to a list, not to Kafka."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal

from bus.topics import SECURITY_EVENTS
from hotpath.account import AccountBook, LastPrice
from hotpath.circuit_breaker import CircuitBreaker
from hotpath.circuit_breaker_log import BreakerLog
from hotpath.intake import Intake
from hotpath.ports import EventProducer, HotLedger
from observability.security import SecurityLog, SecurityRecorder
from observability.telemetry import setup
from trading.order_events import OrderEvent


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
