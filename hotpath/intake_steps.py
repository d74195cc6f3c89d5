"""What every intake path shares: the state it reads (keys, risk profiles, the account book,
the touch), the steps it takes on the way (the symbol check, the prices an order can fill at,
the account snapshot the risk gate reads), and its ways out (a refusal, an order event).

:class:`IntakeSteps` holds them for the paths that mix it in (:mod:`hotpath.order_commands`,
:mod:`hotpath.iceberg_commands`, :mod:`hotpath.cancel_commands`); :class:`hotpath.intake.Intake`
sets the state and routes each command to its path. Mixed in rather than held, so a command's
way from intake to the socket write is the same chain of calls it always was (no extra hops).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from brokers.base import Broker, NotConnected
from hotpath.account import AccountBook
from hotpath.circuit_breaker import CircuitBreaker
from hotpath.exit_manager import ExitManager
from hotpath.floor_orders import FloorOrder
from hotpath.icebergs import IcebergParents
from hotpath.order_spans import OrderSpans
from hotpath.outcomes import Outcome, Timing
from hotpath.ports import EventProducer, HotLedger, Ledgered, RefusedByLedger
from hotpath.publish import publish_order_event
from hotpath.refusals import Refusals, envelope_event
from ledger.db import UNREACHABLE
from observability.security import SecurityRecorder
from observability.telemetry import Metrics
from trading import iceberg_parents as parents
from trading.commands import Command, CommandKind, OrderType, Side
from trading.fill_prices import FillRange, fill_range
from trading.iceberg_parents import FloorKeys
from trading.order_events import OrderEvent
from trading.protective_limits import protective_limit
from trading.risk import AccountSnapshot
from trading.sentry import RegisteredKey, ReplayGuard
from trading.session_calendar import SessionCalendar
from trading.signing import SignedCommand
from trading.sizing import RiskProfile
from trading.symbols import UNKNOWN_SYMBOL, tick_size, unknown_symbol_detail

log = logging.getLogger(__name__)

UNSUPPORTED_KIND = "intake.unsupported_kind"
NO_PROFILE = "risk.no_profile"
NO_PRICE = "risk.no_reference_price"
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


def ledger_unreachable(exc: BaseException) -> bool:
    """The ledger could not be reached (or went away mid-call): hold the record and retry it.
    The broker's NotConnected is a ConnectionError too, but it is not the ledger's."""
    return isinstance(exc, UNREACHABLE) and not isinstance(exc, NotConnected)


@dataclass(frozen=True)
class UnconfirmedAppend:
    """An accepted append whose caller never heard back (the connection went during it): it
    may have committed. ``resume`` carries the command on from its committed entry."""

    envelope: SignedCommand
    resume: Callable[[], Awaitable[Outcome]]


class IntakeSteps:
    """The state :class:`hotpath.intake.Intake` sets (see its ``__init__``), and the steps over it."""

    broker: Broker
    ledger: HotLedger
    producer: EventProducer
    security: SecurityRecorder
    breaker: CircuitBreaker
    book: AccountBook
    orders: dict[str, FloorOrder]
    metrics: Metrics
    replay: ReplayGuard
    on_timing: Callable[[Timing], None] | None
    exits: ExitManager | None
    emit: Callable[[OrderEvent], None] | None
    publish_only: Callable[[OrderEvent], None] | None
    symbols: frozenset[str] | None
    refusals: Refusals
    parents: IcebergParents
    control_key: Ed25519PrivateKey | None
    floor_keys: FloorKeys
    calendar: SessionCalendar
    market_collar_bps: Decimal
    """How far past the touch (or trigger) an entry's protective limit goes, in basis points."""
    _keys: dict[str, RegisteredKey]
    _profiles: dict[str, RiskProfile]
    _wall_offset_ns: int
    _unconfirmed: dict[str, UnconfirmedAppend]
    """By signature hash: accepted appends that failed without an answer, until settled."""
    exit_clearance: Callable[[FloorOrder], Awaitable[bool] | None] | None
    spans: OrderSpans | None

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

    def _snapshot_besides(self, order: FloorOrder) -> AccountSnapshot:
        """The account as the risk gate saw it for ``order``'s decision, now: without ``order``
        itself, which the book counts as working from that decision on (checked again, it must
        not count twice)."""
        snapshot = self._snapshot(order.account, order.symbol)
        remaining = self.book.counted_remaining(order.command_id)
        if remaining is None:
            return snapshot
        buy, exit_ = order.side is Side.BUY, order.reduce_only and not order.protective
        return dataclasses.replace(
            snapshot,
            open_orders=snapshot.open_orders - 1,
            working_buy_qty=snapshot.working_buy_qty - (remaining if buy else 0),
            working_sell_qty=snapshot.working_sell_qty - (0 if buy else remaining),
            exiting_buy_qty=snapshot.exiting_buy_qty - (remaining if buy and exit_ else 0),
            exiting_sell_qty=snapshot.exiting_sell_qty - (remaining if exit_ and not buy else 0),
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

    def _fills(
        self, command: Command, trail_stop: Decimal | None, protective_limit: Decimal | None = None
    ) -> FillRange | None:
        """Every price the order can fill at against the current touch
        (:func:`trading.fill_prices.fill_range`); a TRAIL at the stop it is sent with, an entry
        with a protective limit as the LMT or STP_LMT it goes out as."""
        assert command.symbol is not None and command.side is not None
        stop = trail_stop if command.order_type is OrderType.TRAIL else command.stop_price
        return fill_range(
            command.side,
            command.order_type,
            limit=command.limit_price,
            stop=stop,
            touch=self._touch(command.symbol, command.side),
            protective_limit=protective_limit,
        )

    def _protective_limit(self, command: Command, trail_stop: Decimal | None) -> Decimal | None:
        """The limit an entry of type MKT, STP or TRAIL is sent with, the collar past the touch or
        its stop (:mod:`trading.protective_limits`); None for an exit (sent as signed) and for an
        order that carries its own limit or has no price yet."""
        assert command.symbol is not None and command.side is not None
        if command.kind is not CommandKind.ENTER:
            return None
        stop = trail_stop if command.order_type is OrderType.TRAIL else command.stop_price
        return protective_limit(
            command.side,
            command.order_type,
            stop=stop,
            touch=self._touch(command.symbol, command.side),
            collar_bps=self.market_collar_bps,
            tick=tick_size(command.symbol),
        )

    async def profile(self, account: str) -> RiskProfile | None:
        """The account's risk profile (cached; read from the ledger the first time)."""
        return await self._profile(account)

    async def _profile(self, account: str) -> RiskProfile | None:
        profile = self._profiles.get(account)
        if profile is None:
            profile = await self.ledger.risk_profile(account)
            if profile is not None:
                self._profiles[account] = profile
        return profile

    async def _append_accepted(
        self,
        envelope: SignedCommand,
        quantity: int,
        detail: dict[str, object],
        unconfirmed: UnconfirmedAppend,
    ) -> Ledgered:
        """The write-ahead append. Should it fail without an answer, it may have committed: the
        next delivery of the envelope settles it (:meth:`_settle`) rather than meeting its own
        entry as a duplicate and stranding a ledgered command that never took effect."""
        signature = envelope.signature_hash
        self._unconfirmed[signature] = unconfirmed
        try:
            entry = await self.ledger.append_accepted(envelope, quantity, detail)
        except RefusedByLedger:
            del self._unconfirmed[signature]
            raise
        del self._unconfirmed[signature]
        return entry

    async def _resumable(self, envelope: SignedCommand, step: Callable[[], Awaitable[Outcome]]) -> Outcome:
        """``step`` takes a command already ledgered as accepted to its end. Should it fail (the
        ledger unreachable, say), the next delivery of the envelope runs it again instead of
        meeting the entry as a duplicate."""
        self._unconfirmed[envelope.signature_hash] = UnconfirmedAppend(envelope, step)
        outcome = await step()
        del self._unconfirmed[envelope.signature_hash]
        return outcome

    async def _settle(self, envelope: SignedCommand) -> Outcome | None:
        """The envelope of an append that failed unanswered, again: if the ledger holds it, the
        command goes on from its entry (once: the marker goes with it); if not, None (decide
        it afresh)."""
        unconfirmed = self._unconfirmed.get(envelope.signature_hash)
        if unconfirmed is None or unconfirmed.envelope != envelope:
            return None
        held = await self.ledger.holds_signature(envelope.signature_hash)
        del self._unconfirmed[envelope.signature_hash]
        if not held:
            return None
        command = envelope.command
        log.warning("%s: ledgered though intake never heard back; carried on", command.command_id)
        self.replay.remember(command.agent_id, command.nonce, envelope.signature_hash, command.issued_at)
        return await unconfirmed.resume()

    async def _record_durably(self, event: OrderEvent) -> None:
        """An order's own end, in its state rows before intake moves on (recovery reads them:
        an accepted entry without one would be sent at the next start), then published."""
        await self.ledger.record_order_event(event)
        await self._publish(event)  # the same event id: its row is not written twice

    async def _announce(self, record: OrderEvent) -> None:
        """A Kafka-only record (an iceberg parent's or control's: no state row), queued behind
        the others to be retried until acknowledged; without that queue, sent at once."""
        if self.publish_only is not None:
            self.publish_only(record)
            return
        await publish_order_event(self.producer, record)

    async def _publish(self, event: OrderEvent) -> None:
        if self.emit is not None:
            self.emit(event)
            return
        await self.ledger.record_order_event(event)
        await publish_order_event(self.producer, event)
