"""An ``enter`` or ``exit`` command through intake, once the sentry let it in: breaker → the
symbol → an iceberg slice's parent → the risk profile → a TRAIL's initial stop → an entry's
protective limit → the prices it can fill at → Kelly sizer (an enter) → risk limits → ledger
append, committed (write-ahead) → the breaker checked again → broker ``place``
(:func:`hotpath.broker_orders.broker_order`) → the Exit Manager (a TRAIL) → ``orders.events``.

The sizer and the risk limits both work over every price the order can fill at given the touch
(:mod:`trading.fill_prices`); a TRAIL's initial stop is computed first, and the order sized at
it. A MKT, STP or TRAIL entry goes out with a protective limit the collar past the touch or its
trigger (:mod:`trading.protective_limits`) and is sized at that limit, so no walk of the book
takes it past the profile; the limit is in the entry's ledger detail (``protective_limit``),
which a restart sends again. An exit goes out as signed. A manual enter (no edge) skips the
sizer: its quantity is the trader's, sent exactly or refused by the risk limits, its loss
measured to its ``stop_loss`` or, without one, the whole notional (:mod:`trading.risk`). The
only awaits between intake and the socket write are the broker's cached net liquidation and
the ledger commit.

An append whose connection dropped may have committed: the record is handed in again (the
ledger unreachable holds it) and, finding the entry, the order goes on from it to the broker,
once (:meth:`~hotpath.intake_steps.IntakeSteps._settle`); found after the sentry's window it
ends ``sentry.stale`` instead. Past the entry nothing is dropped: an order not written ends
``rejected`` with a reason in its state rows, ``intake.internal_error`` for a failure no step
foresaw.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from brokers.base import NotConnected, OrderInvalid, Placement
from hotpath import order_spans, overlap
from hotpath.broker_orders import broker_order
from hotpath.exit_manager import DEFAULT_TICK
from hotpath.floor_orders import FloorOrder
from hotpath.intake_steps import (
    NO_PRICE,
    NO_PROFILE,
    UNSUPPORTED_KIND,
    IntakeSteps,
    UnconfirmedAppend,
    ledger_unreachable,
)
from hotpath.outcomes import Outcome, Timing
from hotpath.ports import RefusedByLedger
from hotpath.protective_stops import STOP_NOT_WITHDRAWN
from hotpath.refusals import INTERNAL_ERROR, failure_detail
from observability.telemetry import in_trace
from trading import iceberg_parents as parents
from trading import protective_limits, sentry
from trading.commands import Command, CommandKind, OrderType
from trading.order_events import EventKind
from trading.orders import Rejected
from trading.protective_limits import DETAIL_KEY as PROTECTIVE_LIMIT
from trading.risk import ProposedOrder, Refusal, TradingState, check_order
from trading.signing import SignedCommand
from trading.sizing import NO_BANKROLL, RiskProfile, size_order
from trading.symbols import UNKNOWN_SYMBOL
from trading.trailing import entry_bound

log = logging.getLogger(__name__)

BROKER_INVALID = "broker.order_invalid"
SIZING_INVALID = "sizing.invalid"
TRAIL_STOP_NOT_POSITIVE = "risk.trail_stop_not_positive"
"""A TRAIL whose trail, taken from the touch, puts its initial stop at or below zero."""


class OrderCommands(IntakeSteps):
    async def _order(
        self, envelope: SignedCommand, intake_ns: int, produce_ts_ms: int | None, source: str
    ) -> Outcome:
        command = envelope.command
        assert command.symbol is not None and command.side is not None
        if self.breaker.halted:
            return await self.refusals.floor(envelope, Refusal.HALTED.value, {})
        if not self.trades(command.symbol):
            return await self._unknown_symbol(envelope)
        if command.parent_id is not None and (refused := await self._slice_refused(envelope)) is not None:
            return refused
        profile = await self._profile(command.account)
        if profile is None:
            return await self.refusals.floor(envelope, NO_PROFILE, {"account": command.account})

        detail: dict[str, object] = {}
        trail_stop: Decimal | None = None
        if command.order_type is OrderType.TRAIL:
            if self.exits is None:
                return await self.refusals.floor(envelope, UNSUPPORTED_KIND, {"order_type": "TRAIL"})
            # The stop the broker will get, before sizing: the order is sized at it.
            trail_stop = command.stop_price
            touch = self._touch(command.symbol, command.side)
            if trail_stop is None and touch is not None:
                trail_stop = self.exits.initial_stop(
                    command.side,
                    touch,
                    trail_amount=command.trail_amount,
                    trail_percent=command.trail_percent,
                )
            if trail_stop is not None and trail_stop <= 0:
                # A trail as wide as the price: a stop no broker takes, and no loss to size from.
                stop_detail: dict[str, object] = {"initial_stop": str(trail_stop), "touch": str(touch)}
                return await self.refusals.floor(envelope, TRAIL_STOP_NOT_POSITIVE, stop_detail)
            if trail_stop is not None:
                detail["initial_stop"] = str(trail_stop)
        protective = self._protective_limit(command, trail_stop)
        if protective is not None:
            # Sent bounded at this limit and sized at it: a MKT, STP or TRAIL entry never walks
            # the book past what the limits allow (trading.protective_limits).
            detail[PROTECTIVE_LIMIT] = str(protective)
        fills = self._fills(command, trail_stop, protective)
        if fills is None:
            return await self.refusals.floor(envelope, NO_PRICE, {"symbol": command.symbol})
        price = fills.high
        detail["entry_price"] = str(price)
        if fills.low != fills.high:
            detail["lowest_fill_price"] = str(fills.low)

        unprotected = False
        if command.kind is CommandKind.ENTER and command.edge is None:
            # A manual order: no edge to size from; the trader's quantity or nothing.
            assert command.quantity is not None
            quantity, stop = command.quantity, command.stop_loss
            unprotected = stop is None
            detail["sizing"] = "manual"
            if stop is not None:
                detail["stop_loss"] = str(stop)
        elif command.kind is CommandKind.ENTER:
            assert command.edge is not None
            try:
                bankroll = await self.broker.net_liquidation(command.account)
            except NotConnected:
                return await self.refusals.floor(
                    envelope, NO_BANKROLL, {"detail": "no net liquidation reported"}
                )
            try:
                size = size_order(
                    profile,
                    bankroll=bankroll,
                    side=command.side,
                    entry_price=fills,
                    stop_price=command.edge.stop_price,
                    p=command.edge.p,
                    b=command.edge.b,
                    max_quantity=command.quantity,
                )
            except ValueError as exc:
                return await self.refusals.floor(envelope, SIZING_INVALID, {"detail": str(exc)})
            detail.update(bankroll=str(bankroll), binding=size.binding, kelly_f=str(size.f_star))
            if size.reason is not None:
                return await self.refusals.floor(envelope, size.reason, detail)
            quantity, stop = size.quantity, command.edge.stop_price
        else:
            assert command.quantity is not None
            quantity, stop = command.quantity, None

        order_spans.sized()
        exit_only = command.kind is CommandKind.EXIT
        proposed = ProposedOrder.over(
            command.symbol,
            command.side,
            quantity,
            fills,
            stop,
            reduce_only=exit_only,
            unprotected=unprotected,
        )
        snapshot = self._snapshot(command.account, command.symbol)
        decision = check_order(profile, proposed, snapshot)
        if not decision.approved:
            assert decision.reason is not None
            return await self.refusals.floor(
                envelope, decision.reason.value, {**detail, "quantity": quantity}
            )

        decided_ns = time.perf_counter_ns()
        order_spans.decided(decided_ns)
        committed = _Committed(
            envelope, quantity, trail_stop, protective, profile, proposed, snapshot.trading_state
        )
        unconfirmed = UnconfirmedAppend(envelope, lambda: self._send_committed(committed, None))
        order = FloorOrder.from_command(command, quantity, protective)
        # Counted as working from here, not from the broker write: the next command may be
        # decided while this commit is in flight (hotpath.overlap), and its risk checks must
        # see this order. Taken back below if the order does not reach the broker.
        # A command delivered again (its offset not committed before a crash or a handover) is
        # counted already, as working: its refusal by the ledger below must not take it back.
        counted = self.book.order_working(order)
        try:
            overlap.release()  # nothing awaited before the append: its entry is queued first
            # Write-ahead: committed when this returns, sized quantity included, before the
            # broker sees anything. A restart re-sends from this entry alone.
            entry = await self._append_accepted(
                envelope, quantity, {**detail, "quantity": quantity}, unconfirmed
            )
        except RefusedByLedger as exc:
            if counted:
                self.book.order_done(order.account, order.command_id)
            return await self.refusals.by_ledger(exc, envelope, source)
        except BaseException:
            if counted:
                self.book.order_done(order.account, order.command_id)
            raise
        stamps = _Stamps(produce_ts_ms, intake_ns, decided_ns, entry.committed_ns, entry.seq)
        order_spans.committed(entry.committed_ns)
        return await self._send_committed(committed, stamps, order)

    async def _send_committed(
        self, committed: _Committed, stamps: _Stamps | None, reserved: FloorOrder | None = None
    ) -> Outcome:
        """From the committed entry to the broker: the breaker checked again, ``place``, the
        Exit Manager, ``orders.events``. ``stamps`` None: the entry's commit was found on a
        later delivery (its append lost its answer), so no latency sample is taken.

        Whatever fails here, the entry stands: an order not written to the broker ends
        ``rejected: intake.internal_error`` in its state rows (so no restart sends it) and is
        no longer counted as working; one already written stays working and the failure is a
        critical ops event. ``reserved``: the order as intake already counts it working."""
        command = committed.envelope.command
        order = reserved
        if order is None:
            order = FloorOrder.from_command(command, committed.quantity, committed.protective_limit)
        sent = False
        try:
            self.orders[order.command_id] = order
            self.parents.slice_accepted(order)
            if stamps is None and not self.replay.window.contains(command.issued_at, datetime.now(UTC)):
                # Its commit was found only after the ledger came back: intent older than the
                # sentry's window is not executed now (as a restart would not send it either).
                return await self._resumable(committed.envelope, lambda: self._unsent(order, sentry.STALE))
            check_again = stamps is None or self.breaker.state is not committed.trading_state
            # The breaker moved while this order waited for its commit (or the ledger was away
            # meanwhile): its cancel-all may already be out, positions may have moved, and an
            # order sent now would outlive them.
            clearance = self.exit_clearance(order) if self.exit_clearance is not None else None
            if clearance is not None:
                # A desk's exit the floor's stops overlap: not written until the stops withdrawn
                # for it have ended at the broker, and checked again on the position they left
                # (one that filled first closed it).
                if not await clearance:
                    return await self._resumable(
                        committed.envelope, lambda: self._unsent(order, STOP_NOT_WITHDRAWN)
                    )
                check_again = True
            if check_again:
                late = check_order(committed.profile, committed.proposed, self._snapshot_besides(order))
                if not late.approved:
                    assert late.reason is not None
                    reason = late.reason.value
                    return await self._resumable(committed.envelope, lambda: self._unsent(order, reason))
            try:
                sent_order = broker_order(
                    command, committed.quantity, committed.trail_stop, committed.protective_limit
                )
                placement = self.broker.place(sent_order)
            except OrderInvalid as exc:
                log.error("broker refused %s as invalid: %s", order.command_id, exc)
                return await self._resumable(committed.envelope, lambda: self._unsent(order, BROKER_INVALID))
            sent = True
            return await self._sent(committed, order, placement, stamps)
        except Exception as exc:
            if ledger_unreachable(exc) or sent:
                raise
            log.exception("intake failed on %s after its ledger entry, before the broker", order.command_id)
            detail = failure_detail(exc)
            return await self._resumable(
                committed.envelope, lambda: self._unsent(order, INTERNAL_ERROR, detail)
            )
        finally:
            if not sent:
                self.book.order_done(order.account, order.command_id)

    async def _sent(
        self, committed: _Committed, order: FloorOrder, placement: Placement, stamps: _Stamps | None
    ) -> Outcome:
        command = committed.envelope.command
        write_ns = placement.write_ns if placement.sent else time.perf_counter_ns()
        if self.spans is not None:  # after the write: its trace's spans are made from stamps
            self.spans.order_sent(order, write_ns or time.perf_counter_ns())
        order.broker_order_id = placement.order_id
        order.unacknowledged_since_ns = write_ns
        if committed.trail_stop is not None:
            offset = None
            if committed.protective_limit is not None:
                offset = protective_limits.limit_offset(committed.trail_stop, committed.protective_limit)
            self.trail(command, committed.quantity, committed.trail_stop, committed.profile, offset)
        self.book.order_working(order)
        timing = None
        if stamps is not None:
            timing = Timing(
                command_id=command.command_id,
                produce_ts_ms=stamps.produce_ts_ms,
                intake_ns=stamps.intake_ns,
                ledgered_ns=stamps.committed_ns,
                write_ns=write_ns,
                write_wall_ns=write_ns + self._wall_offset_ns,
                ledger_seq=stamps.seq,
                decided_ns=stamps.decided_ns,
            )
            # When the loop next turns, like the order's spans (asked for first, so made first:
            # the order's trace is its measurements' exemplar), after the orders a group commit
            # released with it are written too.
            asyncio.get_running_loop().call_soon(self._record_latencies, order, timing)
            if self.on_timing is not None:
                self.on_timing(timing)
        self.metrics.orders_sent.add(1)
        await self._publish(order.event(EventKind.ACCEPTED))
        return Outcome(command.command_id, None, timing)

    def _record_latencies(self, order: FloorOrder, timing: Timing) -> None:
        traced = in_trace(order.span_context)
        self.metrics.intake_to_write.record(timing.intake_to_write_us / 1e6, context=traced)
        appended_s = max(0, timing.ledgered_ns - timing.decided_ns) / 1e9
        self.metrics.ledger_append.record(appended_s, context=traced)
        if timing.produce_to_write_us is not None:
            signal_s = max(0.0, timing.produce_to_write_us) / 1e6
            self.metrics.signal_to_broker.record(signal_s, context=traced)

    async def _slice_refused(self, envelope: SignedCommand) -> Outcome | None:
        """The refusal of a slice whose parent is unknown, elsewhere, done or too small for it."""
        command = envelope.command
        assert command.parent_id is not None
        parent = await self.parents.get(command.parent_id)
        taken = self.parents.taken(parent) if parent is not None else 0
        author = self._keys.get(parent.signer) if parent is not None else None
        if parent is not None and author is not None and author.revoked:
            # Stopped, whether or not the stop was ledgered yet (or could be: no control key).
            parent = dataclasses.replace(parent, stopped=parents.STOPPED_BY_REVOCATION)
        refusal = parents.slice_refusal(command, parent, taken)
        if refusal is None:
            return None
        detail = {"parent_id": command.parent_id, "taken": taken, "quantity": command.quantity}
        return await self._refuse(envelope, refusal, detail)

    async def resend_refusal(
        self,
        command: Command,
        quantity: int,
        trail_stop: Decimal | None,
        protective_limit: Decimal | None = None,
    ) -> str | None:
        """Why an order an earlier process ledgered (sized at ``quantity``, bounded at its
        ledgered ``protective_limit``) must not go to the broker now, by the checks its command
        met here: the breaker, the symbol, the profile, the prices it can fill at and the risk
        limits, over the account as it stands now (positions, working orders, price staleness);
        None: it may go. The order itself must not be among the account book's working orders
        while it is checked."""
        assert command.symbol is not None and command.side is not None
        if self.breaker.halted:
            return Refusal.HALTED.value
        if not self.trades(command.symbol):
            return UNKNOWN_SYMBOL
        profile = await self._profile(command.account)
        if profile is None:
            return NO_PROFILE
        fills = self._fills(command, trail_stop, protective_limit)
        if fills is None:
            return NO_PRICE
        stop: Decimal | None = None
        unprotected = False
        if command.kind is CommandKind.ENTER:
            stop = command.edge.stop_price if command.edge is not None else command.stop_loss
            unprotected = command.edge is None and stop is None
        proposed = ProposedOrder.over(
            command.symbol,
            command.side,
            quantity,
            fills,
            stop,
            reduce_only=command.kind is CommandKind.EXIT,
            unprotected=unprotected,
        )
        decision = check_order(profile, proposed, self._snapshot(command.account, command.symbol))
        return None if decision.reason is None else decision.reason.value

    def trail(
        self,
        command: Command,
        quantity: int,
        stop: Decimal,
        profile: RiskProfile | None,
        limit_offset: Decimal | None = None,
    ) -> None:
        """Hand a TRAIL order working at ``stop`` to the Exit Manager. An entry's stop moves only
        as far as its sizing still holds (:func:`trading.trailing.entry_bound`; with no
        profile, not at all); an exit's freely. ``limit_offset``: an entry sent as a stop-limit
        (:func:`trading.protective_limits.limit_offset`), whose limit moves with its stop."""
        assert command.symbol is not None and command.side is not None
        if self.exits is None:
            return
        bound = None
        if command.kind is CommandKind.ENTER:
            protective = command.edge.stop_price if command.edge is not None else command.stop_loss
            if profile is None:
                bound = stop
            else:
                # Without a protective stop the whole notional is the risk: capped by both limits.
                cap = profile.max_trade_size
                if protective is None:
                    cap = min(cap, profile.max_dollar_risk)
                bound = entry_bound(command.side, quantity, protective, cap, DEFAULT_TICK)
        self.exits.track(
            command.command_id,
            command.symbol,
            command.side,
            stop,
            trail_amount=command.trail_amount,
            trail_percent=command.trail_percent,
            bound=bound,
            limit_offset=limit_offset,
        )

    async def _unsent(
        self, order: FloorOrder, reason: str, detail: dict[str, object] | None = None
    ) -> Outcome:
        """An order ledgered as accepted that does not go to the broker after all: its
        ``rejected`` record is what recovery and reconciliation read, so it is never re-sent
        (written before intake moves on and the record's offset is committed)."""
        order.end(Rejected(reason))
        if detail:
            log.error("%s not sent: %s %s", order.command_id, reason, detail)
        await self._record_durably(order.event(EventKind.REJECTED, reason=reason))
        self.metrics.commands_refused.add(1, {"reason": reason})
        return Outcome(order.command_id, reason)


@dataclass(frozen=True)
class _Committed:
    """What an accepted order was decided with, to carry it from its ledger entry to the broker."""

    envelope: SignedCommand
    quantity: int
    trail_stop: Decimal | None
    protective_limit: Decimal | None
    """The limit a MKT, STP or TRAIL entry is sent with (None: sent as signed)."""
    profile: RiskProfile
    proposed: ProposedOrder
    trading_state: TradingState
    """The breaker's state the risk gate saw: a change by the broker write means a new check."""


@dataclass(frozen=True)
class _Stamps:
    produce_ts_ms: int | None
    intake_ns: int
    decided_ns: int
    committed_ns: int
    seq: int
