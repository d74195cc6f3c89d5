"""The hot path's start-up after a stop or a crash: the order map back, the broker connected
and brought in line, and what the ledger holds but the broker never got sent only if it would
be sent now.

1. :func:`restore_and_connect` (before any command is consumed): the order map from the ledger
   and the order-state rows (:func:`hotpath.recovery.restore_orders`: never-sent DAY orders of a
   closed session end ``expired``); the trading state from the newest breaker entry; entries that
   do not verify reported as security events; every restored order made known to the broker
   adapter and the broker connected, so its first reconciliation binds each order it has
   (cancels, ``cancel_all``, the breaker and the exit manager reach them) and holds the rest
   unsent (:func:`hotpath.recovery.connect_and_resend`); accepted cancels whose target is still
   working are sent again (:mod:`hotpath.cancel_replay`), as the process may have died with
   them queued unsent.
2. :func:`release_held` (once quotes stream, positions and profiles are loaded): each held order
   the broker did not have goes through the checks a command meets at intake, now: the staleness
   limit (the sentry's window on its signed ``issued_at``: ``rejected: sentry.stale``), the
   breaker and the risk gate (:meth:`hotpath.order_commands.OrderCommands.resend_refusal`).
   Refused, it ends ``rejected`` with that reason, recorded and published, never sent; passed,
   it is placed. Each parked order (:attr:`hotpath.recovery.Restored.parked`) the broker has is
   kept, or cancelled when its entry does not verify now (ops event
   ``recovery.unverified_at_broker``); one it does not have ends ``rejected`` (its entry
   unverified: ``intake.unverified_entry``; older than the resend horizon: ``sentry.stale``)
   (:func:`settle_parked`). Iceberg parents that never started are started
   (:mod:`hotpath.iceberg_restart`). :func:`resume` does it all and records the ops event
   ``recovery.restored``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from brokers.base import OrderInvalid, UnknownOrderRef
from hotpath.broker_events import BrokerEvents
from hotpath.cancel_replay import replay_accepted_cancels
from hotpath.circuit_breaker import CircuitBreaker
from hotpath.circuit_breaker_log import BreakerEntry, BreakerLog
from hotpath.floor_orders import FloorOrder
from hotpath.iceberg_restart import ParentsRestarted, start_unstarted_parents
from hotpath.intake import Intake
from hotpath.order_commands import BROKER_INVALID
from hotpath.recovery import (
    NOT_VERIFIED,
    Parked,
    Resend,
    Restored,
    connect_and_resend,
    ledgered_order,
    restore_orders,
)
from ledger.db import Db
from ledger.order_events import known_orders
from observability.security import refusal_event
from trading import sentry
from trading.order_events import EventKind, OrderEvent
from trading.orders import OrderState, Rejected
from trading.protective_limits import limit_offset
from trading.risk import TradingState

log = logging.getLogger(__name__)

UNVERIFIED_BREAKER_ENTRY = "breaker.unverified_entry"
"""Security event: the ledger's newest breaker entry does not verify (the hot path starts HALTED)."""
UNVERIFIED_LEDGER_ENTRY = "ledger.unverified_entry"
"""Security event: an accepted order entry does not verify at restart (signature, key, fields): not sent."""
ENDED_BUT_WORKING = "recovery.ended_but_working"
"""Ops event (critical): the broker works an order of the floor's that its records ended."""
UNVERIFIED_AT_BROKER = "recovery.unverified_at_broker"
"""Ops event (critical): the broker had an order whose ledger entry no longer verifies
(key revoked, detail unreadable ...): cancelled at restart, never sent again."""
QUOTE_WAIT_S = 2.0
"""How long a held order waits for its symbol's first quote before the risk gate sees it (a
price older than the profile's staleness limit, or none, is refused as stale)."""


@dataclass(frozen=True)
class Startup:
    restored: Restored
    halted: bool
    breaker_entry: BreakerEntry | None
    listed: tuple[str, ...] = ()
    """Orders found working at the broker that the floor's records had lost: adopted."""
    cancels_replayed: dict[str, str] = field(default_factory=dict)
    """Working orders an accepted cancel named, cancelled again (target -> cancel id)."""


async def restore_and_connect(
    db: Db,
    intake: Intake,
    breaker: CircuitBreaker,
    breaker_log: BreakerLog,
    events: BrokerEvents,
) -> Startup:
    """Step 1 (see the module): returns once the broker is connected and reconciled. ``events``
    (its queue already drained by its task) records and publishes what start-up decides."""
    restored = await restore_orders(db, intake.orders, intake.book, calendar=intake.calendar)
    for record in restored.expired:
        events.emit(record)  # recorded already; the same event id is not written twice
    # The trading state is the ledger's newest breaker entry: halted stays halted across a
    # restart, and a halted floor sends none of the orders it held (see connect_and_resend).
    entry = await breaker_log.restore(breaker)
    halted = entry is not None and entry.state is TradingState.HALTED
    if entry is not None and entry.problem is not None:
        await intake.security.record(
            refusal_event(
                reason=UNVERIFIED_BREAKER_ENTRY,
                severity="critical",
                source="hotpath",
                source_address=f"ledger seq {entry.seq}",
                agent_id=entry.agent_id,
                command_id=entry.command_id,
                detail=f"{entry.problem}; started HALTED",
            )
        )
    for skipped in restored.skipped:
        await intake.security.record(
            refusal_event(
                reason=UNVERIFIED_LEDGER_ENTRY,
                severity="critical",
                source="hotpath",
                source_address=f"ledger seq {skipped.seq}",
                agent_id=skipped.agent_id,
                key_id=skipped.signer,
                command_id=skipped.command_id,
                detail=f"{skipped.problem}; not re-sent",
            )
        )
    await connect_and_resend(
        intake.broker,
        restored.to_send,
        halt=breaker.halt if halted else None,
        adopted=restored.adopted,
        parked=restored.parked,
    )
    listed = () if halted else await adopt_listed(db, intake, events)
    # A halted floor's global cancel took every working order already.
    replayed = {} if halted else await replay_accepted_cancels(db, intake, events.emit, events.record_ops)
    if halted:
        log.critical(
            "started HALTED (ledger seq %d, %s by %s): %d held orders cancelled unsent; "
            "an operator's signed breaker_arm resumes intake",
            entry.seq if entry else 0,
            entry.kind if entry else "",
            entry.agent_id if entry else "",
            len(restored.to_send),
        )
    log.info(
        "restored %d working orders (told to the broker), %d held, %d expired, %d refused not in the ledger",
        restored.working,
        len(restored.to_send),
        len(restored.expired),
        len(restored.refused),
    )
    return Startup(restored, halted, entry, tuple(listed), replayed)


async def adopt_listed(db: Db, intake: Intake, events: BrokerEvents) -> list[str]:
    """Orders the broker lists as working under the floor's ``orderRef`` that the order map
    lacks (their state rows lost, or their entry older than the resend horizon): each the
    ledger holds as an accepted ``enter``/``exit`` that verifies comes back into the map as
    working, recorded ``submitted`` and adopted by the broker adapter, so cancels reach it.
    One whose state rows already ended it is not revived (the state machine has no way back);
    it is reported, critical: ``recovery.ended_but_working``. Returns the command ids adopted."""
    found: list[str] = []
    try:
        listing = await intake.broker.open_orders()
    except Exception:
        log.exception(
            "the broker's open orders could not be listed: orders it has that the floor lost are not adopted"
        )
        return found
    for listed in listing:
        ref = listed.order_ref
        if not ref or ref in intake.orders:
            continue
        ledgered = await ledgered_order(db, ref)
        if ledgered is None:
            continue  # not the floor's (another client's, or manual): the reconciler reports it
        if await known_orders(db, [ref]):
            log.critical("%s is working at the broker but its records ended it", ref)
            events.record_ops(
                ENDED_BUT_WORKING, "critical", {"command_id": ref, "broker_order_id": listed.order_id}
            )
            continue
        order = FloorOrder.from_command(ledgered.command, listed.quantity, ledgered.protective_limit)
        order.acknowledged(listed.order_id)
        try:
            intake.broker.adopt(ledgered.broker_order(listed.quantity), listed.filled, listed=listed)
        except OrderInvalid as exc:
            log.error("%s working at the broker cannot be adopted: %s", ref, exc)
        intake.orders[ref] = order
        intake.book.order_working(order)
        events.emit(order.event(EventKind.SUBMITTED, broker_filled_qty=listed.filled or None))
        log.warning("%s found working at the broker, not in the floor's records: adopted", ref)
        found.append(ref)
    return found


@dataclass(frozen=True)
class Released:
    sent: tuple[str, ...] = ()
    refused: tuple[tuple[str, str], ...] = ()
    """(command id, reason) of each held order not sent."""
    at_broker: tuple[str, ...] = ()
    """Held orders the broker turned out to have (bound at connect), or that ended meanwhile."""


async def release_held(
    intake: Intake,
    to_send: Sequence[Resend],
    emit: Callable[[OrderEvent], None],
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Released:
    """Step 2 (see the module) for the orders :func:`restore_and_connect` held."""
    sent: list[str] = []
    refused: list[tuple[str, str]] = []
    at_broker: list[str] = []
    await _first_quotes(intake, {r.command.symbol for r in to_send if r.command.symbol is not None})
    for resend in to_send:
        command = resend.command
        order = intake.orders.get(command.command_id)
        if order is None or order.done or order.machine.state is not OrderState.STAGED:
            at_broker.append(command.command_id)
            continue
        # Checked as a command arriving now: its own working quantity is not yet the account's.
        intake.book.order_done(order.account, order.command_id)
        reason: str | None
        if not intake.replay.window.contains(command.issued_at, now()):
            reason = sentry.STALE
        else:
            reason = await intake.resend_refusal(
                command, resend.order.quantity, resend.trail_stop, resend.protective_limit
            )
        if reason is None:
            intake.book.order_working(order)
            try:
                intake.broker.place(resend.order)
            except OrderInvalid as exc:
                log.error("held order %s refused by the broker adapter: %s", order.command_id, exc)
                reason = BROKER_INVALID
        if reason is not None:
            order.end(Rejected(reason))
            intake.book.order_done(order.account, order.command_id)
            try:
                intake.broker.cancel(order.command_id)  # held, never sent: ended locally
            except UnknownOrderRef:
                pass
            emit(order.event(EventKind.REJECTED, reason=reason))
            log.warning("held order %s not sent at restart: %s", order.command_id, reason)
            refused.append((command.command_id, reason))
            continue
        if resend.trail_stop is not None:
            profile = await intake.profile(command.account)
            offset = None
            if resend.protective_limit is not None:
                offset = limit_offset(resend.trail_stop, resend.protective_limit)
            intake.trail(command, resend.order.quantity, resend.trail_stop, profile, offset)
        log.warning("held order %s, ledgered before the last stop, sent now", command.command_id)
        sent.append(command.command_id)
    return Released(tuple(sent), tuple(refused), tuple(at_broker))


@dataclass(frozen=True)
class Settled:
    working: tuple[str, ...] = ()
    """Parked orders the broker has, kept working (accepted before the resend horizon)."""
    cancelled: tuple[str, ...] = ()
    """Parked orders the broker has whose entry does not verify now: cancelled."""
    ended: tuple[tuple[str, str], ...] = ()
    """(command id, reason) of each parked order the broker does not have: ended ``rejected``."""


def settle_parked(
    intake: Intake,
    parked: Sequence[Parked],
    emit: Callable[[OrderEvent], None],
    record_ops: Callable[[str, str, dict[str, object]], None],
) -> Settled:
    """The orders :func:`hotpath.recovery.restore_orders` parked, once the broker is reconciled:
    one the broker has (bound at connect) is kept working, or, when its entry does not verify
    now, cancelled at the broker (ops event :data:`UNVERIFIED_AT_BROKER`); one it does not have
    ends ``rejected`` with the parked reason, never sent."""
    working: list[str] = []
    cancelled: list[str] = []
    ended: list[tuple[str, str]] = []
    for park in parked:
        ref = park.order.order_ref
        order = intake.orders.get(ref)
        if order is None or order.done:
            continue
        if order.machine.state is OrderState.STAGED:
            order.end(Rejected(park.reason))
            intake.book.order_done(order.account, ref)
            try:
                intake.broker.cancel(ref)  # held, never sent: ended locally
            except UnknownOrderRef:
                pass
            emit(order.event(EventKind.REJECTED, reason=park.reason))
            log.warning("%s not at the broker, not sent at restart: %s", ref, park.reason)
            ended.append((ref, park.reason))
        elif park.reason == NOT_VERIFIED:
            log.critical(
                "%s works at the broker but its entry does not verify (%s): cancelled", ref, park.problem
            )
            try:
                intake.broker.cancel(ref)
            except UnknownOrderRef:
                log.error("%s cannot be cancelled: the broker adapter does not know it", ref)
            record_ops(
                UNVERIFIED_AT_BROKER,
                "critical",
                {"command_id": ref, "broker_order_id": order.broker_order_id, "problem": park.problem},
            )
            cancelled.append(ref)
        else:
            log.warning("%s, accepted before the resend horizon, works at the broker: kept", ref)
            working.append(ref)
    return Settled(tuple(working), tuple(cancelled), tuple(ended))


async def _first_quotes(intake: Intake, symbols: set[str]) -> None:
    """Wait (at most :data:`QUOTE_WAIT_S`) until each symbol has a quote: at start-up the
    subscriptions are only just made, and the risk gate refuses an unpriced symbol as stale."""
    deadline = time.monotonic() + QUOTE_WAIT_S
    while any(s not in intake.book.prices for s in symbols if intake.trades(s)):
        if time.monotonic() >= deadline:
            return
        await asyncio.sleep(0.01)


async def resume(db: Db, intake: Intake, startup: Startup, events: BrokerEvents) -> None:
    """Step 2 (see the module), and its account as the ops event ``recovery.restored``: what
    came back working, what was sent, expired and refused (with why), which icebergs started."""
    restored = startup.restored
    released, parents, settled = Released(), ParentsRestarted(), Settled()
    if startup.halted:
        log.warning("halted: held orders were cancelled unsent, unstarted iceberg parents are not started")
    else:
        released = await release_held(intake, restored.to_send, events.emit)
        settled = settle_parked(intake, restored.parked, events.emit, events.record_ops)
        parents = await start_unstarted_parents(db, events.publish_only, calendar=intake.calendar)
    not_sent = bool(
        released.refused or restored.expired or restored.refused or restored.skipped or settled.ended
    )
    events.record_ops(
        "recovery.restored",
        "warning" if not_sent else "info",
        {
            "halted": startup.halted,
            "working": restored.working,
            "found_at_broker": list(startup.listed),
            "sent": list(released.sent),
            "at_broker": list(released.at_broker),
            "refused": {command_id: reason for command_id, reason in released.refused},
            "expired": [e.command_id for e in restored.expired],
            "not_ledgered": list(restored.refused),
            "unverified": [s.command_id for s in restored.skipped],
            "parked_working": list(settled.working),
            "unverified_cancelled": list(settled.cancelled),
            "parked_ended": {command_id: reason for command_id, reason in settled.ended},
            "icebergs_started": list(parents.started),
            "icebergs_expired": list(parents.expired),
        },
    )
