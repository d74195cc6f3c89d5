"""Where a trailing stop resumes after a restart.

Three witnesses to where the stop stands:

* the ledger's initial stop, the one the order was sent at (signed command, verified entry);
* the persisted level (table ``stop_levels``), written in the background after each move, so
  it may lag the broker by the moves of the last moments before a crash;
* the broker's working order's stop, which is what actually protects the position.

A trailing stop only ever tightens (rises for a SELL stop, falls for a BUY stop), so the
tightest credible witness is the newest: the stop resumes there. The broker's stop is the truth
when it is the tighter one (a move written to the broker whose row never reached the
database). When the persisted level is the tighter one (a move recorded but whose modify never
left the process, held by the broker client's pacing or a session that was down), the broker's
order is moved up to it at once: the floor had already decided that level. A persisted level
is credible only if the trailing rule could have produced it: no looser than the initial stop
and no tighter than one trail from the best price recorded with it. Pure.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal

from trading.commands import Side
from trading.trailing import TrailingStop


class ResumedFrom(enum.StrEnum):
    """Which witness a resumed stop came from."""

    INITIAL = "initial"
    PERSISTED = "persisted"
    BROKER = "broker"


@dataclass(frozen=True)
class PersistedLevel:
    stop: Decimal
    best_price: Decimal | None


@dataclass(frozen=True)
class Resumed:
    stop: Decimal
    source: ResumedFrom
    modify_broker: bool
    """The broker's stop is looser than ``stop``: move it there now."""
    ignored: str | None = None
    """Why the persisted level was not believed, if it was not."""


def tighter(order_side: Side, a: Decimal, b: Decimal) -> bool:
    """True when stop ``a`` is strictly tighter than ``b`` for a stop order of ``order_side``
    (higher for a SELL stop, which protects a long)."""
    return a > b if order_side is Side.SELL else a < b


def persisted_problem(rule: TrailingStop, level: PersistedLevel) -> str | None:
    """Why ``level`` could not have been reached by ``rule`` (whose ``stop`` is the initial
    stop), or None."""
    order_side = Side.SELL if rule.position_side is Side.BUY else Side.BUY
    if level.stop <= 0:
        return f"stop {level.stop} is not positive"
    if tighter(order_side, rule.stop, level.stop):
        return f"stop {level.stop} is looser than the initial stop {rule.stop}"
    if level.stop == rule.stop:
        return None
    if level.best_price is None or level.best_price <= 0:
        return f"stop {level.stop} moved but no best price was recorded"
    reachable = rule.candidate(level.best_price)
    if tighter(order_side, level.stop, reachable):
        best = level.best_price
        return f"stop {level.stop} is tighter than one trail from the best price {best} ({reachable})"
    return None


def resume_stop(rule: TrailingStop, persisted: PersistedLevel | None, at_broker: Decimal | None) -> Resumed:
    """Where the stop whose trailing ``rule`` starts at ``rule.stop`` (the initial stop) resumes,
    given its persisted level and the broker's working stop (None when unknown)."""
    order_side = Side.SELL if rule.position_side is Side.BUY else Side.BUY
    stop, source = rule.stop, ResumedFrom.INITIAL
    ignored = None
    if persisted is not None:
        ignored = persisted_problem(rule, persisted)
        if ignored is None and tighter(order_side, persisted.stop, stop):
            stop, source = persisted.stop, ResumedFrom.PERSISTED
    if at_broker is not None and tighter(order_side, at_broker, stop):
        stop, source = at_broker, ResumedFrom.BROKER
    modify = at_broker is not None and tighter(order_side, stop, at_broker)
    return Resumed(stop, source, modify, ignored)
