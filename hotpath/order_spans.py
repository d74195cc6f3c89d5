"""The hot path's spans: each command's trace through intake, and its order's life at the broker.

A command's record may carry a W3C trace context in its Kafka headers (the door's, the desk's,
a Temporal activity's): the hot path's spans join that trace; a command without one starts its
own. The trace of an order reads::

    hotpath.intake                 (the record taken off Kafka .. the broker socket write)
      sentry                       (envelope, signature, key, replay window)
      sizer                        (breaker, symbol, profile, prices, the Kelly sizer)
      risk_gate                    (the risk limits)
      ledger.append                (the write-ahead commit)
      broker.place                 (the entry committed .. the socket write)
      broker.ack                   (the socket write .. the broker's acknowledgement)
      broker.fill                  (one per execution, at its arrival)
      broker.cancelled / broker.rejected

A refused command's ``hotpath.intake`` ends at its decision, ``floor.outcome`` naming the
refusal. Every span carries ``floor.command_id`` (and ``floor.account``, ``floor.symbol``).

Why no context managers around the stages: a span costs tens of µs to make, and the signal to
broker write is a few milliseconds all told. So intake only takes ``perf_counter_ns`` stamps on
the way (:class:`CommandClock`, in a context variable: each record is decided in a task of its
own), and the spans are made from them after the socket write, one command's per turn of the
event loop (:meth:`OrderSpans._defer`), so making them delays no command's write by more than
one command's spans. The order's context goes on it then
(``FloorOrder.span_context``); its ``orders.events`` records, which carry the context, make the
waiting spans first if they leave sooner.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, Tracer

from hotpath.floor_orders import FloorOrder
from hotpath.outcomes import Outcome
from observability import tracing as names  # by module: its constants are span attributes, not reasons
from observability.propagation import extract_kafka_headers, inject_kafka_headers
from trading.commands import Command
from trading.order_events import TERMINAL_KINDS, EventKind, OrderEvent

log = logging.getLogger(__name__)

INTAKE = "hotpath.intake"
RECENT_CONTEXTS = 4096
"""Trace contexts kept for commands that made no order (refusals, icebergs, cancels), so their
``orders.events`` records carry them too."""

HeadersT = Sequence[tuple[str, bytes]] | None


@dataclass(slots=True)
class CommandClock:
    """``perf_counter_ns`` stamps of one record's way through intake (0: not reached)."""

    intake_ns: int
    headers: HeadersT
    admitted_ns: int = 0
    """The sentry let it in."""
    sized_ns: int = 0
    decided_ns: int = 0
    """The risk gate passed it."""
    committed_ns: int = 0
    """Its write-ahead entry committed."""
    command: Command | None = None
    traced: bool = False
    """Its spans were asked for (at the broker write, or once intake was done with it)."""


CLOCK: ContextVar[CommandClock | None] = ContextVar("floor_command_clock", default=None)


def admitted(command: Command) -> None:
    """The sentry let ``command`` in (a no-op when tracing is off)."""
    clock = CLOCK.get()
    if clock is not None:
        clock.admitted_ns = time.perf_counter_ns()
        clock.command = command


def sized() -> None:
    clock = CLOCK.get()
    if clock is not None:
        clock.sized_ns = time.perf_counter_ns()


def decided(decided_ns: int) -> None:
    clock = CLOCK.get()
    if clock is not None:
        clock.decided_ns = decided_ns


def committed(committed_ns: int) -> None:
    clock = CLOCK.get()
    if clock is not None:
        clock.committed_ns = committed_ns


def _attributes(command_id: str | None, account: str | None, symbol: str | None) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    if command_id is not None:
        attributes[names.ATTR_COMMAND_ID] = command_id
    if account is not None:
        attributes[names.ATTR_ACCOUNT] = account
    if symbol is not None:
        attributes[names.ATTR_SYMBOL] = symbol
    return attributes


def _order_attributes(order: FloorOrder) -> dict[str, Any]:
    return _attributes(order.command_id, order.account, order.symbol)


def _order_id(order: FloorOrder) -> dict[str, Any]:
    return {names.ATTR_ORDER_ID: order.broker_order_id} if order.broker_order_id is not None else {}


class OrderSpans:
    """Makes the hot path's spans with ``tracer``; one per process (None on the intake: off)."""

    def __init__(self, tracer: Tracer, orders: dict[str, FloorOrder]) -> None:
        self._tracer = tracer
        self._orders = orders
        # perf_counter_ns and time_ns differ by a constant within a process; measure it once.
        self._wall_offset_ns = time.time_ns() - time.perf_counter_ns()
        self._pending: deque[Callable[[], None]] = deque()
        self._pumping = False
        self._recent: OrderedDict[str, SpanContext] = OrderedDict()
        self.made = 0
        """Spans made so far (for tests and the bench)."""

    def wall(self, perf_ns: int) -> int:
        return perf_ns + self._wall_offset_ns

    # --- intake ------------------------------------------------------------------------------

    def clock(self, intake_ns: int, headers: HeadersT) -> CommandClock:
        """A record was taken off Kafka at ``intake_ns``: its clock, current in this task."""
        clock = CommandClock(intake_ns, headers)
        CLOCK.set(clock)
        return clock

    def order_sent(self, order: FloorOrder, write_ns: int) -> None:
        """``order`` was just written to the broker socket: its spans, ``hotpath.intake`` and
        the stages under it, are made in a later turn of the loop (:meth:`_defer`; its context
        then goes on the order), after the orders decided with it are written too."""
        clock = CLOCK.get()
        if clock is None or clock.command is None or clock.command.command_id != order.command_id:
            clock = CommandClock(write_ns, None)  # sent outside intake's clock: the write alone
        clock.traced = True
        order.sent_wall_ns = self.wall(write_ns)
        self._defer(lambda: self._intake_spans(clock, order, write_ns))

    def _intake_spans(self, clock: CommandClock, order: FloorOrder, write_ns: int) -> None:
        root = self._tracer.start_span(
            INTAKE,
            context=extract_kafka_headers(clock.headers),
            kind=SpanKind.CONSUMER,
            start_time=self.wall(clock.intake_ns),
            attributes=_order_attributes(order),
        )
        order.span_context = root.get_span_context()
        self._intake_stages(root, clock, order, write_ns)

    def _intake_stages(self, root: trace.Span, clock: CommandClock, order: FloorOrder, write_ns: int) -> None:
        parent = trace.set_span_in_context(root)
        attributes = _order_attributes(order)
        committed_ns = clock.committed_ns
        stages = (
            ("sentry", clock.intake_ns, clock.admitted_ns),
            ("sizer", clock.admitted_ns, clock.sized_ns),
            ("risk_gate", clock.sized_ns or clock.admitted_ns, clock.decided_ns),
            ("ledger.append", clock.decided_ns, committed_ns),
            ("broker.place", committed_ns or clock.decided_ns, write_ns),
        )
        for name, start, end in stages:
            if start and end and end >= start:
                self._span(name, parent, start, end, attributes)
        root.set_attribute(names.ATTR_OUTCOME, "accepted")
        if order.broker_order_id is not None:
            root.set_attribute(names.ATTR_ORDER_ID, order.broker_order_id)
        root.end(end_time=self.wall(write_ns))
        self.made += 1

    def finished(self, clock: CommandClock, outcome: Outcome | None, error: BaseException | None) -> None:
        """A record intake dealt with that made no broker write (a refusal, a cancel, an
        iceberg, a control) or one it could not decide (``error``: the ledger unreachable,
        the record held and handed in again): its span, in a later turn of the loop."""
        if clock.traced:
            return
        clock.traced = True
        end_ns = time.perf_counter_ns()
        self._defer(lambda: self._finished(clock, outcome, error, end_ns))

    def _finished(
        self, clock: CommandClock, outcome: Outcome | None, error: BaseException | None, end_ns: int
    ) -> None:
        command = clock.command
        command_id = command.command_id if command is not None else outcome.command_id if outcome else None
        attributes = _attributes(
            command_id,
            command.account if command is not None else None,
            command.symbol if command is not None else None,
        )
        root = self._tracer.start_span(
            INTAKE,
            context=extract_kafka_headers(clock.headers),
            kind=SpanKind.CONSUMER,
            start_time=self.wall(clock.intake_ns),
            attributes=attributes,
        )
        if command is not None:
            root.set_attribute("floor.kind", command.kind.value)
        if error is not None:
            root.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"[:256]))
            root.set_attribute(names.ATTR_OUTCOME, "held")
        elif outcome is not None:
            root.set_attribute(names.ATTR_OUTCOME, outcome.reason or "accepted")
        parent = trace.set_span_in_context(root)
        if clock.admitted_ns:
            self._span("sentry", parent, clock.intake_ns, clock.admitted_ns, attributes)
        root.end(end_time=self.wall(end_ns))
        self.made += 1
        if command_id is not None:
            self._remember(command_id, root.get_span_context())

    # --- the broker --------------------------------------------------------------------------

    def broker_record(self, order: FloorOrder, record: OrderEvent) -> None:
        """A record the broker's callback produced for ``order``: its span, under the order's
        (made in a later turn of the loop, as the order's own are: none for an order this process
        did not write)."""
        if record.kind is EventKind.SUBMITTED:
            self.acknowledged(order)
        elif record.kind in (EventKind.FILLED, EventKind.PARTIALLY_FILLED) and record.last_fill is not None:
            fill = record.last_fill
            self.filled(order, fill.exec_id, fill.qty, str(fill.price))
        elif record.kind in TERMINAL_KINDS:
            self.ended(order, f"broker.{record.kind.value}", record.reason)

    def acknowledged(self, order: FloorOrder) -> None:
        """The broker's first acknowledgement of an order this process wrote."""
        sent = order.sent_wall_ns
        if sent is None:
            return
        order.sent_wall_ns = None
        now = time.time_ns()
        self._defer(lambda: self._at_broker("broker.ack", order, sent, now, _order_id(order)))

    def filled(self, order: FloorOrder, exec_id: str, qty: int, price: str) -> None:
        now = time.time_ns()
        detail: dict[str, Any] = {"floor.exec_id": exec_id, "floor.fill_qty": qty, "floor.fill_price": price}
        detail["floor.filled_qty"] = order.filled_qty
        self._defer(lambda: self._at_broker("broker.fill", order, now, now, detail))

    def ended(self, order: FloorOrder, name: str, reason: str | None) -> None:
        now = time.time_ns()
        detail = {names.ATTR_OUTCOME: reason} if reason else {}
        self._defer(lambda: self._at_broker(name, order, now, now, detail))

    def _at_broker(self, name: str, order: FloorOrder, start: int, end: int, extra: dict[str, Any]) -> None:
        if order.span_context is None:  # written by an earlier process, or tracing came on since
            return
        parent = trace.set_span_in_context(NonRecordingSpan(order.span_context))
        span = self._tracer.start_span(
            name, context=parent, start_time=start, attributes={**_order_attributes(order), **extra}
        )
        span.end(end_time=max(start, end))
        self.made += 1

    # --- orders.events -----------------------------------------------------------------------

    def context_of(self, command_id: str) -> SpanContext | None:
        """The command's trace context (its ``hotpath.intake`` span's), making the spans still
        waiting for their turn first: its record must not leave without it."""
        if self._pending:
            self._flush()
        order = self._orders.get(command_id)
        if order is not None and order.span_context is not None:
            return order.span_context
        return self._recent.get(command_id)

    def headers_for(self, record: OrderEvent) -> list[tuple[str, bytes]]:
        """The trace context of ``record``'s command, for its Kafka headers (none if unknown)."""
        context = self.context_of(record.command_id)
        if context is None:
            return []
        return inject_kafka_headers(trace.set_span_in_context(NonRecordingSpan(context), Context()))

    # --- internals ---------------------------------------------------------------------------

    def _span(
        self, name: str, parent: Context, start_ns: int, end_ns: int, attributes: dict[str, Any]
    ) -> None:
        span = self._tracer.start_span(
            name, context=parent, start_time=self.wall(start_ns), attributes=attributes
        )
        span.end(end_time=self.wall(end_ns))
        self.made += 1

    def _remember(self, command_id: str, context: SpanContext) -> None:
        self._recent[command_id] = context
        self._recent.move_to_end(command_id)
        while len(self._recent) > RECENT_CONTEXTS:
            self._recent.popitem(last=False)

    def defer(self, work: Callable[[], None]) -> None:
        """Run ``work`` once the spans asked for so far are made (see :meth:`_defer`): e.g. a
        metric recorded with the order's context, for its exemplar."""
        self._defer(work)

    def _defer(self, make: Callable[[], None]) -> None:
        """Make spans in the order asked, one command's (or one broker answer's) per turn of
        the event loop: everything ready in a turn (the next command, a commit's answer) runs
        before the next one, so no command waits behind more than one command's spans
        (~0.1-0.3 ms), where making a burst's spans at once would hold the loop for
        milliseconds. Whatever needs an order's context before then (its ``orders.events``
        record) makes the waiting ones at once (:meth:`context_of`)."""
        self._pending.append(make)
        if self._pumping:
            return
        try:
            asyncio.get_running_loop().call_soon(self._pump)
        except RuntimeError:  # no loop (a synchronous caller): make them now
            self._flush()
            return
        self._pumping = True

    def _pump(self) -> None:
        if self._pending:
            self._make(self._pending.popleft())
        if self._pending:
            asyncio.get_running_loop().call_soon(self._pump)
        else:
            self._pumping = False

    def _make(self, make: Callable[[], None]) -> None:
        try:
            make()
        except Exception:  # a span not made must not take the loop's callback down
            log.exception("a span could not be made; the trace misses it")

    def _flush(self) -> None:
        while self._pending:
            self._make(self._pending.popleft())

    def flush(self) -> None:
        """Make every span asked for so far now (tests, shutdown)."""
        self._flush()
