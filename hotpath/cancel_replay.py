"""Cancels the ledger accepted but the broker may never have been sent, sent again at start-up.

A cancel is ledgered, then handed to the broker adapter, which writes it when its pacing allows
(ib_async sends ~45 requests a second): a process killed in between leaves an accepted cancel
whose offset is committed (no redelivery) and whose ``cancelOrder`` never left. Restarted, the
floor adopts the target as working, and nothing would cancel it.

So at start-up, once the working orders are adopted and bound, every order still working whose
ledger holds an accepted, verified ``cancel`` naming it, or an accepted ``cancel_all`` of its
account (and symbol, if one was named) appended after the order's own entry, is cancelled
again: at the broker a second cancel of a cancelled order is answered as such, harmlessly. An
order the restart holds unsent (never at the broker) ends ``cancelled`` there and then, never
sent. The ops event :data:`CANCEL_REPLAYED` names each target and the cancel it replays.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from brokers.base import UnknownOrderRef
from hotpath.intake import Intake
from ledger.db import Db
from ledger.key_trust import trusted_key
from trading.commands import Command, CommandKind
from trading.ledger_trust import LedgerRow, check_entry
from trading.order_events import EventKind, OrderEvent
from trading.orders import Cancelled, OrderState

log = logging.getLogger(__name__)

CANCEL_REPLAYED = "recovery.cancel_replayed"
"""Ops event (warning): accepted cancels sent to the broker again at start-up (detail: target ->
cancel command id), and held orders they ended unsent."""

RecordOps = Callable[[str, str, dict[str, Any]], None]


async def replay_accepted_cancels(
    db: Db, intake: Intake, emit: Callable[[OrderEvent], None], record_ops: RecordOps
) -> dict[str, str]:
    """Cancel again every working order an accepted cancel names; returns target -> cancel id."""
    working = {cid: order for cid, order in intake.orders.items() if not order.done}
    if not working:
        return {}
    entries = await db.fetch(
        "SELECT command_id, seq FROM ledger_entries WHERE command_id = ANY($1::text[])"
        " AND authenticated AND decision = 'accepted'",
        list(working),
    )
    accepted_at = {row["command_id"]: row["seq"] for row in entries}
    if not accepted_at:
        return {}
    cancels = await _accepted_cancels(db, {o.account for o in working.values()}, min(accepted_at.values()))
    replayed: dict[str, str] = {}
    unsent: list[str] = []
    for command_id, order in working.items():
        seq = accepted_at.get(command_id)
        if seq is None:
            continue
        cancel = next(
            (c for s, c in cancels if s > seq and _names(c, order.account, order.symbol, command_id)), None
        )
        if cancel is None:
            continue
        replayed[command_id] = cancel.command_id
        if order.machine.state is OrderState.STAGED:
            # Held by the restart, never at the broker: it ends here, unsent.
            order.end(Cancelled(None))
            intake.book.order_done(order.account, command_id)
            unsent.append(command_id)
            emit(order.event(EventKind.CANCELLED))
        try:
            intake.broker.cancel(command_id)
        except UnknownOrderRef:
            log.warning(
                "replayed cancel %s: the broker adapter has no order %s", cancel.command_id, command_id
            )
    if replayed:
        log.warning("re-sent %d accepted cancels the broker may never have had: %s", len(replayed), replayed)
        record_ops(CANCEL_REPLAYED, "warning", {"cancels": replayed, "ended_unsent": unsent})
    return replayed


async def _accepted_cancels(db: Db, accounts: set[str], after_seq: int) -> list[tuple[int, Command]]:
    """The verified accepted ``cancel``/``cancel_all`` commands of ``accounts`` after ``after_seq``."""
    rows = await db.fetch(
        "SELECT seq, kind, account, agent_id, command_id, payload, signer, signature, detail"
        " FROM ledger_entries WHERE account = ANY($1::text[]) AND seq > $2"
        " AND authenticated AND decision = 'accepted' AND kind = ANY($3::text[]) ORDER BY seq",
        sorted(accounts),
        after_seq,
        [CommandKind.CANCEL.value, CommandKind.CANCEL_ALL.value],
    )
    found: list[tuple[int, Command]] = []
    for row in rows:
        entry = LedgerRow.from_mapping(row)
        key = await trusted_key(db, entry.signer)
        checked = check_entry(entry, key.registered() if key is not None else None, revoked_is_problem=False)
        if checked.command is None:
            log.warning("cancel entry seq %d does not verify (%s): not replayed", entry.seq, checked.problem)
            continue
        found.append((entry.seq, checked.command))
    return found


def _names(cancel: Command, account: str, symbol: str, command_id: str) -> bool:
    """Whether ``cancel`` (accepted after the order's entry) cancels that order."""
    if cancel.account != account:
        return False
    if cancel.kind is CommandKind.CANCEL:
        return cancel.target_command_id == command_id
    return cancel.symbol is None or cancel.symbol == symbol
