"""The garbage collector's pauses are timed per generation and reach the histogram, and
start-up's objects leave the collector's reach (observability/gc_pauses.py)."""

from __future__ import annotations

import gc
import time
import weakref

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from observability.gc_pauses import FULL_COLLECTION_THRESHOLD, GcPauses, IdleCollector, freeze_start_up
from observability.telemetry import make_metrics, snapshot


def test_each_collection_is_timed_by_generation_and_drained_into_the_histogram() -> None:
    reader = InMemoryMetricReader()
    metrics = make_metrics(MeterProvider(metric_readers=[reader]).get_meter("test"))
    pauses = GcPauses(metrics.gc_pause)
    pauses.install()
    pauses.install()  # idempotent: one callback, each pause counted once
    try:
        gc.collect(2)
        gc.collect(0)
    finally:
        pauses.close()
    gc.collect(2)  # after close: not counted
    gens = pauses.as_dict()["generations"]
    assert gens["2"]["count"] == 1 and gens["0"]["count"] >= 1
    assert gens["2"]["max_ms"] > 0 and gens["2"]["total_ms"] >= gens["2"]["max_ms"]
    points = {p["attributes"]["generation"]: p for p in snapshot(reader)["floor.gc.pause"]}
    assert points["2"]["count"] == 1 and points["0"]["count"] == gens["0"]["count"]


def test_start_ups_objects_move_to_the_permanent_generation_and_no_collection_walks_them() -> None:
    alive = [[i] for i in range(20_000)]  # tracked containers, alive for good
    threshold = gc.get_threshold()
    try:
        frozen = freeze_start_up()
        assert frozen >= len(alive) and gc.get_freeze_count() == frozen
        # A full collection now walks what was made since: the frozen lists are not among them.
        walked = {id(o) for g in range(3) for o in gc.get_objects(generation=g)}
        assert not any(id(x) in walked for x in alive)
        assert gc.get_threshold()[2] >= FULL_COLLECTION_THRESHOLD
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
    assert gc.get_freeze_count() == 0


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_the_idle_collector_waits_for_quiet_and_for_enough_made_then_frees_frozen_garbage() -> None:
    last = [time.perf_counter_ns()]
    pauses = GcPauses()
    pauses.install()
    collector = IdleCollector(lambda: last[0], pauses, quiet_s=0.05, min_young_collections=3)
    cycle = _Cycle()
    gone = weakref.ref(cycle)
    try:
        gc.freeze()  # the cycle is among the frozen, as start-up's objects are
        del cycle  # ... and then garbage: only a walk of the frozen finds it
        assert not collector.maybe_collect(), "a command came just now: not quiet"
        last[0] -= 10**9  # the last command a second ago
        for _ in range(3):
            gc.collect(0)  # young collections, as allocation makes them
        assert collector.maybe_collect()
        assert gone() is None, "garbage among the frozen objects was collected"
        assert gc.get_freeze_count() > 0, "what survived is frozen again"
        assert pauses.idle.count == 1 and pauses.generations[2].count == 0
        assert not collector.maybe_collect(), "nothing made since: no second walk"
    finally:
        pauses.close()
        gc.unfreeze()
