"""Process specs: how each process of the floor is started and how to tell it is ready.

``floor up``'s supervisor starts what these describe; each process's own package says what its
spec is (``hotpath/service.py``, ``api/service.py``) without depending on the supervisor.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from config.settings import FloorSettings

START_MARKER = "--- starting"
"""The supervisor writes this line to a service's log before each start (see log_probe)."""

Probe = Callable[[], bool]
"""Answers True once a service serves requests. Must return quickly (well under a second)."""


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    argv: Sequence[str]
    address: str
    probe: Probe
    ports: tuple[tuple[str, int], ...] = ()
    env: Mapping[str, str | None] | None = None
    """Added to the supervisor's environment; a None value removes that variable."""
    ready_timeout: float = 30.0
    user: str | None = None
    hint: str = ""


def tcp_probe(host: str, port: int) -> Probe:
    def probe() -> bool:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            return False

    return probe


def command_probe(argv: Sequence[str], timeout: float = 5.0) -> Probe:
    """Ready when the command exits 0 (e.g. ``pg_isready``)."""

    def probe() -> bool:
        try:
            result = subprocess.run(
                list(argv), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
        return result.returncode == 0

    return probe


def log_probe(path: Path, text: str) -> Probe:
    """Ready once ``text`` appears in the log after this start's marker line.

    For workers that serve no port of their own: they log a line once they are polling.
    """

    def probe() -> bool:
        try:
            content = path.read_text(errors="replace")
        except OSError:
            return False
        return text in content[content.rfind(START_MARKER) :]

    return probe


def child_env(settings: FloorSettings, database: str | None = None) -> dict[str, str | None]:
    """Settings a child process must share with this one, as its environment (a None value
    removes the variable, so an unset optional setting is unset in the child too).

    ``database`` names the process kind whose own role the child connects as (``hotpath``,
    ``api``, ``worker``); the child never gets the administrator's ``DATABASE_URL``."""
    role_urls: dict[str, str | None] = {
        f"FLOOR_{p.upper()}_DATABASE_URL": None for p in ("hotpath", "api", "worker", "cli", "brain")
    }
    if database is not None:
        role_urls[f"FLOOR_{database.upper()}_DATABASE_URL"] = settings.role_url(database)
    return {
        "FLOOR_VAR_DIR": str(settings.var_dir.resolve()),
        "FLOOR_HOST": settings.host,
        "DATABASE_URL": None,
        **role_urls,
        "KAFKA_BOOTSTRAP": settings.kafka,
        "TEMPORAL_ADDRESS": settings.temporal,
        "IB_HOST": settings.ib_gateway_host,
        "IB_PORT": str(settings.ib_port),
        "IB_STANDBY_PORT": str(settings.ib_standby_port),
        "IB_CLIENT_ID": str(settings.ib_client_id),
        "IB_SOURCE_ADDRESS": settings.ib_source_address,
        "FLOOR_BROKER_ACCOUNTS": settings.broker_accounts,
        # The Schwab adapter's: where its token file is and whom it talks to.
        "FLOOR_SCHWAB_TOKEN_PATH": str(settings.schwab_token_file.resolve()),
        "FLOOR_SCHWAB_APP_KEY": settings.schwab_app_key,
        "FLOOR_SCHWAB_APP_SECRET": settings.schwab_app_secret,
        "FLOOR_SCHWAB_BASE_URL": settings.schwab_base_url,
        "FLOOR_SCHWAB_POLL_S": str(settings.schwab_poll_s),
        "FLOOR_SCHWAB_ORDER_RATE_PER_MIN": str(settings.schwab_order_rate_per_min),
        # Resolved here: the child always gets KAFKA_BOOTSTRAP, so it cannot tell embedded apart.
        "FLOOR_KAFKA_FETCH_WAIT_MS": str(settings.command_fetch_wait_ms),
        "FLOOR_DEPTH_INTERVAL_MS": str(settings.depth_publish_interval_ms),
        "FLOOR_API_FETCH_WAIT_MS": str(settings.api_feed_fetch_wait_ms),
        # The worker's and the bridge's metrics ports: a worker or bridge started for this
        # floor serves /metrics where `floor status` says, not on another floor's default port.
        "FLOOR_WORKER_HEALTH_PORT": str(settings.worker_health_port),
        "FLOOR_BRIDGE_HEALTH_PORT": str(settings.bridge_health_port),
    }
