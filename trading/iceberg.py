"""Slice planning for the Sniper (iceberg parent orders).

Everything random comes in as an argument (``u`` in [0, 1)), so the workflow can pass
``workflow.random().random()`` and stay deterministic, and tests can pass exact values.

Slice quantity: ``display_size x (1 + jitter x (2u - 1))`` — uniform within ±``jitter`` of the
display size — rounded half-up to whole shares, at least 1 and never more than what remains.

Slice price, from the touch (the mid is their average): when the spread is at least two ticks
the slice improves the near touch by one tick (a BUY bids one tick above the best bid, a SELL
offers one tick below the best ask), which keeps it strictly inside the spread and closer to
the mid; otherwise it joins the near touch. A parent limit, when given, caps the price (never
above it for a BUY, never below it for a SELL).

Fill quality: slippage against the mid at slice time, in basis points, positive when the fill
was worse than the mid for our side. Exact Decimal division in the default context (28
significant digits); callers round for display only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

from trading.commands import Side

BPS = Decimal(10_000)


@dataclass(frozen=True)
class SliceFill:
    qty: int
    price: Decimal
    mid: Decimal
    """The mid when the slice was priced: the benchmark for its fills."""


def slice_quantity(
    display_size: int, remaining: int, u: float | Decimal, jitter: Decimal = Decimal("0.05")
) -> int:
    """Quantity of the next visible slice (see the module docstring)."""
    if display_size <= 0 or remaining <= 0:
        raise ValueError("display_size and remaining must be positive")
    if not 0 <= jitter < 1:
        raise ValueError(f"jitter must be in [0, 1), got {jitter}")
    u_dec = Decimal(u) if not isinstance(u, Decimal) else u
    if not 0 <= u_dec < 1:
        raise ValueError(f"u must be in [0, 1), got {u}")
    raw = display_size * (1 + jitter * (2 * u_dec - 1))
    qty = int(raw.to_integral_value(rounding=ROUND_HALF_UP))
    return max(1, min(qty, remaining))


def slice_delay_ms(u: float | Decimal, low_ms: int = 3000, high_ms: int = 7000) -> int:
    """Interval before the next slice: uniform in [low_ms, high_ms), whole milliseconds (floor)."""
    u_dec = Decimal(u) if not isinstance(u, Decimal) else u
    if not 0 <= u_dec < 1:
        raise ValueError(f"u must be in [0, 1), got {u}")
    return low_ms + int((u_dec * (high_ms - low_ms)).to_integral_value(rounding=ROUND_FLOOR))


def backoff_after(failures: int, first: timedelta, cap: timedelta) -> timedelta:
    """The wait before trying again after ``failures`` earlier failed rounds (0 for the first
    retry): ``first``, doubling each round, never more than ``cap``."""
    if failures < 0:
        raise ValueError("failures must not be negative")
    # Past 2**20 the cap has long been reached; stopping there keeps the product small.
    return min(first * 2 ** min(failures, 20), cap)


def slice_price(
    side: Side, bid: Decimal, ask: Decimal, tick: Decimal, limit: Decimal | None = None
) -> Decimal:
    """Limit price of the next slice (see the module docstring)."""
    if tick <= 0:
        raise ValueError("tick must be positive")
    if ask <= bid:
        raise ValueError(f"crossed or locked book (bid {bid}, ask {ask}): no price to join")
    improve = ask - bid >= 2 * tick
    if side is Side.BUY:
        price = bid + tick if improve else bid
        return min(price, limit) if limit is not None else price
    price = ask - tick if improve else ask
    return max(price, limit) if limit is not None else price


def slippage_bps(side: Side, price: Decimal, mid: Decimal) -> Decimal:
    """Basis points by which ``price`` is worse than ``mid`` for ``side`` (negative: better)."""
    if mid <= 0:
        raise ValueError("mid must be positive")
    return (price - mid) * side.sign * BPS / mid


def fill_quality_bps(side: Side, fills: list[SliceFill]) -> Decimal:
    """Quantity-weighted slippage of all fills against their own slice's mid, in bps.

    Equals ``slippage_bps(avg_price, avg_mid)`` with both averages weighted by quantity, so a
    parent whose fills track the mid as it drifts scores near zero.
    """
    total_qty = sum(f.qty for f in fills)
    if total_qty <= 0:
        raise ValueError("no fills")
    paid = sum((f.qty * f.price for f in fills), Decimal(0))
    benchmark = sum((f.qty * f.mid for f in fills), Decimal(0))
    return (paid - benchmark) * side.sign * BPS / benchmark


def average_price(fills: list[SliceFill]) -> Decimal:
    total_qty = sum(f.qty for f in fills)
    if total_qty <= 0:
        raise ValueError("no fills")
    return sum((f.qty * f.price for f in fills), Decimal(0)) / total_qty
