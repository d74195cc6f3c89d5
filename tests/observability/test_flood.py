"""Security events under a flood: the first few per source, reason and window in full, the rest
one summary with a count."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from hypothesis import given
from hypothesis import strategies as st

from bus.topics import SECURITY_EVENTS
from ledger.access import LedgerAccess
from observability.flood import REPEATS, FloodSummary, FloodWindows
from observability.security import SecurityLog, refusal_event
from trading.security_events import SecurityEvent

T0 = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
WINDOW = timedelta(seconds=60)


def event(
    source: str = "10.0.0.1", reason: str = "sentry.no_signature", severity: str = "critical"
) -> SecurityEvent:
    return refusal_event(reason=reason, severity=severity, source="api", source_address=source)


def test_the_first_events_of_a_window_are_recorded_and_the_rest_counted() -> None:
    windows = FloodWindows(WINDOW, full_per_window=3)
    admitted = [windows.admit(event(), T0 + timedelta(seconds=i))[0] for i in range(10)]
    assert admitted == [True] * 3 + [False] * 7


def test_a_closed_window_is_one_summary_with_the_count_and_the_highest_severity() -> None:
    windows = FloodWindows(WINDOW, full_per_window=2)
    for i, severity in enumerate(["warning", "warning", "critical", "error"]):
        windows.admit(event(severity=severity), T0 + timedelta(seconds=i))
    assert windows.due(T0 + WINDOW - timedelta(microseconds=1)) == []
    [summary] = windows.due(T0 + WINDOW)
    assert (summary.reason, summary.source_address, summary.severity.value) == (
        "sentry.no_signature", "10.0.0.1", "critical",
    )  # fmt: skip
    assert summary.detail[REPEATS] == "2"
    assert (summary.detail["window_start"], summary.detail["window_end"]) == (
        T0.isoformat(), (T0 + WINDOW).isoformat(),
    )  # fmt: skip
    assert len(windows) == 0
    # The next event opens a new window and is recorded in full.
    assert windows.admit(event(), T0 + WINDOW)[0] is True


def test_a_window_with_nothing_counted_needs_no_summary() -> None:
    windows = FloodWindows(WINDOW, full_per_window=5)
    for i in range(5):
        windows.admit(event(), T0 + timedelta(seconds=i))
    assert windows.due(T0 + 2 * WINDOW) == [] and windows.drain(T0 + 2 * WINDOW) == []


def test_an_event_after_its_window_closed_brings_that_windows_summary() -> None:
    windows = FloodWindows(WINDOW, full_per_window=1)
    windows.admit(event(), T0)
    windows.admit(event(), T0)
    full, summaries = windows.admit(event(), T0 + WINDOW + timedelta(seconds=1))
    assert full is True and [s.detail[REPEATS] for s in summaries] == ["1"]


def test_sources_and_reasons_have_windows_of_their_own() -> None:
    windows = FloodWindows(WINDOW, full_per_window=1)
    assert windows.admit(event("10.0.0.1"), T0)[0] is True
    assert windows.admit(event("10.0.0.2"), T0)[0] is True
    assert windows.admit(event("10.0.0.1", reason="sentry.bad_signature"), T0)[0] is True
    assert windows.admit(event("10.0.0.1"), T0)[0] is False


def test_the_table_of_windows_is_bounded_and_the_oldest_is_summarised_early() -> None:
    windows = FloodWindows(WINDOW, full_per_window=1, max_windows=2)
    windows.admit(event("10.0.0.1"), T0)
    windows.admit(event("10.0.0.1"), T0)  # counted
    windows.admit(event("10.0.0.2"), T0 + timedelta(seconds=1))
    full, summaries = windows.admit(event("10.0.0.3"), T0 + timedelta(seconds=2))
    assert full is True and len(windows) == 2
    assert [(s.source_address, s.detail[REPEATS]) for s in summaries] == [("10.0.0.1", "1")]


@given(
    st.lists(st.tuples(st.integers(0, 20), st.sampled_from(["a", "b"]), st.integers(0, 100)), max_size=300)
)
def test_every_event_is_recorded_or_counted_exactly_once(arrivals: list[tuple[int, str, int]]) -> None:
    """Whatever the sources, reasons and times (going forward), the events recorded in full
    plus the summaries' counts are all the events, and the open windows stay within bound."""
    windows = FloodWindows(timedelta(seconds=10), full_per_window=2, max_windows=8)
    recorded, summaries = 0, []
    for source, reason, second in sorted(arrivals, key=lambda arrival: arrival[2]):
        full, closed = windows.admit(event(str(source), reason), T0 + timedelta(seconds=second))
        recorded += full
        summaries += closed
        assert len(windows) <= 8
    summaries += windows.drain(T0 + timedelta(days=1))
    assert recorded + sum(int(s.detail[REPEATS]) for s in summaries) == len(arrivals)


async def test_at_shutdown_every_open_window_is_summarised_in_the_table(ledger_pool: asyncpg.Pool) -> None:
    source = f"test-{uuid.uuid4().hex}"
    summary = FloodSummary(SecurityLog(LedgerAccess(ledger_pool), None, SECURITY_EVENTS), WINDOW)
    for _ in range(12):
        await summary.record(event(source))
    query = "SELECT detail FROM security_events WHERE remote_addr = $1 ORDER BY id"
    assert len(await ledger_pool.fetch(query, source)) == 5
    await summary.close()
    rows = await ledger_pool.fetch(query, source)
    assert len(rows) == 6 and json.loads(rows[-1]["detail"])[REPEATS] == "7"
