"""``GET /metrics``: the API process's metrics in Prometheus text (OpenMetrics, with exemplars,
when the scraper asks for it), and the hub's gauges read at each scrape.

Unauthenticated, like any Prometheus target: counts, latencies and reasons, never an account,
a key or an order. Behind the same rate limit as every route (:class:`api.door_guard.DoorGuard`).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.hub import Hub
from observability.prometheus import exposition, registry_for
from observability.telemetry import Telemetry, observe

router = APIRouter()


def observe_hub(telemetry: Telemetry, hub: Hub) -> None:
    """The subscription hub's levels and totals, read from its stats when metrics are collected."""
    observe(
        telemetry,
        "floor.api.subscriptions",
        lambda: hub.stats().subscribers,
        description="Open GraphQL subscriptions (book, tape, order, breaker, security)",
    )
    observe(
        telemetry,
        "floor.api.subscriptions.dropped",
        lambda: hub.stats().dropped,
        kind="counter",
        description="Subscriptions ended because the subscriber fell behind (resync.overflow)",
    )
    observe(
        telemetry,
        "floor.api.records.unverified",
        lambda: hub.stats().unverified,
        kind="counter",
        description="Records the hub dropped because no writer of their topic signed them",
    )
    observe(
        telemetry,
        "floor.api.records.interrupted",
        lambda: hub.stats().interrupted,
        kind="counter",
        description="Records neither believed nor refused (each ended its topic's streams)",
    )

    def depth_lag() -> float | None:
        lag_ms = hub.stats().depth_lag_ms
        return None if lag_ms is None else lag_ms / 1000

    observe(
        telemetry,
        "floor.api.depth_lag",
        depth_lag,
        unit="s",
        description="The newest depth record: venue time to the hub having it",
    )


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    services = request.app.state.services
    telemetry: Telemetry | None = getattr(services, "telemetry", None)
    if telemetry is None:
        return Response("this API process keeps no metrics\n", status_code=404, media_type="text/plain")
    registry = getattr(request.app.state, "metrics_registry", None)
    if registry is None:
        registry = request.app.state.metrics_registry = registry_for(telemetry)
    body, content_type = exposition(registry, request.headers.get("accept"))
    return Response(body, media_type=content_type)
