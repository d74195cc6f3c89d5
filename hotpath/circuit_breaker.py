"""Circuit Breaker (agent 4.6), the actuator: on a flash crash cancel every open order and
halt intake.

The breaker's modules, one duty each:

- :mod:`trading.circuit_breaker`: the flash-crash detector (pure), a rolling high per symbol,
  and the rule (threshold, window, per-symbol thresholds) each account's risk profile sets;
- :mod:`trading.circuit_breaker_state`: which ledger entries halt or re-arm; the trip record;
- :mod:`hotpath.circuit_breaker` (this module): the actuator, global cancel, halt and re-arm;
- :mod:`hotpath.circuit_breaker_sweep`: after the global cancel, explicit cancels of the
  floor's open orders, every acknowledgement awaited, and the trip's ``breaker.tripped`` event;
- :mod:`hotpath.circuit_breaker_commands`: an operator's ``breaker_trip`` / ``breaker_arm``;
- :mod:`hotpath.circuit_breaker_log`: the state at start-up, and each automatic trip ledgered;
- :mod:`ledger.circuit_breaker`: the trip entry's append, and the newest breaker entry checked.

Fed straight from the broker's L1 callback, so the global cancel is written to the broker
socket inside the tick handler that saw the crash, with no await in between. Intake stays
``HALTED`` until an operator re-arms it with a signed ``breaker_arm`` command (``floor breaker
arm``); re-arming clears every detector's history so the reference high rebuilds from fresh
ticks. An operator's signed ``breaker_trip`` halts the same way (:meth:`CircuitBreaker.halt`).

This object holds the state in memory only; what makes it durable is the ledger (every trip
and arm is an entry, and a starting hot path takes its state from the newest one: see
:mod:`hotpath.circuit_breaker_log` and :mod:`trading.circuit_breaker_state`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from trading.circuit_breaker import (
    DEFAULT_DROP_PCT,
    DEFAULT_WINDOW_MS,
    BreakerRule,
    CrashDetector,
    CrashSignal,
    symbol_rules,
)
from trading.risk import TradingState
from trading.sizing import RiskProfile

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Trip:
    symbol: str
    signal: CrashSignal
    tick_recv_ns: int
    """When the crashing tick's bytes arrived (``perf_counter_ns``)."""
    cancel_written_ns: int
    """Right after the global cancel was written to the broker socket."""
    at: datetime


@dataclass(frozen=True)
class BreakerChange:
    """The ledger entry behind the current trading state, for the control port's ``/health``."""

    kind: str
    """``breaker_tripped`` (automatic), ``breaker_trip`` or ``breaker_arm`` (an operator's)."""
    by: str | None
    """The operator, or the floor's breaker service, whose key signed the entry."""
    command_id: str | None
    at: datetime


class CircuitBreaker:
    def __init__(
        self,
        cancel_all: Callable[[], object],
        on_trip: Callable[[Trip], None],
        drop_pct: Decimal = DEFAULT_DROP_PCT,
        window_ms: int = DEFAULT_WINDOW_MS,
    ) -> None:
        self._cancel_all = cancel_all
        self._on_trip = on_trip
        self.drop_pct = drop_pct
        self.window_ms = window_ms
        self._default = BreakerRule(drop_pct, window_ms)
        """The rule of an account whose profile names none."""
        self._rules: tuple[BreakerRule | None, ...] = ()
        self._profiles: Mapping[str, RiskProfile] | None = None
        self._detectors: dict[str, dict[tuple[Decimal, int], CrashDetector]] = {}
        """Per symbol, one detector per distinct (threshold, window) the accounts' rules set."""
        self.state = TradingState.ACTIVE
        self.last_trip: Trip | None = None
        self.last_change: BreakerChange | None = None
        self.trips = 0
        """Automatic trips so far: a re-arm checks none landed while it was being ledgered."""

    @property
    def halted(self) -> bool:
        return self.state is TradingState.HALTED

    def follow(self, profiles: Mapping[str, RiskProfile]) -> None:
        """Use the breaker rules of ``profiles`` (the accounts' risk profiles in force). Called
        on every tick with intake's current mapping, which a reload replaces: an unchanged
        mapping costs one identity check. A rule kept across the change keeps its history."""
        if profiles is self._profiles:
            return
        self._profiles = profiles
        self._rules = tuple(p.breaker for p in profiles.values())
        for symbol, detectors in self._detectors.items():
            self._detectors[symbol] = self._detectors_for(symbol, detectors)

    def _detectors_for(
        self, symbol: str, kept: Mapping[tuple[Decimal, int], CrashDetector]
    ) -> dict[tuple[Decimal, int], CrashDetector]:
        return {
            rule: kept.get(rule) or CrashDetector(*rule)
            for rule in sorted(symbol_rules(symbol, self._rules, self._default))
        }

    def on_price(self, symbol: str, ts_ms: int, price: Decimal, recv_ns: int) -> Trip | None:
        detectors = self._detectors.get(symbol)
        if detectors is None:
            detectors = self._detectors[symbol] = self._detectors_for(symbol, {})
        for detector in detectors.values():
            signal = detector.on_tick(ts_ms, price)
            if signal is not None:
                return self.trip(symbol, signal, recv_ns)
        return None

    def trip(self, symbol: str, signal: CrashSignal, recv_ns: int) -> Trip:
        # Halt first: a command processed between the cancel and the halt would slip through.
        self.state = TradingState.HALTED
        self._cancel_everything()
        self.trips += 1
        trip = Trip(symbol, signal, recv_ns, time.perf_counter_ns(), datetime.now(UTC))
        self.last_trip = trip
        log.critical(
            "circuit breaker tripped on %s: %s -> %s (-%s%%); every open order cancelled, intake halted",
            symbol,
            signal.reference_high,
            signal.price,
            signal.drop_pct,
        )
        self._on_trip(trip)
        return trip

    def halt(self) -> None:
        """Halt intake and cancel every open order, with no crash behind it: an operator's
        ``breaker_trip``, or a hot path starting while the ledger says the floor is halted."""
        self.state = TradingState.HALTED
        self._cancel_everything()
        log.critical("circuit breaker halted: every open order cancelled, intake halted")

    def _cancel_everything(self) -> None:
        # A broker that raises (a market-data-only connection, say) must not keep the trip from
        # being ledgered and reported: intake is halted either way.
        try:
            self._cancel_all()
        except Exception as exc:
            log.critical(
                "the breaker's global cancel failed (%s): orders at that broker may still be working;"
                " check its open orders and cancel them there",
                exc,
            )

    def arm(self) -> bool:
        """Re-arm after a trip; returns whether the breaker was halted."""
        was_halted = self.halted
        for detectors in self._detectors.values():
            for detector in detectors.values():
                detector.rearm()
        self.state = TradingState.ACTIVE
        return was_halted
