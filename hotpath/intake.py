"""The hot path's intake: one signed command from ``agent.commands`` to a broker socket write.

Steps, in order, each refusal named: sentry → circuit-breaker state → the symbol (one the
floor does not trade is ``unknown_symbol``) → Kelly sizer → risk limits → ledger append,
committed (write-ahead) → broker ``place`` → ``orders.events``. The sizer and the risk limits
both work over every price the order can fill at given the touch
(:mod:`trading.fill_prices`); a TRAIL's initial stop is computed first, and the order sized
at it.

An ``iceberg`` command is a parent, not an order: sentry → breaker → the parent's risk check
(:func:`trading.risk.check_parent`, the total against the position limits) → ledger append →
one ``accepted`` record carrying the signed envelope, from which the Temporal bridge starts the
Sniper. No sizing and no broker call: each slice is an ``enter`` command of its own and goes
through the whole path above, per-order limits and sizer included.

A ``breaker_trip`` / ``breaker_arm`` command (an operator's, floor-wide) goes sentry → ledger →
the breaker's state (:mod:`hotpath.breaker_commands`); the breaker's own state never refuses it.

A slice (an ``enter`` naming a ``parent_id``) must belong to a live parent of the same account,
symbol and side and fit in what is left of its total; an iceberg control (``iceberg_amend`` /
``_pause`` / ``_resume`` / ``_cancel``) must come from the parent's author or an operator: it
is ledgered and published as a control record for the bridge to hand to the Iceberg, which
reads it back from the ledger. Only the Sniper signs slices, and each of the floor's own
service keys signs only what its agent does (:mod:`trading.iceberg_parents`). A revoked key's
running parents are stopped: a cancel signed by the floor's control key is ledgered, their
working slices pulled, the Iceberg told.

Where each refusal is recorded is :mod:`hotpath.refusals`' business.

Nothing here awaits Temporal or the API; the only awaits between intake and the socket write
are the broker's cached net liquidation and the ledger commit (write-ahead is the point).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from brokers.base import Broker, BrokerOrder, NotConnected, OrderInvalid, UnknownOrderRef
from hotpath.account import AccountBook
from hotpath.breaker_commands import BreakerCommands
from hotpath.breaker_log import BreakerLog
from hotpath.circuit import CircuitBreaker
from hotpath.exit_manager import DEFAULT_TICK, ExitManager
from hotpath.floor_orders import FloorOrder
from hotpath.icebergs import IcebergParents, control_record
from hotpath.outcomes import Outcome, Timing
from hotpath.ports import EventProducer, HotLedger, RefusedByLedger
from hotpath.publish import publish_order_event
from hotpath.refusals import Refusals, envelope_event, loose_command
from ledger.iceberg_parents import control_detail
from observability.security import SecurityRecorder
from observability.telemetry import Metrics
from trading import iceberg_parents as parents
from trading import sentry
from trading.commands import (
    BREAKER_KINDS,
    ICEBERG_CONTROLS,
    Command,
    CommandInvalid,
    CommandKind,
    OrderType,
    Side,
    TimeInForce,
    utc_now_ms,
)
from trading.fill_prices import FillRange, fill_range
from trading.order_events import EventKind, OrderEvent
from trading.orders import Rejected
from trading.risk import AccountSnapshot, ProposedOrder, Refusal, check_order, check_parent
from trading.sentry import RegisteredKey, ReplayGuard
from trading.session_calendar import SessionCalendar
from trading.signing import EnvelopeInvalid, SignedCommand, sign_command
from trading.sizing import NO_BANKROLL, RiskProfile, size_order
from trading.symbols import UNKNOWN_SYMBOL, unknown_symbol_detail
from trading.trailing import entry_bound

log = logging.getLogger(__name__)

UNSUPPORTED_KIND = "intake.unsupported_kind"
NO_PROFILE = "risk.no_profile"
NO_PRICE = "risk.no_reference_price"
UNKNOWN_ORDER = "intake.unknown_order"
BROKER_INVALID = "broker.order_invalid"
SIZING_INVALID = "sizing.invalid"
TRAIL_STOP_NOT_POSITIVE = "risk.trail_stop_not_positive"
"""A TRAIL whose trail, taken from the touch, puts its initial stop at or below zero."""
ICEBERG_PARENT = "iceberg_parent"
"""``role`` in the ledger detail of an accepted iceberg command: a parent, never sent itself."""
FLOOR_CONTROL = "floor-control"
"""The floor's own key for the controls it issues itself (stopping a revoked key's icebergs)."""
SECURITY_REASONS = frozenset(
    {
        parents.FLOOR_KEY_OUT_OF_SCOPE,
        parents.UNKNOWN_PARENT,
        parents.PARENT_MISMATCH,
        parents.NOT_ALLOWED,
        parents.NOT_SLICER,
        parents.SLICE_OFF_TERMS,
    }
)
"""Refusals that point at a forged, confused or compromised signer: also security events."""


class Intake:
    def __init__(
        self,
        *,
        broker: Broker,
        ledger: HotLedger,
        producer: EventProducer,
        security: SecurityRecorder,
        breaker: CircuitBreaker,
        book: AccountBook,
        orders: dict[str, FloorOrder],
        metrics: Metrics,
        replay: ReplayGuard | None = None,
        on_timing: Callable[[Timing], None] | None = None,
        exits: ExitManager | None = None,
        emit: Callable[[OrderEvent], None] | None = None,
        breaker_log: BreakerLog | None = None,
        symbols: Iterable[str] | None = None,
        control_key: Ed25519PrivateKey | None = None,
        floor_keys: parents.FloorKeys | None = None,
        calendar: SessionCalendar | None = None,
    ) -> None:
        self.broker = broker
        self.ledger = ledger
        self.producer = producer
        self.security = security
        self.breaker = breaker
        self.book = book
        self.orders = orders
        self.metrics = metrics
        self.replay = replay or ReplayGuard()
        self.on_timing = on_timing
        self.exits = exits
        self.emit = emit
        """Queues an ``orders.events`` record for the ledger and Kafka (None: write it inline)."""
        self.symbols: frozenset[str] | None = None if symbols is None else frozenset(symbols)
        """The symbols the floor trades (None: any); an order in another is ``unknown_symbol``."""
        self.refusals = Refusals(ledger, security, metrics, self._publish, on_revoked=self._forget_key)
        self.breaker_commands = BreakerCommands(breaker, ledger, self.refusals, breaker_log)
        self.parents = IcebergParents(ledger, orders)
        self.control_key = control_key
        """Signs the stops of a revoked key's icebergs (``floor-control``); None: such parents
        still have their working slices pulled, but no stop can be ledgered."""
        self.floor_keys = floor_keys or parents.FloorKeys()
        """Which service agents sign slices and expiry cancels (the worker's configuration)."""
        self.calendar = calendar or SessionCalendar()
        """When a DAY order's session closes (the lifecycle canceller may cancel it from then)."""
        self._revocations_handled: set[str] = set()
        """Revoked keys whose icebergs this process has stopped (or found none of)."""
        self._keys: dict[str, RegisteredKey] = {}
        self._profiles: dict[str, RiskProfile] = {}
        # perf_counter_ns and time_ns differ by a constant within a process; measure it once.
        self._wall_offset_ns = time.time_ns() - time.perf_counter_ns()

    # --- start-up ---------------------------------------------------------------------------

    async def warm(self) -> None:
        """Load keys and the replay window from the ledger (before consuming anything)."""
        await self.refresh_keys()
        await self.refresh_profiles()
        since = datetime.now(UTC) - self.replay.window.max_age
        for entry in await self.ledger.recent_commands(since):
            self.replay.remember(entry.agent_id, entry.nonce, entry.signature_hash, entry.issued_at)

    def _forget_key(self, key_id: str) -> None:
        """The ledger refused this key as revoked: read it afresh at its next command."""
        self._keys.pop(key_id, None)

    async def refresh_keys(self) -> None:
        """Reload the key registry (revocations take effect at the next refresh). Every revoked
        key has its running icebergs stopped, once per process (at start that is every revoked
        key: a revocation may have come while it was down)."""
        self._keys = {k.key_id: k for k in await self.ledger.keys()}
        for key in self._keys.values():
            if key.revoked and key.key_id not in self._revocations_handled:
                try:
                    await self.stop_icebergs_of(key.key_id)
                except Exception:
                    # The registry reload must go on; the next reload (or restart) tries again.
                    log.exception("could not stop the icebergs of revoked key %s", key.key_id)
                    continue
                self._revocations_handled.add(key.key_id)

    async def refresh_profiles(self) -> None:
        """Reload every account's risk profile (a change takes effect at the next refresh)."""
        self._profiles = dict(await self.ledger.risk_profiles())

    # --- one record -------------------------------------------------------------------------

    async def handle(self, value: bytes, *, produce_ts_ms: int | None = None, source: str = "") -> Outcome:
        intake_ns = time.perf_counter_ns()
        try:
            return await self._handle(value, intake_ns, produce_ts_ms, source)
        finally:
            # Counted once the record is dealt with: the counter costs ~20 µs, not on the path.
            self.metrics.commands_received.add(1)

    async def _handle(self, value: bytes, intake_ns: int, produce_ts_ms: int | None, source: str) -> Outcome:
        try:
            data = json.loads(value)
            envelope = sentry.read_envelope(data)
        except sentry.Refused as exc:
            return await self.refusals.sentry(exc.verdict, loose_command(data), data, source)
        except (ValueError, TypeError, RecursionError, EnvelopeInvalid, CommandInvalid) as exc:
            field = getattr(exc, "field", "envelope")
            return await self.refusals.malformed(f"{field}: {getattr(exc, 'reason', exc)}", source)

        now = datetime.now(UTC)
        self.replay.forget_older_than_window(now)
        key = self._keys.get(envelope.signer)
        if key is None:
            key = await self.ledger.key(envelope.signer)
            if key is not None:
                self._keys[key.key_id] = key
        verdict = sentry.admit(envelope, key, self.replay, now)
        # A copy of a ledgered envelope is a duplicate delivery, however old: see sentry's notes.
        if verdict.reason in sentry.REDELIVERY_SUSPECTS and await self.ledger.holds_signature(
            envelope.signature_hash
        ):
            return await self.refusals.redelivered(envelope, source)
        if not verdict.accepted:
            return await self.refusals.sentry(verdict, envelope.command, data, source, envelope)

        try:
            return await self._admitted(envelope, intake_ns, produce_ts_ms, source)
        except Exception:
            # Not decided (the ledger unreachable, say): the same envelope delivered again must
            # be decided afresh, not refused as a replay. Had its entry been committed after
            # all, the ledger's unique indexes still catch the copy.
            command = envelope.command
            self.replay.release(command.agent_id, command.nonce, envelope.signature_hash)
            raise

    async def _admitted(
        self, envelope: SignedCommand, intake_ns: int, produce_ts_ms: int | None, source: str
    ) -> Outcome:
        command = envelope.command
        key = self._keys.get(envelope.signer)
        role = key.role if key is not None else "agent"
        signer_agent = key.agent_id if key is not None else command.agent_id
        out_of_scope = parents.floor_key_refusal(command, role, signer_agent, self.floor_keys)
        if out_of_scope is not None:
            return await self._refuse(envelope, out_of_scope, {"role": role, "kind": command.kind.value})
        if command.kind in ICEBERG_CONTROLS:
            assert key is not None
            return await self._control(envelope, key.agent_id, role, source)
        if command.kind in (CommandKind.ENTER, CommandKind.EXIT):
            return await self._order(envelope, intake_ns, produce_ts_ms, source)
        if command.kind is CommandKind.CANCEL:
            return await self._cancel(envelope, source, role)
        if command.kind is CommandKind.CANCEL_ALL:
            return await self._cancel_all(envelope, source)
        if command.kind is CommandKind.ICEBERG:
            return await self._iceberg(envelope)
        if command.kind in BREAKER_KINDS:
            return await self.breaker_commands.handle(envelope, source)
        return await self.refusals.floor(envelope, UNSUPPORTED_KIND, {"kind": command.kind.value})

    # --- the order path ---------------------------------------------------------------------

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
        fills = self._fills(command, trail_stop)
        if fills is None:
            return await self.refusals.floor(envelope, NO_PRICE, {"symbol": command.symbol})
        price = fills.high
        detail["entry_price"] = str(price)
        if fills.low != fills.high:
            detail["lowest_fill_price"] = str(fills.low)

        if command.kind is CommandKind.ENTER:
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

        exit_only = command.kind is CommandKind.EXIT
        proposed = ProposedOrder.over(
            command.symbol, command.side, quantity, fills, stop, reduce_only=exit_only
        )
        snapshot = self._snapshot(command.account, command.symbol)
        decision = check_order(profile, proposed, snapshot)
        if not decision.approved:
            assert decision.reason is not None
            return await self.refusals.floor(
                envelope, decision.reason.value, {**detail, "quantity": quantity}
            )

        decided_ns = time.perf_counter_ns()
        try:
            # Write-ahead: committed when this returns, sized quantity included, before the
            # broker sees anything. A restart re-sends from this entry alone.
            entry = await self.ledger.append_accepted(envelope, quantity, {**detail, "quantity": quantity})
        except RefusedByLedger as exc:
            return await self.refusals.by_ledger(exc, envelope, source)
        order = FloorOrder.from_command(command, quantity)
        self.orders[order.command_id] = order
        self.parents.slice_accepted(order)
        if self.breaker.state is not snapshot.trading_state:
            # The breaker moved while this order waited for its commit: its cancel-all may
            # already be out, and an order sent now would outlive it.
            late = check_order(profile, proposed, self._snapshot(command.account, command.symbol))
            if not late.approved:
                assert late.reason is not None
                return await self._unsent(order, late.reason.value)
        broker_order = _broker_order(command, quantity, trail_stop)
        try:
            placement = self.broker.place(broker_order)
        except OrderInvalid as exc:
            log.error("broker refused %s as invalid: %s", order.command_id, exc)
            return await self._unsent(order, BROKER_INVALID)

        write_ns = placement.write_ns if placement.sent else time.perf_counter_ns()
        order.broker_order_id = placement.order_id
        if trail_stop is not None:
            self.trail(command, quantity, trail_stop, profile)
        self.book.order_working(order)
        timing = Timing(
            command_id=command.command_id,
            produce_ts_ms=produce_ts_ms,
            intake_ns=intake_ns,
            ledgered_ns=entry.committed_ns,
            write_ns=write_ns,
            write_wall_ns=write_ns + self._wall_offset_ns,
            ledger_seq=entry.seq,
            decided_ns=decided_ns,
        )
        self.metrics.orders_sent.add(1)
        self.metrics.intake_to_write_us.record(timing.intake_to_write_us)
        if timing.produce_to_write_us is not None:
            self.metrics.produce_to_write_us.record(max(0.0, timing.produce_to_write_us))
        if self.on_timing is not None:
            self.on_timing(timing)
        await self._publish(order.event(EventKind.ACCEPTED))
        return Outcome(command.command_id, None, timing)

    def trail(self, command: Command, quantity: int, stop: Decimal, profile: RiskProfile | None) -> None:
        """Hand a TRAIL order working at ``stop`` to the Exit Manager. An entry's stop moves only
        as far as its sizing still holds (:func:`trading.trailing.entry_bound`; with no
        profile, not at all); an exit's freely."""
        assert command.symbol is not None and command.side is not None
        if self.exits is None:
            return
        bound = None
        if command.kind is CommandKind.ENTER:
            assert command.edge is not None
            bound = (
                stop
                if profile is None
                else entry_bound(
                    command.side, quantity, command.edge.stop_price, profile.max_trade_size, DEFAULT_TICK
                )
            )
        self.exits.track(
            command.command_id,
            command.symbol,
            command.side,
            stop,
            trail_amount=command.trail_amount,
            trail_percent=command.trail_percent,
            bound=bound,
        )

    async def profile(self, account: str) -> RiskProfile | None:
        """The account's risk profile (cached; read from the ledger the first time)."""
        return await self._profile(account)

    async def _unsent(self, order: FloorOrder, reason: str) -> Outcome:
        """An order ledgered as accepted that does not go to the broker after all: its
        ``rejected`` record is what recovery and reconciliation read, so it is never re-sent."""
        order.end(Rejected(reason))
        await self._publish(order.event(EventKind.REJECTED, reason=reason))
        self.metrics.commands_refused.add(1, {"reason": reason})
        return Outcome(order.command_id, reason)

    # --- iceberg parents -----------------------------------------------------------------------

    async def _iceberg(self, envelope: SignedCommand) -> Outcome:
        command = envelope.command
        assert command.symbol is not None and command.side is not None and command.quantity is not None
        if self.breaker.halted:
            return await self.refusals.floor(envelope, Refusal.HALTED.value, {})
        if not self.trades(command.symbol):
            return await self._unknown_symbol(envelope)
        profile = await self._profile(command.account)
        if profile is None:
            return await self.refusals.floor(envelope, NO_PROFILE, {"account": command.account})
        fills = self._fills(command, None)
        if fills is None:
            return await self.refusals.floor(envelope, NO_PRICE, {"symbol": command.symbol})
        price = fills.high
        total = command.quantity
        detail: dict[str, object] = {
            "role": ICEBERG_PARENT,
            "quantity": total,
            "display_size": command.display_size,
            "reference_price": str(price),
        }
        decision = check_parent(
            profile,
            ProposedOrder(command.symbol, command.side, total, price),
            self._snapshot(command.account, command.symbol),
        )
        if not decision.approved:
            assert decision.reason is not None
            return await self.refusals.floor(envelope, decision.reason.value, detail)
        try:
            await self.ledger.append_accepted(envelope, total, detail)
        except RefusedByLedger as exc:
            return await self.refusals.by_ledger(exc, envelope, "")
        self.parents.accepted(parents.Parent.from_command(command, envelope.signer))
        record = dataclasses.replace(
            FloorOrder.from_command(command, total).event(EventKind.ACCEPTED),
            iceberg_envelope=envelope.to_wire().decode(),
        )
        # Kafka only, not the order-state rows: the parent never reaches the broker, so a state
        # row would read as an order working forever (to recovery and reconciliation alike).
        # The ledger entry committed above is the parent's durable record.
        await publish_order_event(self.producer, record)
        return Outcome(command.command_id, None)

    # --- iceberg slices and controls ---------------------------------------------------------

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

    async def _control(self, envelope: SignedCommand, signer_agent: str, role: str, source: str) -> Outcome:
        command = envelope.command
        assert command.parent_id is not None
        parent = await self.parents.get(command.parent_id)
        taken = self.parents.taken(parent) if parent is not None else 0
        refusal = parents.control_refusal(command, parent, taken, signer_agent=signer_agent, signer_role=role)
        if refusal is not None:
            return await self._refuse(envelope, refusal, {"parent_id": command.parent_id, "taken": taken})
        assert parent is not None
        raised = command.kind is CommandKind.ICEBERG_AMEND and (command.quantity or 0) > parent.total
        if raised and (refused := await self._raised_total_refused(envelope, parent, taken)) is not None:
            return refused
        try:
            await self.ledger.append_accepted(envelope, 0, control_detail(parent, taken=taken))
        except RefusedByLedger as exc:
            return await self.refusals.by_ledger(exc, envelope, source)
        after = self.parents.apply(parent, command)
        await publish_order_event(self.producer, control_record(after, command))
        return Outcome(command.command_id, None)

    async def _raised_total_refused(
        self, envelope: SignedCommand, parent: parents.Parent, taken: int
    ) -> Outcome | None:
        """An amend raising the total is a bigger parent: the position check the parent passed
        at entry (:func:`trading.risk.check_parent`) runs again, over what is not sliced yet
        (what the slices took is in the position and the working orders already)."""
        command = envelope.command
        assert command.quantity is not None
        profile = await self._profile(parent.account)
        if profile is None:
            return await self.refusals.floor(envelope, NO_PROFILE, {"account": parent.account})
        limit = command.limit_price if command.limit_price is not None else parent.limit_price
        fills = fill_range(
            parent.side, None, limit=limit, stop=None, touch=self._touch(parent.symbol, parent.side)
        )
        if fills is None:
            return await self.refusals.floor(envelope, NO_PRICE, {"symbol": parent.symbol})
        unsliced = command.quantity - taken
        decision = check_parent(
            profile,
            ProposedOrder(parent.symbol, parent.side, unsliced, fills.high),
            self._snapshot(parent.account, parent.symbol),
        )
        if decision.approved:
            return None
        assert decision.reason is not None
        detail = {"parent_id": parent.workflow_id, "taken": taken, "quantity": command.quantity}
        return await self.refusals.floor(envelope, decision.reason.value, detail)

    async def stop_icebergs_of(self, key_id: str) -> list[str]:
        """Stop every live iceberg ``key_id`` signed: pull its working slices, ledger an
        ``iceberg_cancel`` signed by the floor's control key, and tell the Iceberg. Returns the
        parents' workflow ids. Idempotent: the stop's command id derives from the parent."""
        stopped: list[str] = []
        for command_id in await self.ledger.icebergs_signed_by(key_id):
            parent = await self.parents.get(parents.parent_workflow_id(command_id))
            if parent is None or parents.done(parent, self.parents.taken(parent)):
                continue
            for order in self.parents.working_slices(parent):
                try:
                    self.broker.cancel(order.command_id)
                except UnknownOrderRef:
                    log.warning("stopping %s: broker does not know %s", parent.workflow_id, order.command_id)
            stopped.append(parent.workflow_id)
            if self.control_key is None:
                log.error(
                    "no %s key: %s's working slices were pulled but its stop is not ledgered and the"
                    " Iceberg not told; provision the key (`floor up` does) and restart the hot path",
                    FLOOR_CONTROL,
                    parent.workflow_id,
                )
                continue
            stop = Command(
                kind=CommandKind.ICEBERG_CANCEL,
                command_id=f"{parent.workflow_id}.stop",
                agent_id=FLOOR_CONTROL,
                account=parent.account,
                nonce=uuid.uuid4().hex,
                issued_at=utc_now_ms(),
                parent_id=parent.workflow_id,
            )
            envelope = sign_command(stop, self.control_key)
            detail = control_detail(parent, reason=parents.STOPPED_BY_REVOCATION, revoked_key=key_id)
            try:
                await self.ledger.append_accepted(envelope, 0, detail)
            except RefusedByLedger as exc:
                log.warning("stop of %s not ledgered again: %s", parent.workflow_id, exc)
                continue
            after = self.parents.apply(parent, stop)
            log.warning("stopped iceberg %s: key %s was revoked", parent.workflow_id, key_id)
            await publish_order_event(self.producer, control_record(after, stop))
        return stopped

    async def _refuse(self, envelope: SignedCommand, reason: str, detail: dict[str, object]) -> Outcome:
        """A floor refusal; one that points at a forged or compromised signer is also a security
        event."""
        outcome = await self.refusals.floor(envelope, reason, detail)
        if reason in SECURITY_REASONS and outcome.reason == reason:
            await self.security.record(
                envelope_event(envelope, reason, "error", json.dumps(detail, default=str, sort_keys=True))
            )
        return outcome

    def _snapshot(self, account: str, symbol: str) -> AccountSnapshot:
        """The account as the risk gate sees it now, working orders in ``symbol`` included."""
        return AccountSnapshot(
            trading_state=self.breaker.state,
            position=self.book.position(account, symbol),
            gross_exposure=self.book.gross_exposure(account),
            open_orders=self.book.open_orders(account),
            price_age_ms=self.book.price_age_ms(symbol),
            working_buy_qty=self.book.working_qty(account, symbol, Side.BUY),
            working_sell_qty=self.book.working_qty(account, symbol, Side.SELL),
            exiting_buy_qty=self.book.working_qty(account, symbol, Side.BUY, exits_only=True),
            exiting_sell_qty=self.book.working_qty(account, symbol, Side.SELL, exits_only=True),
        )

    def trades(self, symbol: str | None) -> bool:
        """True when the floor trades ``symbol`` (every symbol when no list was given)."""
        return self.symbols is None or symbol in self.symbols

    async def _unknown_symbol(self, envelope: SignedCommand) -> Outcome:
        symbol = envelope.command.symbol or ""
        detail = unknown_symbol_detail(symbol, self.symbols or ())
        return await self.refusals.floor(envelope, UNKNOWN_SYMBOL, {"symbol": symbol, "detail": detail})

    def _touch(self, symbol: str, side: Side) -> Decimal | None:
        """The touch an order on ``side`` would take (the ask for a BUY), else the last trade."""
        last = self.book.prices.get(symbol)
        return last.reference(side) if last is not None else None

    def _fills(self, command: Command, trail_stop: Decimal | None) -> FillRange | None:
        """Every price the order can fill at against the current touch
        (:func:`trading.fill_prices.fill_range`); a TRAIL at the stop it is sent with."""
        assert command.symbol is not None and command.side is not None
        stop = trail_stop if command.order_type is OrderType.TRAIL else command.stop_price
        return fill_range(
            command.side,
            command.order_type,
            limit=command.limit_price,
            stop=stop,
            touch=self._touch(command.symbol, command.side),
        )

    async def _profile(self, account: str) -> RiskProfile | None:
        profile = self._profiles.get(account)
        if profile is None:
            profile = await self.ledger.risk_profile(account)
            if profile is not None:
                self._profiles[account] = profile
        return profile

    # --- cancels ----------------------------------------------------------------------------

    async def _cancel(self, envelope: SignedCommand, source: str, role: str) -> Outcome:
        command = envelope.command
        target = command.target_command_id
        assert target is not None
        order = self.orders.get(target)
        if order is None or order.account != command.account:
            return await self.refusals.floor(envelope, UNKNOWN_ORDER, {"target_command_id": target})
        if role == parents.ROLE_SERVICE:
            closes = None if order.accepted_at is None else self.calendar.close_after(order.accepted_at)
            refusal = parents.floor_cancel_refusal(
                command.agent_id,
                self.floor_keys,
                target_is_slice=order.parent_id is not None,
                target_tif=order.tif,
                session_closed=closes is not None and datetime.now(UTC) >= closes,
            )
            if refusal is not None:
                detail: dict[str, object] = {
                    "target_command_id": target,
                    "tif": order.tif,
                    "session_close": str(closes),
                }
                return await self._refuse(envelope, refusal, detail)
        try:
            await self.ledger.append_accepted(envelope, 0, {"target_command_id": target})
        except RefusedByLedger as exc:
            return await self.refusals.by_ledger(exc, envelope, source)
        try:
            self.broker.cancel(target)
        except UnknownOrderRef:
            return Outcome(command.command_id, UNKNOWN_ORDER)
        return Outcome(command.command_id, None)

    async def _cancel_all(self, envelope: SignedCommand, source: str) -> Outcome:
        """Cancel the account's working orders (of one symbol, if named). Never the broker's
        global cancel: that reaches every account on the connection and belongs to the breaker."""
        command = envelope.command
        try:
            await self.ledger.append_accepted(envelope, 0, {"symbol": command.symbol})
        except RefusedByLedger as exc:
            return await self.refusals.by_ledger(exc, envelope, source)
        for order in list(self.orders.values()):
            if order.done or order.account != command.account:
                continue
            if command.symbol is not None and order.symbol != command.symbol:
                continue
            try:
                self.broker.cancel(order.command_id)
            except UnknownOrderRef:
                log.warning("cancel_all: broker does not know %s", order.command_id)
        return Outcome(command.command_id, None)

    async def _publish(self, event: OrderEvent) -> None:
        if self.emit is not None:
            self.emit(event)
            return
        await self.ledger.record_order_event(event)
        await publish_order_event(self.producer, event)


def _broker_order(command: Command, quantity: int, trail_stop: Decimal | None) -> BrokerOrder:
    """The order the broker sees. A TRAIL command goes out as a STP order at its initial stop;
    the Exit Manager trails it (see :mod:`hotpath.exit_manager`)."""
    assert command.symbol is not None and command.side is not None
    if trail_stop is not None:
        return BrokerOrder(
            order_ref=command.command_id,
            account=command.account,
            symbol=command.symbol,
            side=command.side,
            quantity=quantity,
            order_type=OrderType.STP,
            tif=command.tif or TimeInForce.DAY,
            stop_price=trail_stop,
        )
    return BrokerOrder(
        order_ref=command.command_id,
        account=command.account,
        symbol=command.symbol,
        side=command.side,
        quantity=quantity,
        order_type=command.order_type or OrderType.LMT,
        tif=command.tif or TimeInForce.DAY,
        limit_price=command.limit_price,
        stop_price=command.stop_price,
        trailing_amount=command.trail_amount,
        trailing_percent=command.trail_percent,
    )
