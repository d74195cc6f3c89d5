"""Pure iceberg arithmetic used by the Iceberg workflow: slice price, slice size, fill quality.

Deterministic and side-effect free, so it runs inside workflow code and replays identically.

Rounding rules (money is exact):
- prices are ``Decimal`` on the instrument's tick grid; a price derived from the book is
  rounded *away from crossing* (down for a buy, up for a sell) onto the tick grid;
- slice sizes are ints; a randomized size is rounded half-to-even to whole shares, never below
  one share and never above what remains;
- fill-quality figures use 28-digit Decimal arithmetic; VWAP and benchmark mid are quantized
  to 1e-6 and basis points to 0.01, half-to-even, only when reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

BPS = Decimal(10_000)
PRICE_Q = Decimal("0.000001")
BPS_Q = Decimal("0.01")


@dataclass(frozen=True)
class Quote:
    bid: Decimal
    ask: Decimal
    tick: Decimal = Decimal("0.01")

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2


def on_tick(price: Decimal, tick: Decimal, side: str) -> Decimal:
    """Snap to the tick grid on the passive side (a buy never rounds up, a sell never down)."""
    rounding = ROUND_FLOOR if side == "BUY" else ROUND_CEILING
    return (price / tick).to_integral_value(rounding=rounding) * tick


def slice_price(side: str, quote: Quote, limit: Decimal | None) -> Decimal:
    """Join the near touch; improve it by one tick when the spread is wider than one tick, so
    the improved price still rests inside the spread instead of crossing. Never through the
    parent's limit."""
    tick = quote.tick
    spread = quote.ask - quote.bid
    if side == "BUY":
        price = quote.bid + tick if spread > tick else quote.bid
        price = on_tick(price, tick, side)
        return min(price, limit) if limit is not None else price
    price = quote.ask - tick if spread > tick else quote.ask
    price = on_tick(price, tick, side)
    return max(price, limit) if limit is not None else price


def slice_qty(display_qty: int, remaining: int, jitter_pct: int, u: float) -> int:
    """Display size, optionally moved by up to ``jitter_pct`` percent (``u`` uniform in
    [0, 1) from ``workflow.random()``), capped by what remains."""
    if remaining <= 0:
        return 0
    qty = display_qty
    if jitter_pct > 0:
        factor = Decimal(1) + Decimal(jitter_pct) / 100 * (Decimal(repr(u)) * 2 - 1)
        qty = int((Decimal(display_qty) * factor).to_integral_value(rounding=ROUND_HALF_EVEN))
    return max(1, min(qty, remaining))


@dataclass(frozen=True)
class SliceFill:
    qty: int
    price: Decimal
    mid_at_send: Decimal


@dataclass(frozen=True)
class FillQuality:
    filled_qty: int
    vwap: Decimal
    """Quantity-weighted average fill price."""
    benchmark_mid: Decimal
    """Mid at each slice's send time, weighted by that slice's filled quantity."""
    diff_bps: Decimal
    """(vwap - benchmark_mid) / benchmark_mid in basis points, signed as is."""
    cost_bps: Decimal
    """Same difference from the trader's side: positive means paid up (buy) / sold down (sell)."""


def fill_quality(side: str, fills: list[SliceFill]) -> FillQuality | None:
    filled = sum(f.qty for f in fills)
    if filled == 0:
        return None
    notional = sum((f.price * f.qty for f in fills), Decimal(0))
    bench_notional = sum((f.mid_at_send * f.qty for f in fills), Decimal(0))
    vwap = notional / filled
    bench = bench_notional / filled
    diff = (vwap - bench) / bench * BPS
    cost = diff if side == "BUY" else -diff
    return FillQuality(
        filled_qty=filled,
        vwap=vwap.quantize(PRICE_Q, rounding=ROUND_HALF_EVEN),
        benchmark_mid=bench.quantize(PRICE_Q, rounding=ROUND_HALF_EVEN),
        diff_bps=diff.quantize(BPS_Q, rounding=ROUND_HALF_EVEN),
        cost_bps=cost.quantize(BPS_Q, rounding=ROUND_HALF_EVEN),
    )


def slice_command_id(workflow_id: str, slice_no: int) -> str:
    """Deterministic, so a retried publish carries the same id and intake dedupes it."""
    return f"{workflow_id}.s{slice_no:04d}"


def cancel_command_id(target_command_id: str, attempt: int) -> str:
    return f"{target_command_id}.cancel{attempt}"
