"""The API as a supervised process."""

from __future__ import annotations

import sys

from config.processes import ServiceSpec, child_env, tcp_probe
from config.settings import FloorSettings


def api_spec(settings: FloorSettings, *, env: dict[str, str | None] | None = None) -> ServiceSpec:
    """Ready when uvicorn accepts connections, which it does only after the app's start-up
    (database pool and Kafka producer open) succeeded."""
    port = settings.api_port
    return ServiceSpec(
        name="api",
        argv=[sys.executable, "-m", "api", "--port", str(port)],
        address=settings.api_url,
        probe=tcp_probe(settings.host, port),
        ports=((settings.host, port),),
        env={**child_env(settings, "api"), "FLOOR_API_PORT": str(port), **(env or {})},
        hint="set FLOOR_API_PORT to a free port; the API needs Postgres and Kafka",
    )
