"""After a trip's global cancel: an explicit cancel of every order the floor holds open, each
acknowledgement awaited, whatever is still open re-cancelled, and any order the broker never
confirmed cancelled reported (the breaker's other modules: :mod:`hotpath.circuit_breaker`).

The global cancel (``reqGlobalCancel``) is the fast net: one message, written ahead of the
pacing queue, covering every order of every client on the account. This sweep is the second net,
for a global cancel the broker lost or ignored:

1. At the trip, in the same tick handler and right after the global cancel, the floor's open
   orders are taken as the sweep's targets and a first wave of explicit cancels is written
   (the crashing symbol's orders first): :data:`WAVE` of them, not all. IB allows 50 messages
   a second per client and ib_async queues whatever is over; 1,000 explicit cancels would hold
   that queue for 20 s, and a broker that is sent more than its pacing allows may drop the
   session, the worst thing to happen in a crash. An order whose cancellation the global
   cancel has already confirmed needs no explicit cancel (the broker would answer 161/10148).
2. Each acknowledgement (the order's end, as :class:`hotpath.broker_events.BrokerEvents`
   applies it to the floor's order map) takes the order off the targets; the last one stamps
   the time every acknowledgement was in.
3. After each acknowledgement window (:data:`ACK_WINDOW_S`) the orders still open are
   cancelled again, a wave at a time (those never explicitly cancelled first), for
   :data:`ROUNDS` windows.
4. Then the sweep reports: one ``breaker.cancel_failed`` ops event (critical) per order still
   not confirmed cancelled, and the trip's own event (``breaker.tripped``) with the counts
   (open at the trip, cancelled, ended otherwise, not cancelled) and the times taken (to the
   global cancel on the socket, to the last acknowledgement).

An order that fills (or is rejected) before its cancel lands is not cancelled, but it is no
longer open either: the event counts it under ``ended_otherwise``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from brokers.base import UnknownOrderRef
from hotpath.floor_orders import FloorOrder
from observability.telemetry import Metrics
from trading.orders import OrderState

log = logging.getLogger(__name__)

ACK_WINDOW_S = 1.0
"""How long the sweep waits for acknowledgements before cancelling the open orders again: a
wave of :data:`WAVE` a window keeps the explicit cancels within IB's 50 messages a second."""
ROUNDS = 5
"""Windows the sweep waits (and re-cancels after) before it reports an order not cancelled."""
WAVE = 40
"""Explicit cancels written at once: under ib_async's 45 a second, with room for the global
cancel and the session's own requests inside the broker's 50."""

KIND_CANCEL_FAILED = "breaker.cancel_failed"
KIND_TRIPPED = "breaker.tripped"
CANCEL_FAILED_ADVICE = (
    "the broker has not confirmed this order cancelled after the global cancel and explicit"
    " cancels: look it up at the broker (TWS, or the paper venue's GET /orders) and cancel it"
    " there; the floor sends its cancel again at the next reconnect"
)


class Cancels(Protocol):
    """The broker's call the sweep needs (:meth:`brokers.base.Broker.cancel`)."""

    def cancel(self, order_ref: str) -> int: ...


Report = Callable[[str, str, Mapping[str, Any]], None]
"""Records an ops event without blocking: (kind, severity, detail)."""


@dataclass(frozen=True)
class SweepResult:
    open_at_trip: int
    """The floor's orders open when the global cancel went out."""
    cancelled: int
    """Of those, how many the broker confirmed cancelled."""
    ended_otherwise: int
    """Filled, rejected or expired before the cancel took them."""
    not_cancelled: tuple[str, ...]
    """Command ids of the orders still open when the sweep gave up (each reported)."""
    explicit_cancels: int
    """Explicit cancels written (the first ones and the re-cancels)."""
    recancels: int
    """Of those, cancels of an order already sent one."""
    to_last_ack_us: float | None
    """From the trip's origin (the crashing tick's arrival) to the last acknowledgement applied
    to the floor's order map; None while an order is still open."""
    rounds: int
    """Acknowledgement windows that ran out with an order still open."""


class CancelSweep:
    def __init__(
        self,
        broker: Cancels,
        orders: Mapping[str, FloorOrder],
        report: Report,
        *,
        ack_window_s: float = ACK_WINDOW_S,
        rounds: int = ROUNDS,
        wave: int = WAVE,
    ) -> None:
        self._broker = broker
        self._orders = orders
        self._report = report
        self._ack_window_s = ack_window_s
        self._rounds = rounds
        self._wave = wave
        self._pending: dict[str, FloorOrder] = {}
        self._targets: list[FloorOrder] = []
        self._sent: dict[str, int] = {}
        self._origin_ns = 0
        self._last_ack_ns: int | None = None
        self._kind = KIND_TRIPPED
        self._detail: dict[str, Any] = {}
        self._all_acked = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.last: SweepResult | None = None
        """The newest finished sweep's result."""

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def begin(self, origin_ns: int, detail: Mapping[str, Any], first_symbol: str | None = None) -> None:
        """Call right after the global cancel was written (no await between): take the open
        orders and write the first wave. ``origin_ns`` (``perf_counter_ns``) is what the times
        are measured from; ``detail`` goes into the ``breaker.tripped`` event. A trip while a
        sweep runs adds its orders to that sweep."""
        targets = [o for o in self._orders.values() if not o.done and o.command_id not in self._pending]
        # The crashing symbol's orders are the likeliest to fill in the crash: cancelled first.
        targets.sort(key=lambda o: o.symbol != first_symbol)
        if not self.running:
            self._targets, self._sent, self._pending = [], {}, {}
            self._origin_ns, self._last_ack_ns = origin_ns, None
            self._detail = dict(detail)
            self._all_acked = asyncio.Event()
        self._targets.extend(targets)
        self._pending.update((o.command_id, o) for o in targets)
        self._cancel(targets[: self._wave])
        if not self._pending:
            self._all_acked.set()
        if not self.running:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="breaker-sweep")

    def on_done(self, order: FloorOrder) -> None:
        """The broker ended ``order`` (the floor's order map has applied it)."""
        if self._pending.pop(order.command_id, None) is not None and not self._pending:
            self._last_ack_ns = time.perf_counter_ns()
            self._all_acked.set()

    async def settled(self) -> SweepResult | None:
        """The result once the running sweep (if any) has reported."""
        if self._task is not None:
            await asyncio.shield(self._task)
        return self.last

    async def _run(self) -> None:
        rounds = 0
        while rounds < self._rounds:
            try:
                await asyncio.wait_for(self._all_acked.wait(), self._ack_window_s)
            except TimeoutError:
                pass
            # A pending order the floor's map has ended by another path (reconciliation).
            for ref in [ref for ref, o in self._pending.items() if o.done]:
                self.on_done(self._pending[ref])
            if not self._pending:
                break
            rounds += 1
            if rounds == self._rounds:
                break
            still = list(self._pending.values())
            never = [o for o in still if o.command_id not in self._sent]
            again = sorted(
                (o for o in still if o.command_id in self._sent), key=lambda o: self._sent[o.command_id]
            )
            self._cancel([*never, *again][: self._wave])
        self._finish(rounds)

    def _cancel(self, orders: Iterable[FloorOrder]) -> None:
        for order in orders:
            try:
                self._broker.cancel(order.command_id)
            except UnknownOrderRef:
                # Decided but not placed yet (its ledger commit in flight): intake checks the
                # breaker again after the commit and ends it unsent, which ends it here too.
                log.info("breaker: %s is not at the broker yet; intake will not send it", order.command_id)
            except Exception as exc:  # one order the broker cannot take must not stop the others
                log.error("breaker: explicit cancel of %s not written: %s", order.command_id, exc)
            self._sent[order.command_id] = self._sent.get(order.command_id, 0) + 1

    def _finish(self, rounds: int) -> None:
        not_cancelled = tuple(self._pending)
        cancelled = sum(1 for o in self._targets if o.machine.state is OrderState.CANCELLED)
        to_last_ack_us = (
            None
            if not_cancelled or self._last_ack_ns is None
            else max(0.0, (self._last_ack_ns - self._origin_ns) / 1000)
        )
        if not self._targets:
            to_last_ack_us = 0.0
        result = SweepResult(
            open_at_trip=len(self._targets),
            cancelled=cancelled,
            ended_otherwise=len(self._targets) - cancelled - len(not_cancelled),
            not_cancelled=not_cancelled,
            explicit_cancels=sum(self._sent.values()),
            recancels=sum(n - 1 for n in self._sent.values()),
            to_last_ack_us=to_last_ack_us,
            rounds=rounds,
        )
        self.last = result
        for ref in not_cancelled:
            order = self._pending[ref]
            log.critical(
                "breaker: order %s (%s %s) not confirmed cancelled", ref, order.account, order.symbol
            )
            self._report(
                KIND_CANCEL_FAILED,
                "critical",
                {
                    "command_id": ref,
                    "account": order.account,
                    "symbol": order.symbol,
                    "broker_order_id": order.broker_order_id,
                    "cancels_sent": self._sent.get(ref, 0),
                    "advice": CANCEL_FAILED_ADVICE,
                },
            )
        summary = {k: v for k, v in asdict(result).items() if k != "not_cancelled"}
        self._report(
            KIND_TRIPPED,
            "critical",
            {**self._detail, **summary, "cancelled_orders": cancelled, "not_cancelled": len(not_cancelled)},
        )
        log.warning(
            "breaker sweep: %d open at the trip, %d cancelled, %d ended otherwise, %d not cancelled;"
            " last acknowledgement %s us after the trip",
            result.open_at_trip,
            result.cancelled,
            result.ended_otherwise,
            len(not_cancelled),
            result.to_last_ack_us,
        )


def swept_metrics(report: Report, metrics: Metrics) -> Report:
    """``report``, recording each finished sweep's time to its last acknowledgement first."""

    def reporting(kind: str, severity: str, detail: Mapping[str, Any]) -> None:
        to_last_ack_us = detail.get("to_last_ack_us") if kind == KIND_TRIPPED else None
        if isinstance(to_last_ack_us, int | float):
            metrics.breaker_sweep.record(to_last_ack_us / 1e6)
        report(kind, severity, detail)

    return reporting
