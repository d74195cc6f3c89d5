"""A symbol's tape: every trade (print) at the venue, in order, none coalesced.

Each print carries the symbol's session volume after it and the session's volume-weighted
average price, as TWS's RTVolume tick does (``price;size;epochMillis;totalVolume;vwap;single``),
so a client can tell a missed print from the jump in volume. :meth:`Tape.drain` hands the
prints since the last drain to the server (one :class:`~paper.venue.events.TradeEvent` per
symbol and flush); the newest :data:`KEPT` stay readable (:meth:`Tape.recent`) for whoever
checks what a client was sent against what traded.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal

from paper.venue.messages import Print

KEPT = 10_000
"""Prints kept for :meth:`Tape.recent` per symbol (the oldest go first)."""
VWAP_PLACES = Decimal("0.00000001")


class Tape:
    __slots__ = ("tick", "seq", "volume", "turnover", "pending", "kept")

    def __init__(self, tick: Decimal) -> None:
        self.tick = tick
        self.seq = 0
        """Prints since the venue started (or was reset); never restarts at a session close."""
        self.volume = 0
        self.turnover = 0
        """Sum of price (ticks) x size this session: the VWAP's numerator."""
        self.pending: list[Print] = []
        self.kept: deque[Print] = deque(maxlen=KEPT)

    def record(self, price_ticks: int, size: int, time_ns: int) -> Print:
        self.seq += 1
        self.volume += size
        self.turnover += price_ticks * size
        vwap = (Decimal(self.turnover) * self.tick / self.volume).quantize(VWAP_PLACES)
        done = Print(self.seq, price_ticks * self.tick, size, time_ns, self.volume, vwap)
        self.pending.append(done)
        self.kept.append(done)
        return done

    def drain(self) -> list[Print]:
        out, self.pending = self.pending, []
        return out

    def recent(self) -> tuple[Print, ...]:
        return tuple(self.kept)

    def session_close(self) -> None:
        """A new trading day: volume and VWAP start again (the sequence does not)."""
        self.volume = 0
        self.turnover = 0
