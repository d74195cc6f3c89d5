"""bench.hotpath's stages: each command's way cut at the stamps, against the bare consumer's
receipt of the same record."""

from __future__ import annotations

from bench.hotpath_report import RunResult

MS = 1_000_000


def _timing(cid: str, intake_ms: int, decided_ms: int, ledgered_ms: int, write_ms: int) -> dict[str, object]:
    # The hot path's perf_counter stamps; its wall clock is 1,000 ms ahead of them.
    return {
        "command_id": cid,
        "intake_ns": intake_ms * MS,
        "decided_ns": decided_ms * MS,
        "ledgered_ns": ledgered_ms * MS,
        "write_ns": write_ms * MS,
        "write_wall_ns": (write_ms + 1000) * MS,
    }


def test_each_stage_is_measured_between_its_own_stamps() -> None:
    result = RunResult("load", 200.0)
    produced = {"a": 1000 * MS, "b": 1005 * MS}
    received = {"a": 1003 * MS, "b": 1008 * MS}  # the bare consumer: a 3 ms hop each
    timings = [_timing("a", 10, 11, 14, 15), _timing("b", 30, 31, 33, 34)]

    result.timings(timings, produced, received)

    assert result.bare_hop is not None and result.bare_hop.max_us == 3_000
    before = result.before_intake
    assert before is not None and (before.p50_us, before.max_us) == (10_000, 25_000)
    # b waited 22 ms in the hot path after Kafka had handed it over: queued behind a.
    assert result.waited_in_hotpath is not None and result.waited_in_hotpath.max_us == 22_000
    assert result.end_to_end is not None and result.end_to_end.max_us == 29_000
    assert result.decision_to_ledger is not None and result.decision_to_ledger.max_us == 3_000
    assert result.missing == 0
