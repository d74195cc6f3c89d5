"""The hot path's intake: one signed command from ``agent.commands`` to a broker socket write.

Every command goes through the sentry first (signature, key registry, replay window: refused
here, each refusal named); what it lets in goes, by kind, to the path that handles it:

- ``enter`` / ``exit``: :mod:`hotpath.order_commands` (breaker → the symbol, one the floor does
  not trade is ``unknown_symbol`` → Kelly sizer → risk limits → ledger append, committed
  (write-ahead) → broker ``place`` → ``orders.events``); a slice (an ``enter`` naming a
  ``parent_id``) must belong to a live parent of the same account, symbol and side and fit in
  what is left of its total;
- ``iceberg`` and its controls: :mod:`hotpath.iceberg_commands` (a parent is ledgered, never
  sent; each slice is an ``enter`` of its own, per-order limits and sizer included);
- ``cancel`` / ``cancel_all``: :mod:`hotpath.cancel_commands`;
- ``breaker_trip`` / ``breaker_arm`` (an operator's, floor-wide): ledger → the breaker's state
  (:mod:`hotpath.circuit_breaker_commands`); the breaker's own state never refuses it.

What the paths share (the touch, the risk snapshot, the profile, refusing, publishing) is
:mod:`hotpath.intake_steps`. Only the Sniper signs slices, and each of the floor's own service
keys signs only what its agent does (:mod:`trading.iceberg_parents`). Where each refusal is
recorded is :mod:`hotpath.refusals`' business.

Nothing here awaits Temporal or the API; the only awaits between intake and the socket write
are the broker's cached net liquidation and the ledger commit (write-ahead is the point).
While an order waits for that commit the command loop may hand in the next record: which
commands may overlap that way, and why it decides as one at a time would, is
:mod:`hotpath.overlap`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from brokers.base import Broker
from hotpath import order_spans, overlap
from hotpath.account import AccountBook
from hotpath.cancel_commands import CancelCommands
from hotpath.circuit_breaker import CircuitBreaker
from hotpath.circuit_breaker_commands import BreakerCommands
from hotpath.circuit_breaker_log import BreakerLog
from hotpath.exit_manager import ExitManager
from hotpath.floor_orders import FloorOrder
from hotpath.iceberg_commands import IcebergCommands
from hotpath.icebergs import IcebergParents
from hotpath.intake_steps import UNSUPPORTED_KIND, UnconfirmedAppend, ledger_unreachable
from hotpath.order_commands import OrderCommands
from hotpath.order_spans import OrderSpans
from hotpath.outcomes import Outcome, Timing
from hotpath.ports import EventProducer, HotLedger
from hotpath.refusals import Refusals, loose_command
from observability.security import SecurityRecorder
from observability.telemetry import Metrics
from trading import iceberg_parents as parents
from trading import sentry
from trading.commands import BREAKER_KINDS, ICEBERG_CONTROLS, CommandInvalid, CommandKind
from trading.order_events import OrderEvent
from trading.protective_limits import DEFAULT_COLLAR_BPS, check_collar
from trading.sentry import RegisteredKey, ReplayGuard
from trading.session_calendar import SessionCalendar
from trading.signing import EnvelopeInvalid, SignedCommand
from trading.sizing import RiskProfile

log = logging.getLogger(__name__)


class Intake(OrderCommands, IcebergCommands, CancelCommands):
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
        publish_only: Callable[[OrderEvent], None] | None = None,
        breaker_log: BreakerLog | None = None,
        symbols: Iterable[str] | None = None,
        control_key: Ed25519PrivateKey | None = None,
        floor_keys: parents.FloorKeys | None = None,
        calendar: SessionCalendar | None = None,
        market_collar_bps: Decimal = DEFAULT_COLLAR_BPS,
        spans: OrderSpans | None = None,
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
        self.publish_only = publish_only
        """Queues a Kafka-only record, retried until acknowledged (None: sent at once)."""
        self.symbols: frozenset[str] | None = None if symbols is None else frozenset(symbols)
        self.last_intake_ns = time.perf_counter_ns()
        """When the latest command was taken (``perf_counter_ns``): the process is quiet when
        this is old (:class:`observability.gc_pauses.IdleCollector`)."""
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
        self.spans = spans
        """Makes the commands' spans (None: tracing off)."""
        self.market_collar_bps = check_collar(market_collar_bps)
        """The collar of entries' protective limits (:mod:`trading.protective_limits`)."""
        self._revocations_handled: set[str] = set()
        """Revoked keys whose icebergs this process has stopped (or found none of)."""
        self._keys: dict[str, RegisteredKey] = {}
        self._profiles: dict[str, RiskProfile] = {}
        self._unconfirmed: dict[str, UnconfirmedAppend] = {}
        self.exit_clearance: Callable[[FloorOrder], Awaitable[bool] | None] | None = None
        """When a desk's exit may be written to the broker (None: at once; an awaitable: once
        it is True, the floor's stops it replaces having ended there; see
        :meth:`hotpath.protective_stops.ProtectiveStops.clearance`)."""
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
        # A copy: intake adds and forgets keys in this mapping while the stops below are awaited.
        for key in list(self._keys.values()):
            if key.revoked and key.key_id not in self._revocations_handled:
                try:
                    await self.stop_icebergs_of(key.key_id)
                except Exception:
                    # The registry reload must go on; the next reload (or restart) tries again.
                    log.exception("could not stop the icebergs of revoked key %s", key.key_id)
                    continue
                self._revocations_handled.add(key.key_id)

    @property
    def profiles(self) -> dict[str, RiskProfile]:
        """The risk profiles in force now, by account (what the last reload read)."""
        return self._profiles

    async def refresh_profiles(self) -> None:
        """Reload every account's risk profile (a change takes effect at the next refresh)."""
        self._profiles = dict(await self.ledger.risk_profiles())

    # --- one record -------------------------------------------------------------------------

    async def handle(
        self,
        value: bytes,
        *,
        produce_ts_ms: int | None = None,
        source: str = "",
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> Outcome:
        """Decide one record, durably: when this returns, the command is in the ledger (an
        entry, or a recorded refusal), so its offset may be committed. It raises only when the
        ledger is unreachable (then nothing is decided: hold the record and hand it in again)
        or when even recording an ``intake.internal_error`` failed. ``headers``: the record's,
        whose trace context the command's spans continue (:mod:`hotpath.order_spans`)."""
        intake_ns = self.last_intake_ns = time.perf_counter_ns()
        clock = self.spans.clock(intake_ns, headers) if self.spans is not None else None
        outcome: Outcome | None = None
        failure: BaseException | None = None
        try:
            outcome = await self._handle(value, intake_ns, produce_ts_ms, source)
            return outcome
        except Exception as exc:
            if ledger_unreachable(exc):
                failure = exc
                raise
            # A failure before any envelope was admitted (those after are the envelope's own).
            log.exception("intake failed on %s", source)
            outcome = await self.refusals.unexpected(exc, source)
            return outcome
        finally:
            # Counted once the record is dealt with: the counter costs ~20 µs, not on the path.
            # By outcome; the refusals' reasons are floor.commands.refused's.
            self.metrics.commands_received.add(1, {"outcome": _outcome_label(outcome, failure)})
            if clock is not None and self.spans is not None:
                self.spans.finished(clock, outcome, failure)

    async def _handle(self, value: bytes, intake_ns: int, produce_ts_ms: int | None, source: str) -> Outcome:
        try:
            data = json.loads(value)
            envelope = sentry.read_envelope(data)
        except sentry.Refused as exc:
            return await self.refusals.sentry(exc.verdict, loose_command(data), data, source)
        except (ValueError, TypeError, RecursionError, EnvelopeInvalid, CommandInvalid) as exc:
            field = getattr(exc, "field", "envelope")
            return await self.refusals.malformed(f"{field}: {getattr(exc, 'reason', exc)}", source)

        if envelope.signature_hash in self._unconfirmed:
            await overlap.settle()  # whatever came before it is decided first, as it was then
            try:
                # The envelope of an append that lost its answer: carried on from its entry, if any.
                settled = await self._settle(envelope)
            except Exception as exc:
                if ledger_unreachable(exc):
                    raise
                log.exception("intake failed on %s at %s", envelope.command.command_id, source)
                return await self.refusals.internal_error(envelope, exc)
            if settled is not None:
                return settled
        now = datetime.now(UTC)
        self.replay.forget_older_than_window(now)
        key = self._keys.get(envelope.signer)
        if key is None:
            key = await self.ledger.key(envelope.signer)
            if key is not None:
                self._keys[key.key_id] = key
        verdict = sentry.admit(envelope, key, self.replay, now)
        # A copy of a ledgered envelope is a duplicate delivery, however old: see sentry's notes.
        if verdict.reason in sentry.REDELIVERY_SUSPECTS:
            # Its original may be a record just before it, still committing: let it land first.
            await overlap.settle()
            if await self.ledger.holds_signature(envelope.signature_hash):
                return await self.refusals.redelivered(envelope, source)
        if not verdict.accepted:
            return await self.refusals.sentry(verdict, envelope.command, data, source, envelope)
        order_spans.admitted(envelope.command)

        try:
            try:
                return await self._admitted(envelope, intake_ns, produce_ts_ms, source)
            except Exception as exc:
                if ledger_unreachable(exc):
                    raise
                log.exception("intake failed on %s at %s", envelope.command.command_id, source)
                # Not an append that lost its answer: an error the server or a step reported.
                self._unconfirmed.pop(envelope.signature_hash, None)
                return await self.refusals.internal_error(envelope, exc)
        except Exception:
            # Not decided (the ledger unreachable, say): the same envelope delivered again must
            # be decided afresh, not refused as a replay. Had its entry been committed after
            # all, the delivery settles it (see _settle), and the ledger's unique indexes still
            # catch any other copy.
            command = envelope.command
            self.replay.release(command.agent_id, command.nonce, envelope.signature_hash)
            raise

    async def _admitted(
        self, envelope: SignedCommand, intake_ns: int, produce_ts_ms: int | None, source: str
    ) -> Outcome:
        command = envelope.command
        if not overlap.overlaps(command):
            # Reads what earlier commands may still be changing (orders, slices, the breaker).
            await overlap.settle()
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


def _outcome_label(outcome: Outcome | None, failure: BaseException | None) -> str:
    """``accepted`` (sent, held for the broker, or applied: a cancel, a breaker command),
    ``refused`` (a named refusal), or ``ledger_unreachable`` (undecided: handed in again)."""
    if outcome is None or failure is not None:
        return "ledger_unreachable"
    return "accepted" if outcome.reason is None else "refused"
