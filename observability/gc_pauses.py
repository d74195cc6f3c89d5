"""The cyclic garbage collector's pauses: measured, and kept off the order path's tail.

CPython stops the process while its cyclic collector runs. A young collection (generations 0
and 1) walks the containers made since the last one: tens to hundreds of microseconds. A full
one (generation 2) walks every tracked container the process holds, and a hot path that has
imported ib_async, asyncpg, aiokafka, OpenTelemetry and the floor holds a few hundred thousand:
``bench.hotpath`` measured full collections of 11 and 53 ms during a 200 commands/s burst, and
every command that arrived meanwhile waited that long (the burst's p99).

What the process made since matters as much: ib_async keeps every order's ``Trade`` with a
score of event objects each, so a full collection's walk grows with the orders of the day
(80,000 objects, 12 ms, after 1,200 orders).

So:

* :func:`freeze_start_up` moves everything alive once a process has started (modules, clients,
  the restored order map) into the collector's permanent generation (``gc.freeze``), which no
  automatic collection walks.
* :class:`IdleCollector` runs the full collection itself when no command has come for a
  while (``quiet_s``) and enough has been made since the last one, then freezes what
  survived. It unfreezes first, so garbage among the frozen objects (cycles of orders the floor
  has since forgotten) is still found: nothing leaks, and the walk happens when nobody waits.
  Automatic full collections are made rarer (:data:`FULL_COLLECTION_THRESHOLD`), so under a
  long burst they come seldom and walk only what the burst made.
* :class:`GcPauses` times every collection (``gc.callbacks``), so the pauses are a metric
  (``floor.gc.pause``, by generation; the idle ones as ``idle``) and a figure the benchmark
  prints, not a guess.

The callback runs inside whatever code allocated the object that triggered the collection,
possibly while that code holds a lock (the metrics SDK's own, say). So it only appends to a
list; :meth:`GcPauses.drain` moves the pauses to the histogram from the event loop.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry.metrics import Histogram

DRAIN_EVERY_S = 1.0
FULL_COLLECTION_THRESHOLD = 50
"""``gc.set_threshold``'s third value: an automatic full collection is considered after this
many collections of generation 1 (CPython's default is 10, about every 70,000 net
allocations; 50 is about every 350,000). The idle collections do the rest."""


@dataclass
class GenerationPauses:
    count: int = 0
    total_ns: int = 0
    max_ns: int = 0

    def as_dict(self) -> dict[str, float]:
        return {"count": self.count, "total_ms": self.total_ns / 1e6, "max_ms": self.max_ns / 1e6}


class GcPauses:
    """Every collection's pause since :meth:`install`, per generation."""

    def __init__(self, histogram: Histogram | None = None) -> None:
        self.histogram = histogram
        self.generations = [GenerationPauses() for _ in range(3)]
        self._started_ns = 0
        self._pending: list[tuple[str, int]] = []
        self.idle = GenerationPauses()
        """The full collections :class:`IdleCollector` ran (not in ``generations``)."""
        self.in_idle_collection = False

    def install(self) -> None:
        if self._callback not in gc.callbacks:
            gc.callbacks.append(self._callback)

    def close(self) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)
        self.drain()

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started_ns = time.perf_counter_ns()
            return
        pause = time.perf_counter_ns() - self._started_ns
        generation = info["generation"]
        idle = self.in_idle_collection and generation == 2
        totals = self.idle if idle else self.generations[generation]
        totals.count += 1
        totals.total_ns += pause
        totals.max_ns = max(totals.max_ns, pause)
        if self.histogram is not None:
            self._pending.append(("idle" if idle else str(generation), pause))

    def drain(self) -> None:
        """Record the pauses seen since the last drain in the histogram."""
        pending, self._pending = self._pending, []
        if self.histogram is not None:
            for generation, pause in pending:
                self.histogram.record(pause / 1e9, {"generation": generation})

    async def run(self) -> None:
        while True:
            await asyncio.sleep(DRAIN_EVERY_S)
            self.drain()

    def as_dict(self) -> dict[str, Any]:
        return {
            "frozen": gc.get_freeze_count(),
            "generations": {str(g): p.as_dict() for g, p in enumerate(self.generations)},
            "idle": self.idle.as_dict(),
        }


def freeze_start_up() -> int:
    """Collect once, then move every object alive into the permanent generation; their count.

    Called once a process has started and before it takes work, so the collection's own pause
    falls outside any order's path."""
    gc.collect()
    gc.freeze()
    first, second, _ = gc.get_threshold()
    gc.set_threshold(first, second, max(FULL_COLLECTION_THRESHOLD, _))
    return gc.get_freeze_count()


class IdleCollector:
    """Full collections when the process is quiet, then a freeze of what survived.

    ``last_activity_ns`` gives the ``perf_counter_ns`` of the latest command taken. A
    collection runs once it is at least ``quiet_s`` old and at least ``min_young_collections``
    young collections (each about 700 net allocations) have run since the last one."""

    def __init__(
        self,
        last_activity_ns: Callable[[], int],
        pauses: GcPauses | None = None,
        *,
        quiet_s: float = 1.0,
        check_every_s: float = 0.5,
        min_young_collections: int = 30,
    ) -> None:
        self.last_activity_ns = last_activity_ns
        self.pauses = pauses
        self.quiet_ns = int(quiet_s * 1e9)
        self.check_every_s = check_every_s
        self.min_young = min_young_collections
        self._young_at_last = _young_collections()
        self.collections = 0

    def maybe_collect(self) -> bool:
        """Collect and freeze if the process is quiet and has made enough; whether it did."""
        if time.perf_counter_ns() - self.last_activity_ns() < self.quiet_ns:
            return False
        if _young_collections() - self._young_at_last < self.min_young:
            return False
        if self.pauses is not None:
            self.pauses.in_idle_collection = True
        try:
            gc.unfreeze()
            gc.collect()
            gc.freeze()
        finally:
            if self.pauses is not None:
                self.pauses.in_idle_collection = False
        self._young_at_last = _young_collections()
        self.collections += 1
        return True

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.check_every_s)
            self.maybe_collect()


def _young_collections() -> int:
    return int(gc.get_stats()[0]["collections"])
