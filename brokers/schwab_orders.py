"""The Schwab adapter's own order map and its request budget (state only, no I/O).

Schwab knows an order by its ``orderId`` alone, and a replace gives the order a new one, so
the floor's ``order_ref`` maps to a chain of ids: fills on an earlier id stay the order's,
cancels and replaces go to the newest.

Schwab's app "Order Limit" counts place, replace and cancel requests per account per minute;
:class:`RequestBudget` keeps the adapter under it over a sliding minute (Schwab does not say
whether its window slides or is fixed; sliding is the stricter reading).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from brokers.base import BrokerOrder, BrokerOrderStatus

CANCEL_SHARE_PCT = 25
"""Of each minute's order requests, the share places and replaces leave to cancels."""
WINDOW_S = 60.25
"""A minute, and a margin: Schwab counts a request when it arrives, the budget when it leaves."""


class RequestBudget:
    """At most ``per_min`` takes in any ``WINDOW_S`` seconds (0: no limit)."""

    def __init__(self, per_min: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_min = per_min
        self._clock = clock
        self._taken: deque[float] = deque()
        self._blocked_until = 0.0

    def _trim(self, now: float) -> None:
        while self._taken and now - self._taken[0] >= WINDOW_S:
            self._taken.popleft()

    def _room(self, reserve: int) -> int:
        return max(1, self.per_min - reserve)

    def try_take(self, reserve: int = 0) -> bool:
        """Take one request if the window has room, leaving ``reserve`` of it untaken (the
        cancels' share: a breaker's cancel-all must not find the minute spent on replaces)."""
        now = self._clock()
        if now < self._blocked_until:
            return False
        if self.per_min <= 0:
            return True
        self._trim(now)
        if len(self._taken) >= self._room(reserve):
            return False
        self._taken.append(now)
        return True

    def wait_s(self, reserve: int = 0) -> float:
        """Seconds until a take (leaving ``reserve``) may succeed (0: now)."""
        now = self._clock()
        wait = max(0.0, self._blocked_until - now)
        if self.per_min > 0:
            self._trim(now)
            room = self._room(reserve)
            if len(self._taken) >= room:
                wait = max(wait, self._taken[len(self._taken) - room] + WINDOW_S - now)
        return wait

    def reserve_for_cancels(self) -> int:
        return self.per_min * CANCEL_SHARE_PCT // 100

    def block(self, seconds: float) -> None:
        """Take nothing for ``seconds`` (the broker answered 429 with Retry-After)."""
        self._blocked_until = max(self._blocked_until, self._clock() + seconds)

    def used(self) -> int:
        self._trim(self._clock())
        return len(self._taken)


@dataclass
class Tracked:
    """One floor order at Schwab."""

    order: BrokerOrder
    """As it stands now (a modify changes it once Schwab took the replace)."""
    account_hash: str
    instruction: str = ""
    """The instruction it was first sent with (kept by a replace)."""
    order_id: int | None = None
    """Schwab's id of the order's current incarnation."""
    ids: list[int] = field(default_factory=list)
    status: BrokerOrderStatus = BrokerOrderStatus.HELD
    schwab_status: str = ""
    accepted_id: int | None = None
    """The id an OrderAccepted was last reported for."""
    exec_ids: set[str] = field(default_factory=set)
    filled: int = 0
    notional: Decimal = Decimal(0)
    reported: tuple[BrokerOrderStatus, int] | None = None
    """The last status and filled quantity reported, so a poll that changes nothing is silent."""
    in_flight: bool = False
    """A place (or replace) request is out and its answer not in."""
    unknown_since: datetime | None = None
    """A place whose answer never came: Schwab may have it; found by matching, never re-sent blind."""
    entered_after: datetime | None = None
    """For an order adopted after a restart: Schwab entered it after this, if at all (it was
    ledgered then), so an identical order entered before is another."""
    wanted: BrokerOrder | None = None
    """A modify waiting to go out as a replace (the newest one wins)."""
    cancel_wanted: bool = False
    last_replace: float = 0.0
    """``time.monotonic()`` of the latest replace sent (one per order per REPLACE_INTERVAL_S)."""
    replace_timer: bool = False
    resend_if_missing: bool = True
    """Send it again when the sync finds no order of it at Schwab (a place this process wrote);
    False for one adopted unacknowledged, which waits for the floor to place it again."""
    last_write_ns: int = 0
    done: bool = False
    acknowledged: bool = False
    """Schwab has (had) it: it answered a place with an id, or listed it."""

    @property
    def avg_price(self) -> Decimal | None:
        return self.notional / self.filled if self.filled else None

    @property
    def remaining(self) -> int:
        return max(0, self.order.quantity - self.filled)


class OrderBook:
    """``order_ref`` -> :class:`Tracked`, and every Schwab id -> ``order_ref``."""

    def __init__(self) -> None:
        self.by_ref: dict[str, Tracked] = {}
        self.by_id: dict[int, str] = {}

    def get(self, order_ref: str) -> Tracked | None:
        return self.by_ref.get(order_ref)

    def add(self, order_ref: str, tracked: Tracked) -> None:
        self.by_ref[order_ref] = tracked

    def bind(self, order_ref: str, order_id: int) -> None:
        """``order_id`` is now the order's current incarnation."""
        tracked = self.by_ref[order_ref]
        if order_id not in tracked.ids:
            tracked.ids.append(order_id)
        tracked.order_id = order_id
        tracked.acknowledged = True
        self.by_id[order_id] = order_ref

    def ref_of(self, order_id: int) -> str | None:
        return self.by_id.get(order_id)

    def live(self) -> list[tuple[str, Tracked]]:
        return [(ref, t) for ref, t in self.by_ref.items() if not t.done]
