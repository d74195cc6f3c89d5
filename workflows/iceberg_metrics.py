"""An ended Iceberg's fill quality as a metric, through the workflow's replay-safe meter (a
replayed history records nothing again). The worker moves the Temporal Runtime's metrics into
its ``/metrics`` (``observability.temporal_metrics``), where this lands in the floor's own
``floor.iceberg.fill_quality`` histogram (``floor_iceberg_fill_quality_bp``)."""

from __future__ import annotations

from temporalio import workflow

from workflows.slicing import FillQuality

FILL_QUALITY = "floor.iceberg.fill_quality"
"""The name ``observability.telemetry`` gives the instrument (workflows may not import it)."""


def record_fill_quality(quality: FillQuality | None, symbol: str, side: str) -> None:
    """Its cost against the mid in basis points; nothing for an Iceberg that filled nothing."""
    if quality is None:
        return
    histogram = workflow.metric_meter().create_histogram_float(
        FILL_QUALITY, "An ended Iceberg's cost against the mid, basis points", "bp"
    )
    histogram.record(float(quality.cost_bps), {"symbol": symbol, "side": side})
