"""The running hot path's parts (:class:`HotPath`), as :mod:`hotpath.main` wires them: the quote
handler that feeds the book, the circuit breaker and the exit manager, and the bodies of the
control port's ``/health``, ``/stats`` and ``/metrics.json``. Tests that run the hot path
in-process read it too.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict
from typing import Any

from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricReader

from brokers.base import Broker, Quote
from hotpath.account import LastPrice
from hotpath.broker_events import BrokerEvents
from hotpath.circuit_breaker import BreakerChange, CircuitBreaker, Trip
from hotpath.circuit_breaker_sweep import CancelSweep
from hotpath.command_loop import IntakeHold
from hotpath.exit_manager import StopMoved
from hotpath.group_handover import Handover
from hotpath.intake import Intake
from hotpath.outcomes import Timing
from observability.gc_pauses import GcPauses
from observability.telemetry import snapshot

TIMINGS_KEPT = 10_000


def _append_stats(ledger: object) -> dict[str, int] | None:
    appends = getattr(ledger, "appends", None)
    return None if appends is None else appends.stats.as_dict()


class HotPath:
    """The running process's parts, for the control port and for tests that run it in-process."""

    def __init__(self, intake: Intake, events: BrokerEvents, breaker: CircuitBreaker, broker: Broker) -> None:
        self.intake = intake
        self.events = events
        self.breaker = breaker
        self.broker = broker
        self.timings: deque[Timing] = deque(maxlen=TIMINGS_KEPT)
        self.trail_moves: deque[StopMoved] = deque(maxlen=TIMINGS_KEPT)
        self.consuming = False
        self.held = IntakeHold()
        self.trips: list[Trip] = []
        self.sweep: CancelSweep | None = None
        self.reader: MetricReader | None = None
        self.handover: Handover | None = None
        """In group mode: which partitions (accounts) this member holds."""
        self.gc = GcPauses()

    def on_quote(self, quote: Quote) -> None:
        price = LastPrice(quote.bid, quote.ask, quote.last, quote.recv_ns)
        self.intake.book.on_quote(quote.symbol, price)
        mark = price.last if price.last is not None else price.mark()
        if mark is not None and mark > 0:
            self.breaker.follow(self.intake.profiles)
            self.breaker.on_price(quote.symbol, int(quote.time.timestamp() * 1000), mark, quote.recv_ns)
            if self.intake.exits is not None and not self.breaker.halted:
                self.intake.exits.on_price(quote.symbol, mark, quote.recv_ns)

    async def health(self) -> tuple[int, dict[str, Any]]:
        body: dict[str, Any] = {
            "status": "ok" if self.consuming else "starting",
            "trading_state": self.breaker.state.value,
            "broker_connected": self.broker.connected,
            "orders": len(self.intake.orders),
            # Set while a record waits for Postgres: intake (and every record after it) is paused.
            "intake_held": self.held.as_dict(),
            "last_trip": None if self.breaker.last_trip is None else trip_dict(self.breaker.last_trip),
            # What the newest trip's cancels did, once every acknowledgement is in (or given up on).
            "last_sweep": None if self.sweep is None or self.sweep.last is None else asdict(self.sweep.last),
            "breaker": None if self.breaker.last_change is None else change_dict(self.breaker.last_change),
        }
        if self.handover is not None:
            body["partitions"] = sorted(tp.partition for tp in self.handover.held)
        return (200 if self.consuming else 503), body

    async def stats(self) -> tuple[int, dict[str, Any]]:
        book = self.intake.book
        positions: dict[str, dict[str, int]] = {}
        for (account, symbol), quantity in book.positions.items():
            positions.setdefault(account, {})[symbol] = quantity
        return 200, {
            # The risk gate's view: positions as fills reached the hot path (seeded from the broker).
            "positions": positions,
            # Orders the risk gate counts against each account's open-order limit (in group mode
            # those another member left working in an account this one took over included).
            "open_orders": {account: len(ids) for account, ids in book.working.items() if ids},
            # The limits the risk gate enforces now: a profile change shows here once reloaded.
            "profiles": {account: p.to_json_dict() for account, p in self.intake.profiles.items()},
            "timings": [asdict(t) for t in self.timings],
            # How the ledger appends were committed: alone, or several in one transaction.
            "ledger_appends": _append_stats(self.intake.ledger),
            # The garbage collector's pauses since start-up, by generation (observability.gc_pauses).
            "gc": self.gc.as_dict(),
            "trail_pacing": {**asdict(self.intake.exits.counts), "held": self.intake.exits.held}
            if self.intake.exits is not None
            else None,
            "trail_moves": [
                {**{k: str(v) for k, v in asdict(m).items()}, "tick_to_write_us": m.tick_to_write_us}
                for m in self.trail_moves
            ],
        }

    async def metrics_json(self) -> tuple[int, dict[str, Any]]:
        if not isinstance(self.reader, InMemoryMetricReader):
            return 404, {"error": "metrics are exported, not kept in process"}
        return 200, snapshot(self.reader)


def change_dict(change: BreakerChange) -> dict[str, Any]:
    """The ledger entry behind the trading state: what tripped or re-armed it, and who."""
    return {
        "kind": change.kind,
        "by": change.by,
        "command_id": change.command_id,
        "at": change.at.isoformat(),
    }


def trip_dict(trip: Trip) -> dict[str, Any]:
    return {
        "symbol": trip.symbol,
        "reference_high": str(trip.signal.reference_high),
        "price": str(trip.signal.price),
        "drop_pct": str(trip.signal.drop_pct),
        "tick_to_cancel_us": (trip.cancel_written_ns - trip.tick_recv_ns) / 1000,
        "at": trip.at.isoformat(),
    }
