"""Iceberg bookkeeping that is not slice math (that lives in :mod:`trading.iceberg`): the
fill-quality summary and the deterministic ids of slice and cancel commands.

Rounding: figures are computed with exact Decimal arithmetic (28 significant digits) by
:mod:`trading.iceberg`; here VWAP and benchmark mid are quantized to 1e-6 and basis points to
0.01, half-to-even, for the report only.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from trading.commands import Side
from trading.iceberg import BPS, SliceFill, average_price, fill_quality_bps

PRICE_Q = Decimal("0.000001")
BPS_Q = Decimal("0.01")


@dataclass(frozen=True)
class FillQuality:
    filled_qty: int
    vwap: Decimal
    """Quantity-weighted average fill price."""
    benchmark_mid: Decimal
    """Mid at each slice's send time, weighted by that slice's filled quantity."""
    diff_bps: Decimal
    """(vwap - benchmark_mid) / benchmark_mid in basis points, as is (positive: above the mid)."""
    cost_bps: Decimal
    """The same from our side: positive when the fills were worse than the mid (paid up on a
    buy, sold down on a sell)."""


def fill_quality(side: Side, fills: list[SliceFill]) -> FillQuality | None:
    fills = [f for f in fills if f.qty > 0]
    if not fills:
        return None
    vwap = average_price(fills)
    bench = sum((f.mid * f.qty for f in fills), Decimal(0)) / sum(f.qty for f in fills)
    return FillQuality(
        filled_qty=sum(f.qty for f in fills),
        vwap=vwap.quantize(PRICE_Q, rounding=ROUND_HALF_EVEN),
        benchmark_mid=bench.quantize(PRICE_Q, rounding=ROUND_HALF_EVEN),
        diff_bps=((vwap - bench) * BPS / bench).quantize(BPS_Q, rounding=ROUND_HALF_EVEN),
        cost_bps=fill_quality_bps(side, fills).quantize(BPS_Q, rounding=ROUND_HALF_EVEN),
    )


def slice_command_id(workflow_id: str, slice_no: int) -> str:
    """Deterministic, so a retried publish carries the same id (and nonce) as the first."""
    return f"{workflow_id}.s{slice_no:04d}"


def cancel_command_id(target_command_id: str, attempt: int) -> str:
    return f"{target_command_id}.x{attempt}"


def expiry_cancel_command_id(target_command_id: str, attempt: int) -> str:
    """The id of an OrderLifecycle's DAY-expiry cancel. Not :func:`cancel_command_id`: a slice's
    Iceberg cancels it under that id when it reprices, and the ledger takes each command id
    once, so the lifecycle's cancel at the close would be refused as a replay and lost."""
    return f"{target_command_id}.tif{attempt}"
