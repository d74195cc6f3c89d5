"""bench.hotpath's disk-flush baseline: one timed write + fdatasync per call, paced, no residue."""

from __future__ import annotations

import time
from pathlib import Path

from bench.hotpath_baseline import run_disk_flush


def test_one_latency_per_flush_paced_at_the_rate_and_the_scratch_file_removed(tmp_path: Path) -> None:
    progress: list[int] = []
    started = time.monotonic()
    latencies = run_disk_flush(tmp_path, 20, 200.0, on_progress=progress.append)
    elapsed = time.monotonic() - started
    assert len(latencies) == 20
    assert all(ns > 0 for ns in latencies)
    assert progress == list(range(1, 21))
    # 20 flushes at 200/s: the 20th starts 95 ms after the first, however fast the disk is.
    assert elapsed >= 0.095
    assert list(tmp_path.iterdir()) == []
