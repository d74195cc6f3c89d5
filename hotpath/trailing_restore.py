"""Start-up: the Exit Manager takes up every trailing stop still working at the broker, at the
level it last had, so a restart neither freezes a stop nor loosens it.

Run once the broker is connected and the order map restored (:mod:`hotpath.recovery`). For each
order of the map that is not done and whose accepted ledger entry is a TRAIL:

* the entry is verified again (:mod:`trading.ledger_trust`): the trailing rule, side and symbol
  come from the signed command, never from the database's unsigned rows (a key revoked since
  does not stop it: the order is already working, and trailing only tightens it);
* the broker's open orders say whether it still works and where its stop is now (an order the
  broker no longer lists ended while the floor was down; the reconciler ends it);
* it resumes at the tightest credible of the initial stop, the persisted level (table
  ``stop_levels``) and the broker's stop (:func:`trading.trailing_resume.resume_stop`); where
  the broker's stop is the looser, it is moved in place to the resumed level at once.

Each order taken up is recorded (ops event ``exits.reattached``); one that cannot be (its entry
does not verify, its detail cannot be read, the modify is refused) is recorded as
``exits.not_reattached`` with the reason, and its stop stays where the broker has it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from brokers.base import Broker, BrokerError, OpenOrder
from hotpath.broker_orders import ledgered_limit
from hotpath.exit_manager import DEFAULT_TICK, ExitManager
from hotpath.floor_orders import FloorOrder
from hotpath.intake import Intake
from ledger.db import Db
from ledger.key_trust import trusted_key
from ledger.stop_levels import StopLevel, stop_levels
from trading.commands import Command, CommandKind, OrderType, Side
from trading.ledger_trust import LedgerRow, check_entry
from trading.protective_limits import limit_offset
from trading.trailing import TrailingStop
from trading.trailing_resume import PersistedLevel, Resumed, resume_stop

log = logging.getLogger(__name__)

REATTACHED = "exits.reattached"
"""Ops event (info): a working trailing stop is trailed again, from the level in the detail."""
NOT_REATTACHED = "exits.not_reattached"
"""Ops event (warning): a working trailing stop is not trailed after the restart; the detail says
why. Its stop stays where the broker has it; cancel or replace it by hand if it must move."""
LEVEL_IGNORED = "exits.level_ignored"
"""Ops event (warning): a persisted level the trailing rule could not have reached; not used."""

RecordOps = Callable[[str, str, Mapping[str, Any]], None]


@dataclass(frozen=True)
class Reattached:
    resumed: dict[str, Resumed] = field(default_factory=dict)
    """command id -> where its stop resumed."""
    not_reattached: dict[str, str] = field(default_factory=dict)
    """command id -> why it is not trailed."""


async def reattach_trailing_stops(
    db: Db,
    broker: Broker,
    intake: Intake,
    orders: Mapping[str, FloorOrder],
    record_ops: RecordOps | None = None,
) -> Reattached:
    result = Reattached()
    exits = intake.exits
    working = [o.command_id for o in orders.values() if not o.done]
    if exits is None or not working:
        return result

    def ops(kind: str, severity: str, detail: Mapping[str, Any]) -> None:
        if record_ops is not None:
            record_ops(kind, severity, detail)

    trails: list[tuple[Command, int, Decimal, Decimal | None]] = []
    for row in await _trail_entries(db, working):
        problem, trail = await _verified_trail(db, row)
        if trail is None:
            assert problem is not None
            result.not_reattached[row["command_id"]] = problem
            ops(NOT_REATTACHED, "warning", {"command_id": row["command_id"], "reason": problem})
            continue
        trails.append(trail)
    if not trails:
        return result
    levels = await stop_levels(db, [c.command_id for c, _, _, _ in trails])
    try:
        listed: dict[str, OpenOrder] | None = {o.order_ref: o for o in await broker.open_orders()}
    except (BrokerError, TimeoutError) as exc:
        log.error("open orders not listed (%s): trailing stops resume from their persisted levels", exc)
        listed = None

    for command, quantity, initial, offset in trails:
        command_id = command.command_id
        assert command.symbol is not None and command.side is not None
        at_broker = listed.get(command_id) if listed is not None else None
        if listed is not None and at_broker is None:
            # Ended while the floor was down (or not sent yet: then recovery tracks it).
            log.info("trailing stop %s is not working at the broker; not re-attached", command_id)
            continue
        try:
            resumed, level = await _reattach(
                intake, exits, command, (quantity, initial, offset), levels, at_broker, ops
            )
        except Exception as exc:  # noqa: BLE001 - one stop that cannot be taken up must not stop the floor
            log.exception("trailing stop %s not re-attached", command_id)
            resumed, level = f"{type(exc).__name__}: {exc}", None
        if isinstance(resumed, str):
            exits.forget(command.symbol, command_id)
            result.not_reattached[command_id] = resumed
            ops(NOT_REATTACHED, "warning", {"command_id": command_id, "reason": resumed})
            continue
        broker_stop = at_broker.stop_price if at_broker is not None else None
        result.resumed[command_id] = resumed
        detail = {
            "command_id": command_id,
            "symbol": command.symbol,
            "stop": str(resumed.stop),
            "source": resumed.source.value,
            "broker_stop": None if broker_stop is None else str(broker_stop),
            "persisted_stop": None if level is None else str(level.stop),
            "broker_modified": resumed.modify_broker,
        }
        log.info("trailing stop %s re-attached at %s (%s)", command_id, resumed.stop, resumed.source)
        ops(REATTACHED, "info", detail)
    return result


async def _reattach(
    intake: Intake,
    exits: ExitManager,
    command: Command,
    sent: tuple[int, Decimal, Decimal | None],
    levels: Mapping[str, StopLevel],
    at_broker: OpenOrder | None,
    ops: RecordOps,
) -> tuple[Resumed | str, StopLevel | None]:
    """Track one working TRAIL order again; returns where it resumed (or why it is not
    trailed) and its persisted level. ``sent``: its sized quantity, its initial stop and, for a
    stop-limit entry, its limit's distance from the stop."""
    assert command.symbol is not None and command.side is not None
    quantity, initial, offset = sent
    command_id = command.command_id
    rule = TrailingStop(
        Side.BUY if command.side is Side.SELL else Side.SELL,
        DEFAULT_TICK,
        initial,
        command.trail_amount,
        command.trail_percent,
    )
    level = levels.get(command_id)
    persisted = None if level is None else PersistedLevel(level.stop, level.best_price)
    broker_stop = at_broker.stop_price if at_broker is not None else None
    resumed = resume_stop(rule, persisted, broker_stop)
    if resumed.ignored is not None:
        ops(LEVEL_IGNORED, "warning", {"command_id": command_id, "reason": resumed.ignored})
    intake.trail(command, quantity, resumed.stop, await intake.profile(command.account), offset)
    # The level's best price and move count carry on only with the level itself: a stop taken
    # from the broker is tighter than that best price explains.
    believed = level is not None and resumed.ignored is None and resumed.stop == level.stop
    exits.resumed(
        command.symbol,
        command_id,
        best_price=level.best_price if believed and level is not None else None,
        moves=level.moves if believed and level is not None else 0,
    )
    if resumed.modify_broker:
        try:
            limit = exits.limit_of(command_id, resumed.stop)
            intake.broker.modify(command_id, stop_price=resumed.stop, limit_price=limit)
        except BrokerError as exc:
            return f"the broker refused moving its stop {broker_stop} to {resumed.stop}: {exc}", level
    return resumed, level


async def _trail_entries(db: Db, command_ids: list[str]) -> list[Any]:
    """The accepted order entries of ``command_ids`` whose payload names a TRAIL (verified by
    the caller: the filter only saves verifying every working order)."""
    return list(
        await db.fetch(
            "SELECT seq, kind, account, agent_id, command_id, payload, signer, signature, detail"
            " FROM ledger_entries WHERE command_id = ANY($1::text[]) AND authenticated"
            " AND decision = 'accepted' AND kind = ANY($2::text[])"
            " AND position(convert_to('\"TRAIL\"', 'UTF8') in payload) > 0 ORDER BY seq",
            command_ids,
            [CommandKind.ENTER.value, CommandKind.EXIT.value],
        )
    )


async def _verified_trail(
    db: Db, row: Any
) -> tuple[str | None, tuple[Command, int, Decimal, Decimal | None] | None]:
    """The verified TRAIL command, its sized quantity, its initial stop and (an entry sent as a
    stop-limit) its limit's distance from that stop; or why not."""
    entry = LedgerRow.from_mapping(row)
    key = await trusted_key(db, entry.signer)
    checked = check_entry(entry, key.registered() if key is not None else None, revoked_is_problem=False)
    if checked.command is None:
        return checked.problem, None
    command = checked.command
    if command.order_type is not OrderType.TRAIL or command.symbol is None or command.side is None:
        return "its signed command is not a trailing stop", None
    try:
        detail = json.loads(row["detail"]) if row["detail"] else {}
        quantity = detail["quantity"]
        initial = Decimal(detail["initial_stop"]) if "initial_stop" in detail else command.stop_price
        protective = ledgered_limit(command, detail)
    except (ValueError, KeyError, TypeError, ArithmeticError) as exc:
        return f"its detail cannot be read ({exc!r})", None
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity <= 0:
        return f"its sized quantity {quantity!r} is not a positive whole number", None
    if initial is None or not initial.is_finite() or initial <= 0:
        return f"its initial stop {initial!r} is not a positive price", None
    offset = None if protective is None else limit_offset(initial, protective)
    return None, (command, quantity, initial, offset)
