"""Drive the demo brain until N round-trip trades are done, counted from the floor's records.

The count comes from the executions the floor stored (``order_events`` rows with an execution,
folded by :class:`trading.round_trips.RoundTripCounter`), never from the brain's own belief: a
trade counts once its exit filled at the venue. The loop stops the brain when the count is
reached, when the brain stops by itself (an error), or when no trade completes for
``stall_s`` seconds (the floor refuses everything, the venue is paused): each ends the loop with
a named outcome the command reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg

from trading.round_trips import FillRow, PositionKey, RoundTripCounter

_FILLS = """
SELECT e.id, e.account, coalesce(root.agent_id, e.agent_id) AS agent_id, e.symbol, e.side, e.fill_qty
FROM order_events e
LEFT JOIN LATERAL (
    SELECT l.agent_id FROM ledger_entries l
    WHERE e.command_id LIKE '%.%' AND l.authenticated AND l.command_id = split_part(e.command_id, '.', 1)
      AND l.decision = 'accepted' AND l.kind IN ('enter', 'exit')
    LIMIT 1
) root ON true
WHERE e.exec_id IS NOT NULL AND e.id > $1
  AND (e.agent_id = ANY($2::text[]) OR root.agent_id = ANY($2::text[]))
ORDER BY e.id
"""
"""Fills of the agents' orders, and of the floor's protective stops on their positions (an id
``<agent's command>.…``, :func:`trading.round_trips.root_command_id`), as the agent's."""


_REFUSALS = """
SELECT reason, count(*) AS n
FROM ledger_entries
WHERE seq > $1 AND agent_id = ANY($2::text[]) AND decision = 'rejected'
GROUP BY reason
ORDER BY n DESC
"""


class Brain(Protocol):
    """What the loop needs of :class:`brain.runner.DemoBrain`."""

    @property
    def agent_ids(self) -> tuple[str, ...]: ...

    def run(self, stop: asyncio.Event) -> Coroutine[Any, Any, None]: ...


class LoopEnd(enum.StrEnum):
    DONE = "paper_loop.done"
    """N round trips counted."""
    BRAIN_STOPPED = "paper_loop.brain_stopped"
    """The brain's run() returned or raised before N."""
    STALLED = "paper_loop.stalled"
    """No round trip completed for ``stall_s``."""
    FLOOR_STOPPED = "paper_loop.floor_stopped"
    """The floor this command started stopped (its supervisor gave up)."""
    INTERRUPTED = "paper_loop.interrupted"
    """Ctrl-C."""


@dataclass(frozen=True)
class LoopMarks:
    """Where the loop's records start: the audit reads from here on."""

    ledger_seq: int
    """The ledger's head seq before the first command of the loop."""
    order_event_id: int
    """The newest order_events row before the loop."""
    started_at: float


@dataclass(frozen=True)
class LoopResult:
    end: LoopEnd
    round_trips: int
    marks: LoopMarks
    elapsed_s: float
    open_positions: dict[PositionKey, int]
    """Positions of the brain's agents not flat when the loop ended (not counted as trades)."""
    detail: str = ""
    """What went wrong, for an end other than DONE."""
    refusals: dict[str, int] = field(default_factory=dict)
    """The floor's refusals of the brain's commands during the loop, by reason."""


async def loop_marks(pool: asyncpg.Pool) -> LoopMarks:
    seq = await pool.fetchval("SELECT seq FROM ledger_head")
    event_id = await pool.fetchval("SELECT coalesce(max(id), 0) FROM order_events")
    return LoopMarks(int(seq), int(event_id), time.time())


async def read_fills(pool: asyncpg.Pool, after: int, agents: Sequence[str]) -> list[FillRow]:
    rows = await pool.fetch(_FILLS, after, list(agents))
    return [
        FillRow(r["id"], r["account"], r["agent_id"], r["symbol"], r["side"], int(r["fill_qty"]))
        for r in rows
    ]


async def _wind_down(
    pool: asyncpg.Pool,
    brain: Brain,
    counter: RoundTripCounter,
    agents: tuple[str, ...],
    task: asyncio.Task[None],
    within_s: float,
    poll_s: float,
) -> None:
    """Close the brain's positions: done when the stored fills show every position flat and the
    brain has nothing working, or after ``within_s`` (what is still open is then printed)."""
    wind_down = getattr(brain, "wind_down", None)
    if not callable(wind_down):
        return
    wind_down()
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline and not task.done():
        counter.add_all(await read_fills(pool, counter.last_event_id, agents))
        if not counter.open_positions() and getattr(brain, "flat", True):
            return
        await asyncio.sleep(poll_s)


async def drive(
    pool: asyncpg.Pool,
    brain: Brain,
    trades: int,
    *,
    progress: Callable[[int], None],
    floor_stopped: Callable[[], bool] = lambda: False,
    stall_s: float = 120.0,
    poll_s: float = 0.2,
    stop_timeout_s: float = 30.0,
    wind_down_s: float = 60.0,
) -> LoopResult:
    """Run ``brain`` until ``trades`` round trips are counted from the stored executions, then,
    if the brain can (``wind_down()`` and ``flat``), let it close what it holds for up to
    ``wind_down_s``: the loop ends flat, and those exits are round trips of the audit too."""
    marks = await loop_marks(pool)
    agents = brain.agent_ids
    counter = RoundTripCounter(since=marks.order_event_id)
    # Positions already open before the loop: their fills are folded first, not counted.
    counter.add_all(await read_fills(pool, 0, agents))
    stop = asyncio.Event()
    task: asyncio.Task[None] = asyncio.create_task(brain.run(stop), name="demo-brain")
    end, detail = LoopEnd.DONE, ""
    last_progress = time.monotonic()
    try:
        while True:
            before = counter.closed
            counter.add_all(await read_fills(pool, counter.last_event_id, agents))
            if counter.closed != before:
                last_progress = time.monotonic()
                progress(min(counter.closed, trades))
            if counter.closed >= trades:
                break
            if task.done():
                end, detail = LoopEnd.BRAIN_STOPPED, _task_outcome(task)
                break
            if floor_stopped():
                end, detail = LoopEnd.FLOOR_STOPPED, "the floor's supervisor gave up on a process"
                break
            if time.monotonic() - last_progress > stall_s:
                end = LoopEnd.STALLED
                detail = f"no round trip completed in {stall_s:g} s ({counter.closed} of {trades} done)"
                diagnosis = getattr(brain, "diagnosis", None)
                if callable(diagnosis):
                    detail += f"; the brain says: {diagnosis()}"
                break
            await asyncio.sleep(poll_s)
        if end is LoopEnd.DONE:
            await _wind_down(pool, brain, counter, agents, task, wind_down_s, poll_s)
    except asyncio.CancelledError:
        end, detail = LoopEnd.INTERRUPTED, "interrupted"
        raise
    finally:
        stop.set()
        if not task.done():
            try:
                await asyncio.wait_for(asyncio.shield(task), stop_timeout_s)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        elif end is LoopEnd.DONE:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    # The last fills (exits that filled while the brain was stopping).
    counter.add_all(await read_fills(pool, counter.last_event_id, agents))
    progress(min(counter.closed, trades))
    refused = await refusals(pool, marks.ledger_seq, agents)
    return LoopResult(
        end, counter.closed, marks, time.time() - marks.started_at, counter.open_positions(), detail, refused
    )


async def refusals(pool: asyncpg.Pool, after_seq: int, agents: Sequence[str]) -> dict[str, int]:
    """The floor's refusals of the agents' commands since the loop started, by reason."""
    rows = await pool.fetch(_REFUSALS, after_seq, list(agents))
    return {r["reason"]: int(r["n"]) for r in rows}


def _task_outcome(task: asyncio.Task[None]) -> str:
    if task.cancelled():
        return "the brain was cancelled"
    exc = task.exception()
    if exc is None:
        return "the brain's run() returned before the loop asked it to stop"
    return f"the brain failed: {type(exc).__name__}: {exc}"
