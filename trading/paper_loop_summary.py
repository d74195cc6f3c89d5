"""The paper-loop audit's summary figures: outcomes, binding limits, P&L, slippage, latency."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the audit imports this module to build its result
    from trading.paper_loop_audit import TradeAudit, Violation

PERCENTILES = (50, 90, 99)
CENT = Decimal("0.01")
PER_SHARE = Decimal("0.0001")
"""The summary's figures are for reading: dollars to the cent, per-share to 1/100 of a cent
(half-even). Each trade keeps its exact figures; no limit is checked on these."""


@dataclass(frozen=True)
class Summary:
    trades: int
    outcomes: dict[str, int]
    binding: dict[str, int]
    """Sized entries by the limit that set their quantity."""
    violations: dict[str, int]
    pnl: Decimal
    """Realized, before commissions, to the cent."""
    slippage_dollars: Decimal
    """Sum over filled entries of slippage x filled, to the cent."""
    mean_slippage: Decimal | None
    """Per share, over the filled entries, to 1/100 of a cent."""
    latency_ms: dict[str, float]
    """p50, p90, p99, max of signal-to-order latency (empty without samples)."""


def percentile(values: Sequence[float], pct: int) -> float:
    """Nearest-rank percentile of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, -(-pct * len(ordered) // 100))
    return ordered[rank - 1]


def summarize(trades: Sequence[TradeAudit], violations: Sequence[Violation]) -> Summary:
    slipped = [t for t in trades if t.slippage_dollars is not None and t.filled]
    slippage_dollars = sum(
        (t.slippage_dollars for t in slipped if t.slippage_dollars is not None), Decimal(0)
    )
    filled = sum(t.filled for t in slipped)
    latencies = [t.latency_ms for t in trades if t.latency_ms is not None]
    latency: dict[str, float] = {}
    if latencies:
        latency = {f"p{p}": percentile(latencies, p) for p in PERCENTILES}
        latency["max"] = max(latencies)
    return Summary(
        trades=len(trades),
        outcomes=dict(Counter(t.outcome for t in trades)),
        binding=dict(Counter(t.binding for t in trades if t.binding is not None)),
        violations=dict(Counter(v.rule for v in violations)),
        pnl=sum((t.realized_pnl for t in trades), Decimal(0)).quantize(CENT, ROUND_HALF_EVEN),
        slippage_dollars=slippage_dollars.quantize(CENT, ROUND_HALF_EVEN),
        mean_slippage=(slippage_dollars / filled).quantize(PER_SHARE, ROUND_HALF_EVEN) if filled else None,
        latency_ms=latency,
    )
