"""When the supervisor restarts a process that died, and when it gives up: pure rules, no I/O.

A process that dies is started again after a back-off that doubles with each restart inside the
window (so a process that keeps crashing is not spun in a tight loop and one that crashed an
hour ago comes back at once); one that needs more than ``limit`` restarts inside the window is
broken, not unlucky, and the floor stops with the reason rather than trade half-alive.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from config.settings import FloorSettings


@dataclass(frozen=True)
class RestartPolicy:
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 5.0
    limit: int = 5
    """Restarts allowed within ``window_s``; one more death inside it and the supervisor gives up."""
    window_s: float = 60.0

    @classmethod
    def from_settings(cls, settings: FloorSettings) -> RestartPolicy:
        return cls(
            backoff_initial_s=settings.supervisor_backoff_initial_s,
            backoff_max_s=settings.supervisor_backoff_max_s,
            limit=settings.supervisor_restart_limit,
            window_s=settings.supervisor_restart_window_s,
        )

    def recent(self, restarted_at: Sequence[float], now: float) -> int:
        """How many of the restarts (monotonic times) fall inside the window ending ``now``."""
        return sum(1 for at in restarted_at if now - at < self.window_s)

    def exhausted(self, restarted_at: Sequence[float], now: float) -> bool:
        """Whether a process that died ``now`` has used up its restarts."""
        return self.recent(restarted_at, now) >= self.limit

    def delay(self, restarted_at: Sequence[float], now: float) -> float:
        """How long to wait before the next restart: doubling with each recent one, capped."""
        return min(self.backoff_max_s, self.backoff_initial_s * 2 ** self.recent(restarted_at, now))


@dataclass(frozen=True)
class Exit:
    """How a process ended: its exit code, or the signal that killed it; and when (epoch s)."""

    code: int | None
    signal: int | None
    at: float

    @classmethod
    def of(cls, returncode: int, at: float | None = None) -> Exit:
        """From ``Popen.returncode``, which is minus the signal's number for a killed process."""
        at = time.time() if at is None else at
        if returncode < 0:
            return cls(None, -returncode, at)
        return cls(returncode, None, at)

    @property
    def signal_name(self) -> str | None:
        if self.signal is None:
            return None
        try:
            return signal.Signals(self.signal).name
        except ValueError:
            return f"signal {self.signal}"

    def describe(self) -> str:
        """``killed by SIGKILL`` or ``exited with code 3``."""
        if self.signal is not None:
            return f"killed by {self.signal_name}"
        return f"exited with code {self.code}"

    def when(self) -> str:
        """Local time, for people."""
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.at))

    def iso(self) -> str:
        return datetime.fromtimestamp(self.at, UTC).isoformat(timespec="milliseconds")
