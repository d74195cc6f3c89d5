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
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from brokers.base import BrokerError
from trading.commands import Side
from trading.trailing import TrailingStop

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


class ExitManager:
    def __init__(
        self,
        modify: Modify,
        on_move: Callable[[StopMoved], None] | None = None,
        persist: Persist | None = None,
        *,
        modify_stop_limit: ModifyStopLimit | None = None,
    ) -> None:
        self._modify = modify
        self._modify_stop_limit = modify_stop_limit
        self._on_move = on_move
        self._persist = persist
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

    def tracking(self, command_id: str) -> bool:
        return any(command_id in stops for stops in self._stops.values())

    def stop_of(self, symbol: str, command_id: str) -> Decimal | None:
        trailing = self._stops.get(symbol, {}).get(command_id)
        return None if trailing is None else trailing.stop

    def on_price(self, symbol: str, price: Decimal, recv_ns: int) -> list[StopMoved]:
        stops = self._stops.get(symbol)
        if not stops:
            return []
        moved: list[StopMoved] = []
        for command_id, trailing in list(stops.items()):
            self._note_best(command_id, trailing, price)
            updated = trailing.on_price(price)
            if updated is None:
                continue
            try:
                write_ns = self._write(command_id, updated.stop)
            except BrokerError as exc:
                # The order ended at the broker (filled, cancelled) before its done event reached us.
                log.warning("stop of %s not moved (%s); no longer trailing it", command_id, exc)
                self.forget(symbol, command_id)
                continue
            stops[command_id] = updated
            self._moves[command_id] = self._moves.get(command_id, 0) + 1
            move = StopMoved(command_id, symbol, trailing.stop, updated.stop, price, recv_ns, write_ns)
            moved.append(move)
            if self._on_move is not None:
                self._on_move(move)
            self._persisted(command_id, symbol, updated)
        return moved

    def limit_of(self, command_id: str, stop: Decimal) -> Decimal | None:
        """The limit a stop-limit ``command_id`` has with its stop at ``stop`` (None: a stop)."""
        offset = self._limit_offsets.get(command_id)
        return None if offset is None else stop + offset

    def _write(self, command_id: str, stop: Decimal) -> int:
        limit = self.limit_of(command_id, stop)
        if limit is None or self._modify_stop_limit is None:
            # Without a stop-limit modify the limit stays where it was sent: still within the
            # sizing, which was done at it (trading.protective_limits.limit_offset), only looser.
            return self._modify(command_id, stop)
        return self._modify_stop_limit(command_id, stop, limit)

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
