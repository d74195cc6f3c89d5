"""Is the gateway still answering? The heartbeat's rules, pure (no clock, no I/O).

A *probe* is anything written that the gateway must answer: the heartbeat (``reqCurrentTime``)
and every order, cancel or modify. Any byte from the gateway answers every probe before it (a
frozen gateway sends none; a healthy one streams market data and acknowledgements).

* Quiet connection: a heartbeat goes out once ``interval`` passes without a byte.
* A probe with no byte back within ``answer`` is *missed*; the session is then suspect and is
  probed again every ``answer`` until a byte comes.
* ``misses`` missed probes in a row, the first of them sent at least ``misses - 1`` answer
  windows ago, and the session is dead.

So an idle frozen gateway is found about ``interval + misses * answer`` after its last byte
(250 + 3 x 50 ms by default), and one frozen while orders flow about ``(misses - 1) * answer``
after the first unanswered order, once ``misses`` orders went unanswered: the orders are the
probes. The spread rule keeps a burst of orders written in the same millisecond from counting
as several misses.

*Patience*: while the floor itself has asked the gateway for something that takes it a while
to answer (the listings of an epoch's reconciliation), silence is no verdict; probes are still
sent and their misses counted once patience ends, and the request's own timeout bounds the wait.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class LivenessRules:
    interval: float = 0.25
    """Seconds without a byte before a heartbeat is sent."""
    answer: float = 0.05
    """Seconds a probe may wait for a byte before it counts as missed."""
    misses: int = 3
    """Missed probes in a row that make the session dead."""


class Liveness:
    """Probes and answers of one connection, in monotonic seconds."""

    def __init__(self, rules: LivenessRules, now: float) -> None:
        self.rules = rules
        self.last_recv = now
        self._unanswered: deque[float] = deque()
        self.patient = False

    def probed(self, now: float) -> None:
        self._unanswered.append(now)

    def received(self, now: float) -> None:
        self.last_recv = now
        self._unanswered.clear()

    @property
    def unanswered(self) -> int:
        return len(self._unanswered)

    def missed(self, now: float) -> int:
        """Probes that have waited longer than the answer window."""
        answer = self.rules.answer
        return sum(1 for sent in self._unanswered if now - sent >= answer)

    def dead(self, now: float) -> bool:
        rules = self.rules
        if self.patient or not self._unanswered or self.missed(now) < rules.misses:
            return False
        return now - self._unanswered[0] >= (rules.misses - 1) * rules.answer

    def heartbeat_due(self, now: float) -> bool:
        """Whether a heartbeat should go out now."""
        if not self._unanswered:
            return now - self.last_recv >= self.rules.interval
        # Suspect: ask again every answer window (patient: the busy gateway is asked no more).
        return not self.patient and now - self._unanswered[-1] >= self.rules.answer

    def next_check(self, now: float) -> float:
        """When something may change without a byte arriving: a heartbeat falls due, a probe
        is missed, or the session turns dead (never earlier than ``now``)."""
        rules = self.rules
        if not self._unanswered:
            return max(now, self.last_recv + rules.interval)
        if self.patient:
            return now + rules.interval
        times = [sent + rules.answer for sent in self._unanswered]
        times.append(self._unanswered[0] + (rules.misses - 1) * rules.answer)
        later = [t for t in times if t > now]
        return min(later) if later else now + rules.answer

    def describe(self, now: float) -> str:
        return (
            f"missed heartbeat: {self.missed(now)} probes unanswered, "
            f"{(now - self.last_recv) * 1000:.0f} ms without a byte"
        )
