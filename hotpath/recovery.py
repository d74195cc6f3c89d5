"""Start-up recovery: the floor's order map from the ledger, and orders that were ledgered but
never reached the broker sent now.

The hot path commits each order to the ledger (with its sized quantity in the entry's detail)
before writing it to the broker. An accepted ``enter``/``exit`` entry that has no broker-side
state row yet (submitted, filled, cancelled, rejected ...) may never have been sent: the process
stopped between the commit and the socket write, or the order was held while the broker was
down. Such orders are placed before the broker connects (:func:`connect_and_resend`): held
until the session is up, then matched by ``order_ref`` (the command id, IB's ``orderRef``)
against what the broker already has, so one that did reach the broker is adopted, not sent
twice.

Only entries issued within :data:`RESEND_HORIZON` are re-sent: an intent older than a trading
day is not executed on a restart, and a DAY order (the default) whose session has closed since
ends ``expired`` (reason :data:`SESSION_CLOSED`, :mod:`trading.session_calendar`). What is left
still has to pass the staleness limit, the breaker and the risk gate when it is released
(:mod:`hotpath.startup`). Orders already working at the broker are put back in the order map, so
their callbacks are recognised as the floor's, and the broker adapter is told of them
(:meth:`~brokers.base.Broker.adopt`), so cancels and modifies reach them.

Nothing is sent on the ledger's word alone: each entry is verified again
(:mod:`trading.ledger_trust`: signature, key unrevoked now and allowed on the account, the
signed command the one the row describes), and its sized quantity, which the hot path wrote
unsigned into the entry's detail, must be positive and within the signed command's own
quantity and the account's position limit. An entry that fails is skipped and returned in
:attr:`Restored.skipped` for the caller to report as a security event.

An order with an ``accepted`` state row that is neither working nor to be sent (its entry does
not verify now, or it was issued before the horizon, a GTC order above all) may still have been
written to the broker before the stop: it is parked (:attr:`Restored.parked`), adopted
unacknowledged and never sent, so the first reconciliation binds it if the broker has it;
:func:`hotpath.startup.settle_parked` then cancels it (entry unverified), keeps it (too old to
send, still working) or ends it ``rejected`` (the broker does not have it).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from brokers.base import Broker, BrokerOrder, OrderInvalid
from hotpath.account import AccountBook
from hotpath.broker_orders import broker_order, ledgered_limit
from hotpath.floor_orders import FloorOrder
from ledger.db import Db
from ledger.key_trust import trusted_key
from ledger.order_events import open_orders, order_history, record_order_event
from ledger.risk_profiles import get_profile
from trading.commands import Command, CommandKind, OrderType, Side, TimeInForce
from trading.ledger_trust import LedgerRow, check_entry
from trading.order_events import EventKind, OrderEvent
from trading.order_state import order_state
from trading.orders import Expired, Rejected
from trading.sentry import DEFAULT_MAX_SKEW, STALE
from trading.session_calendar import SessionCalendar

log = logging.getLogger(__name__)

RESEND_HORIZON = timedelta(hours=24)
NOT_LEDGERED = "intake.not_ledgered"
"""An accepted state row with no accepted ledger entry behind it: never sent, now refused."""
NOT_VERIFIED = "intake.unverified_entry"
"""An accepted entry that does not verify: never sent; its state row, if any, now refused."""
SESSION_CLOSED = "recovery.session_closed"
"""A DAY order ledgered in a session that has closed and never sent: ``expired``, not sent."""

_BROKER_KINDS = ("submitted", "partially_filled", "filled", "cancelled", "rejected", "expired")


@dataclass(frozen=True)
class Resend:
    order: BrokerOrder
    command: Command
    trail_stop: Decimal | None
    """For a TRAIL command: the stop it was sent at, to trail again from."""
    protective_limit: Decimal | None = None
    """The limit a MKT, STP or TRAIL entry was sent with (its ledger detail's)."""


@dataclass(frozen=True)
class Skipped:
    seq: int
    command_id: str | None
    agent_id: str | None
    signer: str
    problem: str


@dataclass(frozen=True)
class Adopted:
    order: BrokerOrder
    """The order as it was placed (from its verified ledger entry when there is one)."""
    filled: int
    """What the floor has recorded as filled."""
    broker_order_id: int | None = None
    """The broker's id of it as last recorded (Schwab's current one after a replace)."""
    sent_after: datetime | None = None
    """When it was accepted (it reached the broker after that)."""


@dataclass(frozen=True)
class Parked:
    """An order back in the map that the broker may have but that is not to be sent: adopted
    unacknowledged (:meth:`~brokers.base.Broker.adopt`), so the first reconciliation binds it if
    the broker has it; :func:`hotpath.startup.settle_parked` then decides."""

    order: BrokerOrder
    reason: str
    """:data:`NOT_VERIFIED`: its entry does not verify now: cancelled if the broker has it, else
    ended ``rejected`` with this reason. ``sentry.stale``: accepted longer ago than
    :data:`RESEND_HORIZON`: kept working if the broker has it, else ended ``rejected``."""
    problem: str = ""
    """Why its entry does not verify (for :data:`NOT_VERIFIED`)."""
    sent_after: datetime | None = None
    """When it was accepted (it reached the broker after that, if at all)."""


@dataclass(frozen=True)
class Restored:
    working: int
    """Orders back in the map that the broker already has."""
    to_send: tuple[Resend, ...]
    """Ledgered, maybe never sent: send each (idempotently) once the broker is up."""
    refused: tuple[str, ...]
    """Accepted state rows without an accepted ledger entry: recorded as rejected now."""
    skipped: tuple[Skipped, ...] = ()
    """Accepted entries that do not verify: never sent; the caller reports each."""
    adopted: tuple[Adopted, ...] = ()
    """Orders the broker acknowledged before the restart: the broker adapter is told of each
    (:meth:`~brokers.base.Broker.adopt`) so cancels, the exit manager's modifies and their
    events reach them in this process too."""
    expired: tuple[OrderEvent, ...] = ()
    """The ``expired`` records of never-sent DAY orders whose session closed (recorded; the
    caller publishes them)."""
    parked: tuple[Parked, ...] = ()
    """Accepted orders neither working nor to be sent (their entry does not verify now, or it is
    older than the resend horizon), maybe written to the broker before the stop: adopted
    unacknowledged, never sent; settled once the broker is reconciled."""


async def restore_orders(
    db: Db,
    orders: dict[str, FloorOrder],
    book: AccountBook,
    now: datetime | None = None,
    calendar: SessionCalendar | None = None,
) -> Restored:
    now = now or datetime.now(UTC)
    calendar = calendar or SessionCalendar()
    working = 0
    refused: list[str] = []
    adopted: list[Adopted] = []
    expired: list[OrderEvent] = []
    for state in await open_orders(db):
        order = restored_order(state, await order_history(db, state.command_id))
        orders[order.command_id] = order
        book.order_working(order)
        if state.kind is not EventKind.ACCEPTED:
            working += 1
            placed = await _placed_order(db, order)
            adopted.append(Adopted(placed, order.filled_qty, order.broker_order_id, order.accepted_at))
        elif not await _is_ledgered(db, state.command_id):
            # Write-ahead: what the ledger does not hold never goes to the broker.
            order.end(Rejected(NOT_LEDGERED))
            book.order_done(order.account, order.command_id)
            await record_order_event(db, order.event(EventKind.REJECTED, reason=NOT_LEDGERED))
            refused.append(state.command_id)
        elif order.accepted_at is not None and session_closed(order.tif, order.accepted_at, calendar, now):
            # Never acknowledged by the broker, and its day is over: it ends, it is not sent.
            expired.append(await _expire(db, order, book))

    to_send: list[Resend] = []
    skipped: list[Skipped] = []
    parked: list[Parked] = []
    since = now - RESEND_HORIZON
    for row in await db.fetch(
        "SELECT e.seq, e.kind, e.account, e.agent_id, e.command_id, e.payload, e.signer, e.signature,"
        " e.detail FROM ledger_entries e"
        " WHERE e.authenticated AND e.decision = 'accepted' AND e.kind = ANY($1::text[])"
        " AND e.issued_at >= $2"
        " AND NOT EXISTS (SELECT 1 FROM order_events o"
        "                 WHERE o.command_id = e.command_id AND o.kind = ANY($3::text[]))"
        " ORDER BY e.seq",
        [CommandKind.ENTER.value, CommandKind.EXIT.value],
        since,
        list(_BROKER_KINDS),
    ):
        resend = await _verified_resend(db, row)
        if isinstance(resend, str):
            log.error("accepted ledger entry seq %d not re-sent: %s", row["seq"], resend)
            skipped.append(Skipped(row["seq"], row["command_id"], row["agent_id"], row["signer"], resend))
            held = orders.get(row["command_id"])
            if held is not None and not held.done:
                # Its accepted row says it may have been written to the broker: not ended
                # before the broker is asked (a resting order would be left out of reach).
                placed = await _placed_order(db, held)
                parked.append(Parked(placed, NOT_VERIFIED, resend, held.accepted_at))
            continue
        command = resend.command
        held = orders.get(command.command_id)
        if held is not None and held.done:
            continue  # ended above (its session closed)
        if held is None:
            held = FloorOrder.from_command(command, resend.order.quantity, resend.protective_limit)
            orders[command.command_id] = held
            book.order_working(held)
            if session_closed(held.tif, command.issued_at, calendar, now):
                expired.append(await _expire(db, held, book))
                continue
            await record_order_event(db, held.event(EventKind.ACCEPTED))
        to_send.append(resend)
    # What is left (an accepted GTC order older than the horizon, above all) may rest at the
    # broker: the adapter must know it, or a cancel of it finds nothing to cancel.
    known = {a.order.order_ref for a in adopted} | {r.order.order_ref for r in to_send}
    known |= {p.order.order_ref for p in parked}
    for order in list(orders.values()):
        if order.done or order.command_id in known:
            continue
        ledgered = await ledgered_order(db, order.command_id)
        if ledgered is None:
            continue  # no enter/exit entry (an iceberg parent, a control): never the broker's
        # Its key revoked since: cancelled if the broker has it, like an unverified entry.
        problem = await _entry_problem_now(db, order.command_id)
        reason = STALE if problem is None else NOT_VERIFIED
        parked.append(Parked(ledgered.broker_order(order.quantity), reason, problem or "", order.accepted_at))
    return Restored(
        working,
        tuple(to_send),
        tuple(refused),
        tuple(skipped),
        tuple(adopted),
        tuple(expired),
        tuple(parked),
    )


def session_closed(tif: str | None, accepted_at: datetime, calendar: SessionCalendar, now: datetime) -> bool:
    """A DAY order (the default) whose trading session closed before ``now``."""
    day = tif is None or tif == TimeInForce.DAY.value
    return day and calendar.close_after(accepted_at) <= now


async def _expire(db: Db, order: FloorOrder, book: AccountBook) -> OrderEvent:
    """End a never-sent DAY order of a past session: recorded ``expired``, reason named."""
    if order.machine.can_apply(Expired()):
        order.machine = order.machine.apply(Expired())
    book.order_done(order.account, order.command_id)
    record = order.event(EventKind.EXPIRED, reason=SESSION_CLOSED)
    await record_order_event(db, record)
    log.warning("%s not sent: a DAY order of a session that closed (%s)", order.command_id, SESSION_CLOSED)
    return record


def restored_order(state: OrderEvent, history: list[OrderEvent]) -> FloorOrder:
    """An order back in the map from its state row and its records (its state, fills and
    execution ids folded by the state machine)."""
    order = FloorOrder(
        command_id=state.command_id,
        agent_id=state.agent_id,
        account=state.account,
        symbol=state.symbol,
        side=Side(state.side),
        quantity=state.quantity,
        limit_price=state.limit_price,
        tif=state.tif,
        parent_id=state.parent_id,
        broker_order_id=state.broker_order_id,
    )
    # Its first record's time stands for its acceptance (the session a DAY order is in).
    order.accepted_at = history[0].ts if history else state.ts
    view = order_state(history, quantity=order.quantity)
    if view is not None:
        order.machine = view.order
        order.exec_ids.update(view.exec_ids)
    return order


async def _verified_resend(db: Db, row: Any) -> Resend | str:
    """The order to re-send for an accepted entry, or why the entry is not trusted."""
    entry = LedgerRow.from_mapping(row)
    key = await trusted_key(db, entry.signer)
    checked = check_entry(entry, key.registered() if key is not None else None)
    if checked.command is None:
        assert checked.problem is not None
        return checked.problem
    command = checked.command
    try:
        detail = json.loads(row["detail"]) if row["detail"] else {}
        quantity = detail["quantity"]
        trail_stop = Decimal(detail["initial_stop"]) if command.order_type is OrderType.TRAIL else None
        protective = ledgered_limit(command, detail)
    except (ValueError, KeyError, TypeError, ArithmeticError) as exc:
        return f"its detail cannot be read ({exc!r})"
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity <= 0:
        return f"its sized quantity {quantity!r} is not a positive whole number"
    if command.quantity is not None and quantity > command.quantity:
        return f"its sized quantity {quantity} exceeds the signed command's {command.quantity}"
    profile = await get_profile(db, command.account)
    if profile is None:
        return f"account {command.account} has no risk profile"
    if quantity > profile.max_position:
        limit = profile.max_position
        return f"its sized quantity {quantity} exceeds {command.account}'s position limit {limit}"
    return Resend(broker_order(command, quantity, trail_stop, protective), command, trail_stop, protective)


@dataclass(frozen=True)
class LedgeredOrder:
    command: Command
    quantity: int
    """The sized quantity its entry's detail gives."""
    trail_stop: Decimal | None
    """For a TRAIL: the stop it was sent at."""
    protective_limit: Decimal | None = None
    """The limit a MKT, STP or TRAIL entry was sent with."""

    def broker_order(self, quantity: int | None = None) -> BrokerOrder:
        return broker_order(self.command, quantity or self.quantity, self.trail_stop, self.protective_limit)


async def _entry_problem_now(db: Db, command_id: str) -> str | None:
    """Why ``command_id``'s accepted enter/exit entry does not verify now (a revoked key
    included), or None when it does."""
    row = await _entry_row(db, command_id)
    if row is None:
        return "no accepted entry"
    entry = LedgerRow.from_mapping(row)
    key = await trusted_key(db, entry.signer)
    return check_entry(entry, key.registered() if key is not None else None).problem


async def _entry_row(db: Db, command_id: str) -> Any:
    return await db.fetchrow(
        "SELECT seq, kind, account, agent_id, command_id, payload, signer, signature, detail"
        " FROM ledger_entries WHERE command_id = $1 AND authenticated AND decision = 'accepted'"
        " AND kind = ANY($2::text[]) ORDER BY seq LIMIT 1",
        command_id,
        [CommandKind.ENTER.value, CommandKind.EXIT.value],
    )


async def ledgered_order(db: Db, command_id: str) -> LedgeredOrder | None:
    """The accepted ``enter``/``exit`` entry of ``command_id``, whatever its age, verified (a key
    revoked since still names what it signed then); None when the ledger holds none that
    verifies with a readable sized quantity."""
    row = await _entry_row(db, command_id)
    if row is None:
        return None
    entry = LedgerRow.from_mapping(row)
    key = await trusted_key(db, entry.signer)
    checked = check_entry(entry, key.registered() if key is not None else None, revoked_is_problem=False)
    if checked.command is None:
        log.warning("ledger entry seq %d (%s) does not verify: %s", entry.seq, command_id, checked.problem)
        return None
    try:
        detail = json.loads(row["detail"]) if row["detail"] else {}
        quantity = detail["quantity"]
        stop = detail.get("initial_stop") if checked.command.order_type is OrderType.TRAIL else None
        trail_stop = None if stop is None else Decimal(stop)
        protective = ledgered_limit(checked.command, detail)
    except (ValueError, TypeError, KeyError, ArithmeticError) as exc:
        log.warning("ledger entry seq %d (%s): detail unreadable (%r)", entry.seq, command_id, exc)
        return None
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity <= 0:
        return None
    return LedgeredOrder(checked.command, quantity, trail_stop, protective)


async def _placed_order(db: Db, order: FloorOrder) -> BrokerOrder:
    """The order the broker was sent for ``order``: from its verified ledger entry when there is
    one, else as far as its state rows tell (enough for a cancel, which needs only the
    ``order_ref``)."""
    ledgered = await ledgered_order(db, order.command_id)
    if ledgered is not None:
        return ledgered.broker_order(order.quantity)
    log.warning("working order %s: no verified ledger entry; adopted from its state rows", order.command_id)
    return BrokerOrder(
        order_ref=order.command_id,
        account=order.account,
        symbol=order.symbol,
        side=order.side,
        quantity=order.quantity,
        order_type=OrderType.LMT if order.limit_price is not None else OrderType.MKT,
        tif=next((t for t in TimeInForce if t.value == order.tif), TimeInForce.DAY),
        limit_price=order.limit_price,
    )


async def _is_ledgered(db: Db, command_id: str) -> bool:
    return bool(
        await db.fetchval(
            "SELECT EXISTS (SELECT 1 FROM ledger_entries"
            " WHERE command_id = $1 AND authenticated AND decision = 'accepted')",
            command_id,
        )
    )


async def connect_and_resend(
    broker: Broker,
    to_send: Sequence[Resend],
    *,
    halt: Callable[[], object] | None = None,
    adopted: Sequence[Adopted] = (),
    parked: Sequence[Parked] = (),
) -> None:
    """Tell the broker of every restored order, then connect it.

    ``adopted`` are the orders the broker acknowledged before the restart; ``to_send`` those
    ledgered and maybe never sent. Each is adopted while no session is up, so the broker's
    reconciliation at connect matches it against the broker's open and completed orders and
    executions by ``orderRef``: one the broker has is bound to it (and reported like any order
    it acknowledges); one of ``to_send`` it does not have stays held, unsent, until
    :func:`hotpath.startup.release_held` has checked it again and places it (or ends it).
    Adopted after connect, an order the broker has would not be matched: the adapter's order map
    is empty in a new process, so nothing would tell it the broker already has the order.

    ``halt`` (the breaker's, when the floor is halted) runs before connect: what a trip does,
    done before any session is up, so every held order is cancelled unsent and the broker's
    global cancel goes out as the session comes up (taking any restored order the broker had).
    """
    for known in adopted:
        try:
            broker.adopt(
                known.order,
                known.filled,
                broker_order_id=known.broker_order_id,
                sent_after=known.sent_after,
            )
        except OrderInvalid as exc:
            log.error(
                "working order %s cannot be adopted (%s): the broker's reports of it are not matched",
                known.order.order_ref,
                exc,
            )
    unacknowledged: list[Resend | Parked] = [*to_send, *parked]
    for resend in unacknowledged:
        # A command may be issued up to the sentry's skew ahead of the floor's clock.
        sent_after = (
            resend.command.issued_at - DEFAULT_MAX_SKEW if isinstance(resend, Resend) else resend.sent_after
        )
        try:
            broker.adopt(resend.order, acknowledged=False, sent_after=sent_after)
        except OrderInvalid as exc:
            log.error(
                "held order %s cannot be adopted (%s); it is refused when released",
                resend.order.order_ref,
                exc,
            )
    if halt is not None:
        halt()
    await broker.connect()
