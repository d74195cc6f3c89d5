"""The hot path as a supervised process (``floor up`` and the tests start it through this)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from config.processes import ServiceSpec, child_env, tcp_probe
from config.settings import FloorSettings
from hotpath.circuit_breaker_log import BREAKER_AGENT
from trading.iceberg_parents import SNIPER
from trading.symbols import parse_symbols


def hotpath_spec(
    settings: FloorSettings,
    *,
    symbols: Sequence[str] | None = None,
    group_id: str = "hotpath",
    env: dict[str, str | None] | None = None,
    breaker_agent: str = BREAKER_AGENT,
    sniper_agents: Sequence[str] = (SNIPER,),
) -> ServiceSpec:
    """Ready when the control port answers, which happens only once intake is consuming.
    ``symbols`` defaults to ``settings.hotpath_symbols``; ``breaker_agent``'s key in the keys
    dir signs the breaker's trips; only ``sniper_agents``' keys may sign iceberg slices."""
    port = settings.hotpath_health_port
    if symbols is None:
        symbols = parse_symbols(settings.hotpath_symbols)
    return ServiceSpec(
        name="hotpath",
        argv=[
            sys.executable,
            "-m",
            "hotpath",
            "--health-port",
            str(port),
            "--symbols",
            ",".join(symbols),
            "--group-id",
            group_id,
            "--breaker-agent",
            breaker_agent,
            "--sniper-agents",
            ",".join(sniper_agents),
        ],
        address=f"http://{settings.host}:{port}/health",
        probe=tcp_probe(settings.host, port),
        ports=((settings.host, port),),
        env={
            **child_env(settings, "hotpath"),
            "FLOOR_HOTPATH_HEALTH_PORT": str(port),
            **(env or {}),
        },
        ready_timeout=60.0,
        hint="read the hot path log; it needs Postgres, Kafka and a broker gateway",
    )
