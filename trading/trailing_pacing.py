"""How many stop modifications the Exit Manager may write, and which go first when it may not.

IB accepts about 50 messages a second from one API client; ``ib_async`` queues whatever goes
beyond (first in, first out), so on a busy tape every trailing stop's every move would wait its
turn, stale moves ahead of fresh ones and far stops ahead of the one the market is about to hit.
The Exit Manager paces its own modifications below that ceiling instead and keeps what it
could not write here:

* **A budget** (a token bucket): ``rate`` modifications a second, up to ``burst`` at once. The
  budget is the Exit Manager's share of the client's 50 messages/s; the rest stays free for new
  orders and cancels (which are never paced by the floor).
* **Coalesced per order**: a stop that moves again before its held move was written keeps only
  its newest level; one write carries it.
* **Nearest the market first**: when the budget refills, the held stops go in order of their
  distance to the last price of their symbol, as a fraction of that price (the stop the market
  reaches first is the one whose stale level costs most).

Time is integer nanoseconds (``perf_counter_ns``); the arithmetic is exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class HeldModify:
    """A stop level the floor decided but has not written yet."""

    command_id: str
    symbol: str
    stop: Decimal
    tick_recv_ns: int
    """When the first tick that moved it since the last write arrived (its wait counts from here)."""


@dataclass
class ModifyBudget:
    """Token bucket: ``rate`` writes a second, at most ``burst`` banked. ``rate`` 0: unpaced."""

    rate: int
    burst: int
    _tokens_ns: int = field(init=False)
    """Banked budget in nanosecond-writes (one write costs ``NS_PER_S``), to keep it exact."""
    _at_ns: int | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.rate < 0 or self.burst < 1:
            raise ValueError(f"rate must be >= 0 and burst >= 1, got {self.rate}, {self.burst}")
        self._tokens_ns = self.burst * NS_PER_S

    @property
    def paced(self) -> bool:
        return self.rate > 0

    def _refill(self, now_ns: int) -> None:
        if self._at_ns is not None and now_ns > self._at_ns:
            self._tokens_ns = min(self.burst * NS_PER_S, self._tokens_ns + (now_ns - self._at_ns) * self.rate)
        if self._at_ns is None or now_ns > self._at_ns:
            self._at_ns = now_ns

    def take(self, now_ns: int) -> bool:
        """Spend one write if the budget has it."""
        if not self.paced:
            return True
        self._refill(now_ns)
        if self._tokens_ns < NS_PER_S:
            return False
        self._tokens_ns -= NS_PER_S
        return True

    def available(self, now_ns: int) -> int:
        """Whole writes the budget has now."""
        if not self.paced:
            return 1 << 30
        self._refill(now_ns)
        return self._tokens_ns // NS_PER_S

    def wait_ns(self, now_ns: int) -> int:
        """How long until one write is available (0: now)."""
        if not self.paced:
            return 0
        self._refill(now_ns)
        missing = NS_PER_S - self._tokens_ns
        return 0 if missing <= 0 else -(-missing // self.rate)


def distance(stop: Decimal, price: Decimal | None) -> Decimal:
    """How far the market is from the stop, as a fraction of the price (unknown price: last)."""
    if price is None or price <= 0:
        return Decimal("Infinity")
    return abs(price - stop) / price


@dataclass
class HeldModifies:
    """The stop levels waiting for budget, newest level per order."""

    _held: dict[str, HeldModify] = field(default_factory=dict)
    coalesced: int = 0
    """Moves replaced by a newer level of the same order before being written."""

    def hold(self, move: HeldModify) -> None:
        previous = self._held.get(move.command_id)
        if previous is not None:
            self.coalesced += 1
            # The wait is the oldest unwritten tick's: that is how stale the broker's stop is.
            move = HeldModify(move.command_id, move.symbol, move.stop, previous.tick_recv_ns)
        self._held[move.command_id] = move

    def drop(self, command_id: str) -> None:
        self._held.pop(command_id, None)

    def __len__(self) -> int:
        return len(self._held)

    def __contains__(self, command_id: object) -> bool:
        return command_id in self._held

    def take(self, n: int, prices: dict[str, Decimal]) -> list[HeldModify]:
        """The ``n`` held stops nearest their market (ties: the longest waiting), removed."""
        if n <= 0 or not self._held:
            return []
        ranked = sorted(
            self._held.values(), key=lambda m: (distance(m.stop, prices.get(m.symbol)), m.tick_recv_ns)
        )
        chosen = ranked[:n]
        for move in chosen:
            del self._held[move.command_id]
        return chosen
