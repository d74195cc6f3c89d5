"""``GET /metrics``: the API process's metrics in Prometheus text (OpenMetrics, with exemplars,
when the scraper asks for it), and the hub's gauges read at each scrape.

Unauthenticated, like any Prometheus target: counts, latencies and reasons, never an account,
a key or an order. Behind the same rate limit as every route (:class:`api.door_guard.DoorGuard`).
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request, Response

from api.hub import Hub
from observability.prometheus import exposition, registry_for
from observability.telemetry import Telemetry, observe

router = APIRouter()


def observe_hub(telemetry: Telemetry, hub: Hub) -> None:
    """The subscription hub's levels and totals, read from its stats when metrics are collected."""

    def depth_lag_s() -> float | None:
        lag_ms = hub.stats().depth_lag_ms
        return None if lag_ms is None else lag_ms / 1000

    readings: tuple[tuple[str, Callable[[], float | None], str, str, str], ...] = (
        ("floor.api.subscriptions", lambda: hub.stats().subscribers, "gauge", "1",
         "Open GraphQL subscriptions (book, tape, order, breaker, security)"),
        ("floor.api.subscriptions.dropped", lambda: hub.stats().dropped, "counter", "1",
         "Subscriptions ended because the subscriber fell behind (resync.overflow)"),
        ("floor.api.records.unverified", lambda: hub.stats().unverified, "counter", "1",
         "Records the hub dropped because no writer of their topic signed them"),
        ("floor.api.records.interrupted", lambda: hub.stats().interrupted, "counter", "1",
         "Records neither believed nor refused (each ended its topic's streams)"),
        ("floor.api.depth_lag", depth_lag_s, "gauge", "s",
         "The newest depth record: venue time to the hub having it"),
    )  # fmt: skip
    for name, read, kind, unit, description in readings:
        observe(telemetry, name, read, kind=kind, unit=unit, description=description)


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
