"""What intake did with one record, and the latency stamps of an order that was sent."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    """Latency stamps of one command that reached the broker socket."""

    command_id: str
    produce_ts_ms: int | None
    """Kafka record timestamp (the producer's wall clock), if the record carried one."""
    intake_ns: int
    ledgered_ns: int
    write_ns: int
    """``perf_counter_ns()`` right after the socket write (from the broker's Placement)."""
    write_wall_ns: int
    """``write_ns`` on the wall clock (``time.time_ns`` scale), comparable to produce_ts_ms."""
    ledger_seq: int
    decided_ns: int = 0
    """``perf_counter_ns()`` once sentry, sizer and risk had passed, before the ledger append:
    ``decided_ns - intake_ns`` is the floor's own work, ``ledgered_ns - decided_ns`` the commit."""

    @property
    def intake_to_write_us(self) -> float:
        return (self.write_ns - self.intake_ns) / 1000

    @property
    def produce_to_write_us(self) -> float | None:
        if self.produce_ts_ms is None:
            return None
        return (self.write_wall_ns - self.produce_ts_ms * 1_000_000) / 1000


@dataclass(frozen=True)
class Outcome:
    """What intake did with one record: ``reason`` None means sent (or held) to the broker."""

    command_id: str | None
    reason: str | None
    timing: Timing | None = None
