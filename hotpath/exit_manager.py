"""Exit Manager (agent 4.2): trailing stops moved by the floor, tick by tick.

A ``TRAIL`` command becomes a plain ``STP`` order at the broker plus a
:class:`~trading.trailing.TrailingStop` held here. Every price tick of the symbol is offered to
each of its trailing stops; when one moves, the working stop order is modified in place
(same broker order id) from inside the tick handler, so the new stop is on the broker socket
microseconds after the tick arrived. The venue triggers the stop; the floor only moves it.

The floor trails the stop itself rather than sending the broker's native TRAIL type so the
trailing rule (tick rounding, minimum step) is the floor's, identical on every broker, and each
move is visible to the floor as it happens.
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


Modify = Callable[[str, Decimal], int]
"""(order_ref, new stop price) -> socket-write ``perf_counter_ns`` (0 if held)."""


class ExitManager:
    def __init__(self, modify: Modify, on_move: Callable[[StopMoved], None] | None = None) -> None:
        self._modify = modify
        self._on_move = on_move
        self._stops: dict[str, dict[str, TrailingStop]] = {}
        """symbol -> command id -> its trailing stop."""

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
    ) -> None:
        """Trail the working stop order ``command_id`` (a SELL stop protects a long), never past
        ``bound`` (an entry's: :func:`trading.trailing.entry_bound`)."""
        self._stops.setdefault(symbol, {})[command_id] = self._make(
            order_side, stop, tick, trail_amount, trail_percent, bound
        )

    def forget(self, symbol: str, command_id: str) -> None:
        self._stops.get(symbol, {}).pop(command_id, None)

    def stop_of(self, symbol: str, command_id: str) -> Decimal | None:
        trailing = self._stops.get(symbol, {}).get(command_id)
        return None if trailing is None else trailing.stop

    def on_price(self, symbol: str, price: Decimal, recv_ns: int) -> list[StopMoved]:
        stops = self._stops.get(symbol)
        if not stops:
            return []
        moved: list[StopMoved] = []
        for command_id, trailing in list(stops.items()):
            updated = trailing.on_price(price)
            if updated is None:
                continue
            try:
                write_ns = self._modify(command_id, updated.stop)
            except BrokerError as exc:
                # The order ended at the broker (filled, cancelled) before its done event reached us.
                log.warning("stop of %s not moved (%s); no longer trailing it", command_id, exc)
                stops.pop(command_id, None)
                continue
            stops[command_id] = updated
            move = StopMoved(command_id, symbol, trailing.stop, updated.stop, price, recv_ns, write_ns)
            moved.append(move)
            if self._on_move is not None:
                self._on_move(move)
        return moved

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
