"""Exit Manager (agent 4.2): trailing stops moved by the floor, tick by tick.

A ``TRAIL`` command becomes a plain ``STP`` order at the broker plus a
:class:`~trading.trailing.TrailingStop` held here. Every price tick of the symbol is offered to
each of its trailing stops; when one moves, the working stop order is modified in place
(same broker order id) from inside the tick handler, so the new stop is on the broker socket
microseconds after the tick arrived. The venue triggers the stop; the floor only moves it.

A TRAIL *entry* goes out as a stop-limit (:mod:`trading.protective_limits`): its limit keeps
the distance from the stop it was sent with, so each move writes both prices in the one modify
(``modify_stop_limit``). A TRAIL exit, the protective stop on a position, stays a stop-market
order: a stop-limit exit could be gapped through and leave the position open.

The floor trails the stop itself rather than sending the broker's native TRAIL type so the
trailing rule (tick rounding, minimum step) is the floor's, identical on every broker, and each
move is visible to the floor as it happens.

Every level a stop takes (where it starts, each move) is handed to ``persist`` after the broker
write, so a restarted hot path trails on from the last level (:mod:`hotpath.trailing_restore`);
the callback only records it for a background writer (:mod:`hotpath.stop_level_writer`), so the
tick handler never waits on the database.

Pacing (:mod:`trading.trailing_pacing`): with a budget, the modifications go out at most at its
rate. A move beyond it is held, the stop's newest level only, and written when the budget
refills, the stops nearest their market first; the level the floor trails from moves at once
either way, so a held stop loses no ground. A stop that ends at the broker without the floor
asking (cancelled behind its back, rejected) is the guard's (:mod:`hotpath.stop_guard`).

The stops trailed here are the desk's TRAIL orders and the floor's own protective stops on
every filled entry's position (:mod:`hotpath.protective_stops`); an entry's TRAIL is bounded
(:func:`trading.trailing.entry_bound`), an exit's is not.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from brokers.base import BrokerError
from trading.commands import Side
from trading.trailing import TrailingStop
from trading.trailing_pacing import HeldModifies, HeldModify, ModifyBudget

log = logging.getLogger(__name__)

DEFAULT_TICK = Decimal("0.01")


@dataclass(frozen=True)
class StopMoved:
    command_id: str
    symbol: str
    old_stop: Decimal
    new_stop: Decimal
    price: Decimal
    tick_recv_ns: int
    modify_write_ns: int
    """``perf_counter_ns`` of the modify's socket write (0 if the broker held it)."""
    delayed: bool = False
    """Held by the floor's pacing before it was written (``tick_recv_ns`` is then the first
    unwritten tick's, so the latency counts the whole wait)."""

    @property
    def tick_to_write_us(self) -> float | None:
        return None if not self.modify_write_ns else (self.modify_write_ns - self.tick_recv_ns) / 1000


@dataclass(frozen=True)
class TrailLevel:
    """Where one trailing stop stands: what is persisted after each change."""

    command_id: str
    symbol: str
    order_side: Side
    trailing: TrailingStop
    best_price: Decimal | None
    """The best price seen since it was tracked (highest for a SELL stop); None before a tick."""
    moves: int


Modify = Callable[[str, Decimal], int]
"""(order_ref, new stop price) -> socket-write ``perf_counter_ns`` (0 if held)."""
ModifyStopLimit = Callable[[str, Decimal, Decimal], int]
"""(order_ref, new stop price, new limit price) -> the same, for a stop-limit."""
Persist = Callable[[TrailLevel], None]
"""Records a level for the background writer; must not block (called from the tick handler)."""
Schedule = Callable[[float, Callable[[], object]], object]
"""(delay in seconds, callback): runs the callback later on the same loop (``loop.call_later``)."""


@dataclass
class PacingCounts:
    """What pacing did since the process started."""

    written: int = 0
    delayed: int = 0
    """Modifications written after waiting for the budget."""
    coalesced: int = 0
    """Levels superseded by a newer one of the same stop before they were written."""


class ExitManager:
    def __init__(
        self,
        modify: Modify,
        on_move: Callable[[StopMoved], None] | None = None,
        persist: Persist | None = None,
        *,
        modify_stop_limit: ModifyStopLimit | None = None,
        budget: ModifyBudget | None = None,
        schedule: Schedule | None = None,
        clock: Callable[[], int] = time.perf_counter_ns,
    ) -> None:
        self._modify = modify
        self._modify_stop_limit = modify_stop_limit
        self._on_move = on_move
        self._persist = persist
        self._budget = budget if budget is not None and budget.paced else None
        self._schedule = schedule
        self._clock = clock
        self._held = HeldModifies()
        self._flush_due = False
        self._written: dict[str, Decimal] = {}
        """command id -> the level the broker was last sent."""
        self._prices: dict[str, Decimal] = {}
        """symbol -> the last price offered (which held stops are nearest their market)."""
        self.counts = PacingCounts()
        self._stops: dict[str, dict[str, TrailingStop]] = {}
        """symbol -> command id -> its trailing stop."""
        self._best: dict[str, Decimal] = {}
        """command id -> the best price seen for it."""
        self._moves: dict[str, int] = {}
        """command id -> how many times it moved (in this process and, once resumed, before)."""
        self._limit_offsets: dict[str, Decimal] = {}
        """command id -> its limit's distance from its stop (a stop-limit entry's)."""

    def initial_stop(
        self,
        order_side: Side,
        price: Decimal,
        *,
        trail_amount: Decimal | None,
        trail_percent: Decimal | None,
        tick: Decimal = DEFAULT_TICK,
    ) -> Decimal:
        """Where a new trailing stop starts when the command names no stop: one trail from
        ``price``, on the tick grid away from it."""
        return self._make(order_side, price, tick, trail_amount, trail_percent).candidate(price)

    def track(
        self,
        command_id: str,
        symbol: str,
        order_side: Side,
        stop: Decimal,
        *,
        trail_amount: Decimal | None,
        trail_percent: Decimal | None,
        tick: Decimal = DEFAULT_TICK,
        bound: Decimal | None = None,
        limit_offset: Decimal | None = None,
    ) -> None:
        """Trail the working stop order ``command_id`` (a SELL stop protects a long), never past
        ``bound`` (an entry's: :func:`trading.trailing.entry_bound`). ``limit_offset``: a
        stop-limit's limit minus its stop, kept as the stop moves."""
        trailing = self._make(order_side, stop, tick, trail_amount, trail_percent, bound)
        if limit_offset is None:
            self._limit_offsets.pop(command_id, None)
        else:
            self._limit_offsets[command_id] = limit_offset
        self._stops.setdefault(symbol, {})[command_id] = trailing
        self._written[command_id] = stop
        self._moves.setdefault(command_id, 0)
        self._persisted(command_id, symbol, trailing)

    def resumed(self, symbol: str, command_id: str, *, best_price: Decimal | None, moves: int) -> None:
        """A stop tracked again after a restart carries on with the best price and move count
        it had before (its level is the one :meth:`track` was given)."""
        trailing = self._stops.get(symbol, {}).get(command_id)
        if trailing is None:
            return
        if best_price is not None:
            self._best[command_id] = best_price
        self._moves[command_id] = moves
        self._persisted(command_id, symbol, trailing)

    def forget(self, symbol: str, command_id: str) -> None:
        self._stops.get(symbol, {}).pop(command_id, None)
        self._best.pop(command_id, None)
        self._moves.pop(command_id, None)
        self._limit_offsets.pop(command_id, None)
        self._written.pop(command_id, None)
        self._held.drop(command_id)

    def tracking(self, command_id: str) -> bool:
        return any(command_id in stops for stops in self._stops.values())

    def stop_of(self, symbol: str, command_id: str) -> Decimal | None:
        trailing = self._stops.get(symbol, {}).get(command_id)
        return None if trailing is None else trailing.stop

    def trailing_of(self, symbol: str, command_id: str) -> TrailingStop | None:
        """The stop's rule and level (the floor's: a held level is not at the broker yet)."""
        return self._stops.get(symbol, {}).get(command_id)

    def best_of(self, command_id: str) -> Decimal | None:
        return self._best.get(command_id)

    @property
    def held(self) -> int:
        """Stops whose newest level waits for the pacing budget."""
        return len(self._held)

    def on_price(self, symbol: str, price: Decimal, recv_ns: int) -> list[StopMoved]:
        self._prices[symbol] = price
        stops = self._stops.get(symbol)
        if not stops:
            return []
        moved: list[StopMoved] = []
        for command_id, trailing in list(stops.items()):
            self._note_best(command_id, trailing, price)
            updated = trailing.on_price(price)
            if updated is None:
                continue
            stops[command_id] = updated
            budget = self._budget
            if budget is not None and (command_id in self._held or not budget.take(self._clock())):
                # Over budget: the floor trails on from the new level, the broker gets the
                # newest one when the budget allows (coalesced, nearest the market first).
                self._held.hold(HeldModify(command_id, symbol, updated.stop, recv_ns))
                self.counts.coalesced = self._held.coalesced
                self._flush_later()
                continue
            move = self._write_move(symbol, command_id, updated, price, recv_ns, delayed=False)
            if move is not None:
                moved.append(move)
        return moved

    def flush(self) -> list[StopMoved]:
        """Write the held levels the budget allows now, nearest the market first; the rest wait
        for the next refill."""
        self._flush_due = False
        if self._budget is None or not len(self._held):
            return []
        moved: list[StopMoved] = []
        for held in self._held.take(self._budget.available(self._clock()), self._prices):
            trailing = self._stops.get(held.symbol, {}).get(held.command_id)
            if trailing is None or not self._budget.take(self._clock()):
                continue
            price = self._prices.get(held.symbol, trailing.stop)
            recv_ns = held.tick_recv_ns
            move = self._write_move(held.symbol, held.command_id, trailing, price, recv_ns, delayed=True)
            if move is not None:
                moved.append(move)
        if len(self._held):
            self._flush_later()
        return moved

    def _flush_later(self) -> None:
        if self._flush_due or self._schedule is None or self._budget is None:
            return
        self._flush_due = True
        self._schedule(self._budget.wait_ns(self._clock()) / 1e9, self.flush)

    def limit_of(self, command_id: str, stop: Decimal) -> Decimal | None:
        """The limit a stop-limit ``command_id`` has with its stop at ``stop`` (None: a stop)."""
        offset = self._limit_offsets.get(command_id)
        return None if offset is None else stop + offset

    def _write(self, command_id: str, stop: Decimal) -> int:
        """The modify at the broker: the socket write's ``perf_counter_ns`` (0 if held). A
        stop-limit's limit moves with its stop, in the same modify."""
        limit = self.limit_of(command_id, stop)
        if limit is None or self._modify_stop_limit is None:
            # Without a stop-limit modify the limit stays where it was sent: still within the
            # sizing, which was done at it (trading.protective_limits.limit_offset), only looser.
            return self._modify(command_id, stop)
        return self._modify_stop_limit(command_id, stop, limit)

    def _write_move(
        self,
        symbol: str,
        command_id: str,
        trailing: TrailingStop,
        price: Decimal,
        recv_ns: int,
        *,
        delayed: bool,
    ) -> StopMoved | None:
        try:
            write_ns = self._write(command_id, trailing.stop)
        except BrokerError as exc:
            # The order ended at the broker (filled, cancelled) before its done event reached us.
            log.warning("stop of %s not moved (%s); no longer trailing it", command_id, exc)
            self.forget(symbol, command_id)
            return None
        old = self._written.get(command_id, trailing.stop)
        self._written[command_id] = trailing.stop
        self._moves[command_id] = self._moves.get(command_id, 0) + 1
        self.counts.written += 1
        if delayed:
            self.counts.delayed += 1
        move = StopMoved(command_id, symbol, old, trailing.stop, price, recv_ns, write_ns, delayed)
        if self._on_move is not None:
            self._on_move(move)
        self._persisted(command_id, symbol, trailing)
        return move

    def _note_best(self, command_id: str, trailing: TrailingStop, price: Decimal) -> None:
        best = self._best.get(command_id)
        long = trailing.position_side is Side.BUY
        if best is None or (price > best if long else price < best):
            self._best[command_id] = price

    def _persisted(self, command_id: str, symbol: str, trailing: TrailingStop) -> None:
        if self._persist is None:
            return
        order_side = Side.SELL if trailing.position_side is Side.BUY else Side.BUY
        best, moves = self._best.get(command_id), self._moves.get(command_id, 0)
        level = TrailLevel(command_id, symbol, order_side, trailing, best, moves)
        try:
            self._persist(level)
        except Exception:  # noqa: BLE001 - a stop that moved at the broker stays moved
            log.exception("level of %s not recorded for persisting", command_id)

    @staticmethod
    def _make(
        order_side: Side,
        stop: Decimal,
        tick: Decimal,
        trail_amount: Decimal | None,
        trail_percent: Decimal | None,
        bound: Decimal | None = None,
    ) -> TrailingStop:
        # A SELL stop protects a long position (position side BUY) and trails below the price.
        position_side = Side.BUY if order_side is Side.SELL else Side.SELL
        return TrailingStop(position_side, tick, stop, trail_amount, trail_percent, bound=bound)
