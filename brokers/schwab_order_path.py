"""Place, cancel, cancel all and modify at Schwab: synchronous calls that hand each request to
schwab-py and return.

Schwab's order path is HTTP, not a socket the floor writes: a call starts the request (a task on
the loop) and returns, so the hot path never waits for Schwab's answer. ``write_ns`` and
:meth:`last_write_ns` are the moment the request was handed to the HTTP client.

Every order request counts against the account's order limit (:class:`RequestBudget`). One
that fits goes at once; the others wait in one queue, cancels first (and among a cancel-all's,
nearest the market first), then places and replaces in arrival order. A modify waiting there is
replaced by a newer modify of the same order (a trailing stop moved three times while the budget
is spent costs one replace, at its newest level). An order is replaced once a second at most, and
places and replaces leave a quarter of each minute's limit to cancels, so stop moves cannot
spend what the breaker's cancel-all needs. What each request does with the answer:
:mod:`brokers.schwab_requests`.

Differences from IB, by design:

* no global cancel: :meth:`cancel_all` cancels each open order (the ones this adapter placed,
  then the ones Schwab lists that it did not), and ends the ones not yet sent locally;
* a replace is Schwab's cancel-and-new: the order gets a new id, reported as a second
  :class:`~brokers.base.OrderAccepted` carrying it;
* a place whose answer never came (timeout, connection lost) may or may not be at Schwab, which
  has no client order id: it is never sent again blindly; the next sync looks for it by its
  fields (:mod:`brokers.schwab_sync`).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from brokers.base import (
    BrokerOrder,
    BrokerOrderStatus,
    DuplicateOrderRef,
    OrderInvalid,
    Placement,
    UnknownOrderRef,
)
from brokers.schwab_context import SESSION_LABEL, SchwabContext, log
from brokers.schwab_orders import RequestBudget, Tracked
from brokers.schwab_requests import CANCEL, CANCEL_FAILED, PLACE, Refresh, Requests
from brokers.schwab_wire import order_spec
from trading.commands import OrderType

ENTERED_TIME_SLACK = timedelta(seconds=5)
"""Schwab's entered time is whole seconds (truncated), on Schwab's clock, not the floor's: an
order Schwab has must not be missed (it would be sent again), so a few seconds of leeway; two
identical orders ledgered closer than that are told apart by nothing."""
REPLACE_INTERVAL_S = 1.0
"""One replace per order per second at most: the newest wanted level goes when it is up."""


class OrderPath(Requests):
    def __init__(
        self, ctx: SchwabContext, refresh: Refresh, on_failure: Callable[[BaseException], None]
    ) -> None:
        self._ctx = ctx
        self._refresh = refresh
        """GET the order and report what changed (brokers.schwab_sync)."""
        self._on_failure = on_failure
        """A request failed for the session's sake (login refused, Schwab unreachable)."""
        self._queue: list[tuple[int, Decimal, int, str, str]] = []
        self._queued: set[tuple[str, str]] = set()
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._dispatcher: asyncio.Task[None] | None = None
        self.last_cancel_all_ns = 0
        self._foreign_due = False

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        if self._dispatcher is None:
            self._dispatcher = asyncio.get_running_loop().create_task(self._dispatch(), name="schwab-orders")

    async def close(self) -> None:
        tasks = [*self._tasks, *([self._dispatcher] if self._dispatcher else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._dispatcher = None

    def resume(self) -> None:
        """The session is ready again: what waited goes out."""
        if self._foreign_due:
            self._foreign_due = False
            self._spawn(self._cancel_foreign(), "schwab-cancel-foreign")
        self._wake.set()

    def held(self) -> int:
        return sum(1 for _, t in self._ctx.book.live() if t.order_id is None and not t.in_flight)

    # --- the calls ------------------------------------------------------------------------

    def place(self, order: BrokerOrder) -> Placement:
        book = self._ctx.book
        known = book.get(order.order_ref)
        if known is not None:
            if known.order != order and not known.ids:
                raise DuplicateOrderRef(f"order_ref {order.order_ref} is known with other fields")
            if (
                known.order_id is None
                and not known.in_flight
                and known.unknown_since is None
                and not known.done
            ):
                self._submit(PLACE, order.order_ref, "place")  # adopted, never acknowledged: send it now
            return Placement(order.order_ref, sent=False, session=SESSION_LABEL, duplicate=True)
        order_spec(order)  # raises OrderInvalid before anything is kept
        tracked = Tracked(order, self._ctx.hash_of(order.account))
        book.add(order.order_ref, tracked)
        write_ns = self._submit(PLACE, order.order_ref, "place")
        return Placement(
            order.order_ref, sent=write_ns > 0, write_ns=write_ns, session=SESSION_LABEL, client_id=0
        )

    def adopt(
        self,
        order: BrokerOrder,
        filled: int,
        acknowledged: bool,
        order_id: int | None,
        sent_after: datetime | None = None,
    ) -> None:
        if self._ctx.book.get(order.order_ref) is not None:
            return
        tracked = Tracked(order, self._ctx.hash_of(order.account), filled=filled, acknowledged=acknowledged)
        tracked.status = BrokerOrderStatus.SUBMITTED if acknowledged else BrokerOrderStatus.HELD
        self._ctx.book.add(order.order_ref, tracked)
        if order_id is not None:
            self._ctx.book.bind(order.order_ref, order_id)
        else:
            # Perhaps placed by an earlier process (Schwab keeps no order_ref): looked for by
            # its fields at the first reconciliation, among the orders entered since it was
            # ledgered (an identical one the floor ended before is not it), else the day's.
            tracked.unknown_since = sent_after or datetime.now(UTC) - timedelta(days=1)
            if sent_after is not None:
                tracked.entered_after = sent_after - ENTERED_TIME_SLACK
            tracked.resend_if_missing = False

    def resend(self, order_ref: str) -> None:
        """Place again an order whose place went unanswered and that Schwab does not list; one
        cancelled meanwhile is not sent, it ends here."""
        tracked = self._known(order_ref)
        if tracked.done or tracked.order_id is not None:
            return
        if tracked.cancel_wanted:
            self._end_locally(order_ref, tracked)
        else:
            self._submit(PLACE, order_ref, "place")

    def found(self, order_ref: str) -> None:
        """An order whose place went unanswered was found at Schwab: what waited for its id (a
        cancel, a modify) goes now."""
        tracked = self._known(order_ref)
        if tracked.done or tracked.order_id is None:
            return
        if tracked.cancel_wanted:
            self._submit(CANCEL, order_ref, "cancel")
        elif tracked.wanted is not None:
            self._submit(PLACE, order_ref, "replace")

    def cancel(self, order_ref: str) -> int:
        tracked = self._known(order_ref)
        if tracked.done:
            return 0
        if tracked.order_id is None and not tracked.in_flight and tracked.unknown_since is None:
            self._end_locally(order_ref, tracked)
            return 0
        tracked.cancel_wanted = True
        tracked.wanted = None
        if tracked.order_id is None or tracked.in_flight:
            return 0  # sent after the place's (or replace's) answer, to the id it names
        return self._submit(CANCEL, order_ref, "cancel")

    def cancel_all(self) -> int:
        """Every order this adapter knows ends: unsent ones here, the others by one cancel each,
        nearest the market first; Schwab's own list is asked next for orders it did not place."""
        first = 0
        live = self._ctx.book.live()
        for ref, _ in sorted(live, key=lambda item: self._distance(item[1].order)):
            written = self.cancel(ref)
            first = first or written
        self._drop_queued_places()
        self.last_cancel_all_ns = first or time.perf_counter_ns()
        if self._ctx.ready:
            self._spawn(self._cancel_foreign(), "schwab-cancel-foreign")
        elif self._ctx.login_required is not None:
            # No session comes back without a person: Schwab's open orders cannot even be
            # listed, so say so (the floor's own are reported by the breaker's sweep).
            self._ctx.notice(
                0,
                f"cancel all: nothing can be cancelled at Schwab until someone logs in "
                f"({self._ctx.login_required}); cancel its open orders at Schwab (its site or app)",
                ops_kind=CANCEL_FAILED,
                severity="critical",
            )
        else:
            self._foreign_due = True  # first thing once the session is back (resume)
        return self.last_cancel_all_ns

    def modify(self, order_ref: str, **changes: Any) -> int:
        tracked = self._known(order_ref)
        if tracked.done:
            raise OrderInvalid("order_ref", f"{order_ref} is done ({tracked.status})")
        base = tracked.wanted or tracked.order
        fields = {k: v for k, v in changes.items() if v is not None}
        desired = replace(base, **fields)
        order_spec(desired)
        if tracked.order_id is None and not tracked.in_flight:
            tracked.order = desired  # not sent yet: what will be sent changes
            return 0
        tracked.wanted = desired
        if tracked.order_id is None or tracked.in_flight:
            return 0  # replaced once the answer in flight names the id to replace
        return self._submit(PLACE, order_ref, "replace")

    def last_write_ns(self, order_ref: str) -> int:
        tracked = self._ctx.book.get(order_ref)
        return tracked.last_write_ns if tracked is not None else 0

    # --- queue and budget ---------------------------------------------------------------

    def _known(self, order_ref: str) -> Tracked:
        tracked = self._ctx.book.get(order_ref)
        if tracked is None:
            raise UnknownOrderRef(order_ref)
        return tracked

    def _distance(self, order: BrokerOrder) -> Decimal:
        """How far the order rests from the market: 0 for a market order or without a quote."""
        price = (
            order.stop_price if order.order_type in (OrderType.STP, OrderType.STP_LMT) else order.limit_price
        )
        mid = self._ctx.mids(order.symbol)
        if price is None or mid is None:
            return Decimal(0)
        return abs(price - mid)

    def _submit(self, priority: int, order_ref: str, kind: str) -> int:
        """Start the request now if the session and the budget allow (returns the hand-off
        ``perf_counter_ns()``), else queue it (returns 0)."""
        tracked = self._known(order_ref)
        if (order_ref, kind) in self._queued:
            return 0  # already waiting; a replace sends the newest wanted order when it goes
        if kind == "replace" and self._too_soon(order_ref, tracked):
            return 0
        budget = self._ctx.budget(tracked.account_hash)
        if self._ctx.ready and not self._queue and budget.try_take(self._reserve(kind, budget)):
            return self._start(order_ref, kind)
        distance = self._distance(tracked.order) if priority == CANCEL else Decimal(0)
        heapq.heappush(self._queue, (priority, distance, next(self._seq), order_ref, kind))
        self._queued.add((order_ref, kind))
        self._wake.set()
        return 0

    @staticmethod
    def _reserve(kind: str, budget: RequestBudget) -> int:
        return 0 if kind == "cancel" else budget.reserve_for_cancels()

    def _too_soon(self, order_ref: str, tracked: Tracked) -> bool:
        """A replace within REPLACE_INTERVAL_S of the order's last one waits out the rest (once,
        then sends the newest wanted level): a trailing stop moved tick by tick would spend the
        minute's order limit in seconds, since every replace counts."""
        wait = tracked.last_replace + REPLACE_INTERVAL_S - time.monotonic()
        if wait <= 0:
            return False
        if not tracked.replace_timer:
            tracked.replace_timer = True

            def again() -> None:
                tracked.replace_timer = False
                if tracked.wanted is not None and not tracked.done and not tracked.in_flight:
                    self._submit(PLACE, order_ref, "replace")

            asyncio.get_running_loop().call_later(wait, again)
        return True

    def _drop_queued_places(self) -> None:
        kept = []
        for item in self._queue:
            _, _, _, ref, kind = item
            if kind == "place":
                self._queued.discard((ref, kind))
                tracked = self._ctx.book.get(ref)
                if tracked is not None and not tracked.done:
                    self._end_locally(ref, tracked)
            else:
                kept.append(item)
        heapq.heapify(kept)
        self._queue = kept

    async def _dispatch(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue and self._ctx.ready:
                _, _, _, ref, kind = self._queue[0]
                tracked = self._ctx.book.get(ref)
                if tracked is None or tracked.done:
                    heapq.heappop(self._queue)
                    self._queued.discard((ref, kind))
                    continue
                budget = self._ctx.budget(tracked.account_hash)
                reserve = self._reserve(kind, budget)
                if not budget.try_take(reserve):
                    # Until the budget frees, or a request of a higher rank (a cancel) arrives.
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), max(0.01, budget.wait_s(reserve)))
                    continue
                heapq.heappop(self._queue)
                self._queued.discard((ref, kind))
                self._start(ref, kind)

    def _start(self, order_ref: str, kind: str) -> int:
        tracked = self._known(order_ref)
        if kind == "replace" and tracked.in_flight:
            return 0  # one replace at a time: the one in flight sends the newest wanted after it
        now = time.perf_counter_ns()
        tracked.last_write_ns = now
        run = {"place": self._place, "cancel": self._cancel, "replace": self._replace}[kind]
        if kind != "cancel":
            tracked.in_flight = True
        if kind == "replace":
            tracked.last_replace = time.monotonic()
        self._spawn(run(order_ref, tracked), f"schwab-{kind}")
        return now

    def _spawn(self, work: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.warning("schwab: %s failed: %s: %s", task.get_name(), type(exc).__name__, exc)
            self._on_failure(exc)

    def _requeue(self, order_ref: str, kind: str, priority: int) -> None:
        heapq.heappush(self._queue, (priority, Decimal(0), next(self._seq), order_ref, kind))
        self._queued.add((order_ref, kind))
        self._wake.set()
