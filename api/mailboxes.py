"""One mailbox per subscriber: what the hub puts in never waits, what the subscriber takes out
it awaits.

A :class:`Subscription` is an async iterator over its mailbox. The hub calls ``offer``/``put``
synchronously on the event loop; each stores at most a bounded amount and wakes the reader, so
a subscriber that never reads costs the hub nothing but its bounded mailbox:

- :class:`QueueSubscription` (order events, security events): a bounded FIFO. Offered one more
  item than it holds, the subscription ends: its items are dropped and the reader's next step
  raises :class:`ResyncRequired` (``resync.overflow``), since a stream with a hole in it would
  mislead. The hub removes it.
- :class:`LatestSubscription` (the breaker's state): keeps only the newest value.
- :class:`TapeSubscription` (a symbol's trades): a snapshot of the tape, then each trade, in
  order, from a bounded FIFO. One that falls further behind than it holds is not ended: its
  queue is dropped and it is sent a fresh snapshot instead (which counts every trade it
  missed), then the trades after it; so is every subscriber when a new session starts.
- :class:`BookSubscription` (an order book): conflates by construction. It holds no updates at
  all, only the book the subscriber was last sent; when the reader wakes it is sent the
  difference between that and the symbol's book now (:func:`trading.depth_book.delta_between`),
  so however many updates it slept through, it gets one delta of the latest size of every level
  that changed, linked to the sequence it last saw. After a gap in the broker's feed
  (:meth:`BookSubscription.resync`) it is sent a fresh snapshot marked ``gap`` instead.

``close()`` (the subscriber leaving) ends iteration; ``end(reason)`` (the hub: overflow, or the
hub stopping) makes the next step raise :class:`ResyncRequired` with that reason.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from trading.depth_book import BookDelta, BookSnapshot, SymbolBook
from trading.trade_tape import CountedTrade, TapeSnapshot

T = TypeVar("T")

OVERFLOW = "resync.overflow"
"""The subscriber fell further behind than its mailbox holds; what it missed is gone."""
FEED_INTERRUPTED = "resync.feed_interrupted"
"""The hub could not take a record it should have (the key registry to verify it against was
unreachable): the stream has a hole; refetch."""
HUB_STOPPED = "resync.hub_stopped"
"""The API process is stopping; reconnect (to another process, or when it is back)."""


class ResyncRequired(Exception):  # noqa: N818 - a message to the subscriber, not a bug
    """The stream has ended and what the subscriber holds may be incomplete: fetch the current
    state again (a snapshot, the orders query) and subscribe anew."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class Subscription(Generic[T]):
    """``async for item in sub``; ``sub.close()`` when done (idempotent)."""

    def __init__(self, on_close: Callable[[Any], object]) -> None:
        """``on_close(sub)``: the owner forgets ``sub`` (called once, when it closes or ends)."""
        self._on_close = on_close
        self._forgotten = False
        self._waiter: asyncio.Future[None] | None = None
        self._ended: ResyncRequired | None = None
        self._closed = False

    @property
    def open(self) -> bool:
        return not self._closed and self._ended is None

    @property
    def ended_by(self) -> str | None:
        """Why the hub ended the stream (``resync.*``), if it did."""
        return None if self._ended is None else self._ended.reason

    def _forget(self) -> None:
        if not self._forgotten:
            self._forgotten = True
            self._on_close(self)

    def _ready(self) -> bool:
        raise NotImplementedError

    def _take(self) -> T | None:
        """The next item, or None if there is nothing to send after all; called only when
        :meth:`_ready`."""
        raise NotImplementedError

    def _drop(self) -> None:
        """Forget whatever is held (the stream has ended)."""

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def end(self, reason: str, detail: str) -> None:
        """The hub ends the stream: the reader's next step raises :class:`ResyncRequired`."""
        if self._ended is None and not self._closed:
            self._ended = ResyncRequired(reason, detail)
            self._drop()
            self._wake()
            self._forget()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._drop()
            self._wake()
            self._forget()

    def __aiter__(self) -> Subscription[T]:
        return self

    async def __anext__(self) -> T:
        while True:
            if self._closed:
                raise StopAsyncIteration
            if self._ended is not None:
                # A fresh exception each time: a stored one would gather every raise's traceback.
                raise ResyncRequired(self._ended.reason, self._ended.detail)
            if self._ready() and (item := self._take()) is not None:
                return item
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None


class QueueSubscription(Subscription[T]):
    def __init__(self, on_close: Callable[[Any], object], capacity: int) -> None:
        super().__init__(on_close)
        if capacity < 1:
            raise ValueError(f"a mailbox holds at least 1 item, not {capacity}")
        self.capacity = capacity
        self._items: deque[T] = deque()

    def offer(self, item: T) -> bool:
        """Queue ``item``; False if the stream is over, ended now with ``resync.overflow`` if
        the mailbox was full."""
        if not self.open:
            return False
        if len(self._items) >= self.capacity:
            self.end(OVERFLOW, f"more than {self.capacity} items waited to be read")
            return False
        self._items.append(item)
        self._wake()
        return True

    def _ready(self) -> bool:
        return bool(self._items)

    def _take(self) -> T:
        return self._items.popleft()

    def _drop(self) -> None:
        self._items.clear()


class LatestSubscription(Subscription[T]):
    def __init__(self, on_close: Callable[[Any], object], first: T | None = None) -> None:
        super().__init__(on_close)
        self._latest = first
        self._fresh = first is not None

    def put(self, value: T) -> None:
        if self.open:
            self._latest, self._fresh = value, True
            self._wake()

    def _ready(self) -> bool:
        return self._fresh

    def _take(self) -> T:
        self._fresh = False
        assert self._latest is not None
        return self._latest

    def _drop(self) -> None:
        self._fresh = False


class BookSubscription(Subscription[BookSnapshot | BookDelta]):
    """The first item is a snapshot of the top ``depth`` levels; then one delta per wake-up,
    from the book last sent to the book now. Nothing is queued, so it never overflows."""

    def __init__(self, on_close: Callable[[Any], object], book: SymbolBook, depth: int) -> None:
        super().__init__(on_close)
        if depth < 1:
            raise ValueError(f"depth is at least 1 level a side, not {depth}")
        self.book = book
        self.depth = depth
        self._sent: BookSnapshot | None = None
        self._seen = -1
        """The book's sequence when this subscriber last looked."""
        self._gap = False
        """A snapshot marked ``gap`` is owed."""

    def changed(self) -> None:
        """The symbol's book moved on (the hub calls this on every update)."""
        self._wake()

    def resync(self) -> None:
        """The broker's feed had a gap: send a snapshot marked ``gap`` next, not a delta."""
        if self.open and self._sent is not None:
            self._sent = None
            self._gap = True
            self._seen = -1
            self._wake()

    def _ready(self) -> bool:
        return self.book.venue_ts is not None and self.book.sequence != self._seen

    def _take(self) -> BookSnapshot | BookDelta | None:
        now = self.book.snapshot(self.depth)
        assert now is not None
        self._seen = now.sequence
        if self._sent is None:
            self._sent = now
            if self._gap:
                self._gap = False
                return dataclasses.replace(now, gap=True)
            return now
        delta = self.book.delta_since(self._sent, self.depth)
        if not delta.bids and not delta.asks:
            # Only levels beyond this subscriber's depth moved: nothing to send; the next
            # delta links to the sequence it was last sent.
            return None
        self._sent = now
        return delta


class TapeSubscription(Subscription[TapeSnapshot | CountedTrade]):
    """A snapshot first (once the hub's tape is complete, ``ready()``), then trades; see the
    module docstring. ``snapshot()`` is the symbol's tape now."""

    def __init__(
        self,
        on_close: Callable[[Any], object],
        snapshot: Callable[[], TapeSnapshot],
        ready: Callable[[], bool],
        capacity: int,
    ) -> None:
        super().__init__(on_close)
        if capacity < 1:
            raise ValueError(f"a mailbox holds at least 1 item, not {capacity}")
        self.capacity = capacity
        self._snapshot = snapshot
        self._ready_now = ready
        self._items: deque[CountedTrade] = deque()
        self._stale = True
        """A snapshot is owed: it includes everything until it is taken, so nothing is queued."""
        self.resent = 0
        """Snapshots sent in place of trades the subscriber fell behind on."""

    def offer(self, trade: CountedTrade) -> None:
        if not self.open or self._stale:
            return
        if len(self._items) >= self.capacity:
            self.resent += 1
            self.restart()
            return
        self._items.append(trade)
        self._wake()

    def restart(self) -> None:
        """Send a snapshot next instead of what is queued (a new session, or fallen behind)."""
        if self.open:
            self._items.clear()
            self._stale = True
            self._wake()

    def changed(self) -> None:
        """The hub's tape became complete (the owed snapshot can be taken)."""
        self._wake()

    def _ready(self) -> bool:
        return self._ready_now() if self._stale else bool(self._items)

    def _take(self) -> TapeSnapshot | CountedTrade:
        if self._stale:
            self._stale = False
            self._items.clear()
            return self._snapshot()
        return self._items.popleft()

    def _drop(self) -> None:
        self._items.clear()
