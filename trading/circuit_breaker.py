"""The circuit breaker's detector (pure): has this symbol crashed? And the rule, per account, of
what counts as a crash (:class:`BreakerRule`, part of the account's risk profile).

The other half, which acts on a crash (cancels every open order and halts intake), is
:mod:`hotpath.circuit_breaker`; its docstring lists every module of the breaker.

The rule, exactly:

- The reference is the highest price seen within the last ``window_ms`` (a rolling high); the
  detector trips when a tick is at or below ``high x (1 - drop_pct / 100)``. Comparisons are
  exact Decimal arithmetic, so with the default 10 a fall of exactly 10% trips and a fall of
  9.9% (or 9.99...%) never does, however long it lasts.
- A single tick trips it. The price fed is the last trade, else the mid of bid and ask (see
  :meth:`hotpath.hot_path.HotPath.on_quote`); one print at -10% is enough. Waiting for a second
  tick to confirm would let a real crash run on for a tick interval with every order still
  working, while a false trip costs a re-arm and the orders sent again: a cancel never opens
  a position. So a bad tick halts the floor, and the operator (or an armed trader) re-arms it.
- Each account's risk profile may carry a :class:`BreakerRule`: an account-wide threshold and
  window for every symbol, and per-symbol thresholds that replace it for the symbols named (a
  volatile name may be allowed -15%). An account with no rule has the default (-10% within
  60 s). A trip halts the whole floor (one global cancel covers every account of the broker
  login), so a symbol's price is checked against every account's rule for it
  (:func:`symbol_rules`): the floor trips when any one of them would.

Per tick the work is amortised O(1): a monotonically decreasing deque of (time, price) holds
only the candidates that can still be the window's high, so each tick is pushed and popped at
most once.

Time: ticks carry their own millisecond timestamps. A tick older than the newest one seen
(feeds reorder slightly) is treated as arriving at the newest time, so the window only moves
forward. Once tripped, the detector stays tripped (and ignores ticks) until :meth:`rearm` —
a trader re-arms the breaker, not the market.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

DEFAULT_DROP_PCT = Decimal(10)
DEFAULT_WINDOW_MS = 60_000


@dataclass(frozen=True)
class CrashSignal:
    reference_high: Decimal
    price: Decimal
    ts_ms: int
    drop_pct: Decimal
    """Actual drop from the reference high, in percent (exact)."""
    threshold_pct: Decimal | None = None
    """The rule's threshold that tripped (the detector's ``drop_pct``)."""
    window_ms: int | None = None
    """The rule's window that tripped."""


class CrashDetector:
    def __init__(self, drop_pct: Decimal, window_ms: int) -> None:
        if not Decimal(0) < drop_pct < Decimal(100):
            raise ValueError(f"drop_pct must be in (0, 100), got {drop_pct}")
        if window_ms <= 0:
            raise ValueError(f"window_ms must be positive, got {window_ms}")
        self.drop_pct = drop_pct
        self.window_ms = window_ms
        self._factor = 1 - drop_pct / 100
        self._highs: deque[tuple[int, Decimal]] = deque()
        self._last_ts: int | None = None
        self.tripped: CrashSignal | None = None

    @property
    def reference_high(self) -> Decimal | None:
        return self._highs[0][1] if self._highs else None

    def on_tick(self, ts_ms: int, price: Decimal) -> CrashSignal | None:
        """Feed one trade/mid price; return the signal on the tick that trips, else None."""
        if self.tripped is not None:
            return None
        if price <= 0:
            raise ValueError(f"price must be positive, got {price}")
        if self._last_ts is not None and ts_ms < self._last_ts:
            ts_ms = self._last_ts
        self._last_ts = ts_ms
        highs = self._highs
        horizon = ts_ms - self.window_ms
        while highs and highs[0][0] < horizon:
            highs.popleft()
        if highs and price <= highs[0][1] * self._factor:
            high = highs[0][1]
            drop = (high - price) * 100 / high
            self.tripped = CrashSignal(high, price, ts_ms, drop, self.drop_pct, self.window_ms)
            return self.tripped
        while highs and highs[-1][1] <= price:
            highs.pop()
        highs.append((ts_ms, price))
        return None

    def rearm(self) -> None:
        """Clear the trip and the history: the reference rebuilds from the next ticks."""
        self.tripped = None
        self._highs.clear()
        self._last_ts = None


class RuleInvalid(ValueError):
    """A breaker rule field outside its domain; ``field`` names it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class BreakerRule:
    """What counts as a crash for one account: ``drop_pct`` within ``window_ms`` for every
    symbol, except those in ``symbols``, which have a threshold of their own."""

    drop_pct: Decimal = DEFAULT_DROP_PCT
    window_ms: int = DEFAULT_WINDOW_MS
    symbols: Mapping[str, Decimal] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, pct in (
            ("drop_pct", self.drop_pct),
            *((f"symbols.{s}", p) for s, p in self.symbols.items()),
        ):
            if not isinstance(pct, Decimal) or not pct.is_finite() or not Decimal(0) < pct < Decimal(100):
                raise RuleInvalid(name, f"must be a percentage in (0, 100), got {pct!r}")
        if type(self.window_ms) is not int or self.window_ms <= 0:
            raise RuleInvalid("window_ms", f"must be a positive integer, got {self.window_ms!r}")
        for symbol in self.symbols:
            if not isinstance(symbol, str) or not symbol or symbol != symbol.upper():
                raise RuleInvalid("symbols", f"symbols are upper-case tickers, got {symbol!r}")
        object.__setattr__(self, "symbols", dict(sorted(self.symbols.items())))

    def __hash__(self) -> int:
        return hash((self.drop_pct, self.window_ms, tuple(self.symbols.items())))

    def for_symbol(self, symbol: str) -> tuple[Decimal, int]:
        """(threshold in percent, window in ms) for ``symbol``."""
        return self.symbols.get(symbol, self.drop_pct), self.window_ms

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "drop_pct": format(self.drop_pct, "f"),
            "window_ms": self.window_ms,
            "symbols": {s: format(p, "f") for s, p in self.symbols.items()},
        }

    @classmethod
    def from_json_dict(cls, data: Any) -> BreakerRule:
        if not isinstance(data, dict):
            raise RuleInvalid("breaker", "must be an object")
        for key in data:
            if key not in ("drop_pct", "window_ms", "symbols"):
                raise RuleInvalid(str(key), "unknown breaker rule field")
        symbols = data.get("symbols", {})
        if not isinstance(symbols, dict):
            raise RuleInvalid("symbols", "must be an object of symbol: percentage")
        window = data.get("window_ms", DEFAULT_WINDOW_MS)
        return cls(
            drop_pct=_pct("drop_pct", data.get("drop_pct", format(DEFAULT_DROP_PCT, "f"))),
            window_ms=window,
            symbols={str(s): _pct(f"symbols.{s}", p) for s, p in symbols.items()},
        )


def _pct(name: str, raw: Any) -> Decimal:
    if not isinstance(raw, str):
        raise RuleInvalid(name, f"must be a decimal string, got {raw!r}")
    try:
        return Decimal(raw)
    except InvalidOperation:
        raise RuleInvalid(name, f"not a decimal: {raw!r}") from None


DEFAULT_RULE = BreakerRule()


def symbol_rules(
    symbol: str, rules: Iterable[BreakerRule | None], default: BreakerRule = DEFAULT_RULE
) -> frozenset[tuple[Decimal, int]]:
    """Every distinct (threshold, window) the accounts' rules set for ``symbol`` (an account
    without a rule has ``default``; no account at all: the default alone). The floor
    trips when a detector of any of them does: exactly when one account's rule would. Merging
    them into one (the smallest threshold with the longest window) would trip on moves no
    account's rule names."""
    found = frozenset((rule or default).for_symbol(symbol) for rule in rules)
    return found or frozenset({default.for_symbol(symbol)})
