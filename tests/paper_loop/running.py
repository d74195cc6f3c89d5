"""Running ``floor paper-loop``'s whole command from a test: in a thread of its own (the command
runs its own event loop), its output captured, every wait bounded."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable

from rich.console import Console

from config.settings import FloorSettings
from floor.paper_loop_cmd import PaperLoopRun, run_paper_loop
from floor.paper_loop_run import Brain


async def run_command(
    settings: FloorSettings,
    trades: int,
    make_brain: Callable[[FloorSettings], Brain],
    *,
    time_scale: float,
    stall_s: float,
    timeout: float,  # noqa: ASYNC109 - the whole command's bound, not one await's
) -> tuple[PaperLoopRun, str]:
    """The command's result and what it printed."""
    out = io.StringIO()
    run = await asyncio.wait_for(
        asyncio.to_thread(
            run_paper_loop,
            settings,
            trades,
            make_brain=make_brain,
            time_scale=time_scale,
            stall_s=stall_s,
            out=Console(file=out, width=200),
        ),
        timeout=timeout,
    )
    return run, out.getvalue()
