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
    """Its cost against the mid in basis points; nothing for an Iceberg that filled nothing.

    Temporal's workflow meter takes no negative value, and a fill better than the mid is one:
    the histogram holds the size of the difference and the attribute ``against_mid`` says which
    way it went (``cost``: worse than the mid, paid up on a buy or sold down on a sell;
    ``improvement``: better). A metric never fails the workflow: one that cannot be recorded is
    logged and dropped."""
    if quality is None:
        return
    cost = float(quality.cost_bps)
    attributes = {"symbol": symbol, "side": side, "against_mid": "cost" if cost >= 0 else "improvement"}
    try:
        histogram = workflow.metric_meter().create_histogram_float(
            FILL_QUALITY, "An ended Iceberg's distance from the mid, basis points", "bp"
        )
        histogram.record(abs(cost), attributes)
    except Exception as exc:  # noqa: BLE001 - a metric must not fail the Iceberg's result
        workflow.logger.warning("fill quality %s bp not recorded as a metric: %s", cost, exc)
