"""What ``floor up`` starts, in order, and the state file that ``floor status`` / ``floor down`` read.

Order matters: Postgres, Kafka and Temporal first (each only after the one before answers),
then topics and migrations, then the floor's own processes, which need all three.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from bus.command_topic import ensure_floor_topics
from config.processes import ServiceSpec
from config.settings import DatabaseUrlMissing, FloorSettings
from floor import services
from floor.database import prepare_database
from floor.paper_schwab import paper_schwab_accounts, prepare_paper_schwab
from floor.provision import PAPER_ACCOUNT, ProvisionError, provision
from floor.restart_policy import Exit, RestartPolicy
from floor.supervisor import RunningService, ServiceFailed, Supervisor
from floor.supervisor_events import OpsEventLog
from ledger.roles import RUNTIME_ROLES
from observability.logs import setup_logs

STATE_FILE = "floor.json"


@dataclass(frozen=True)
class ProcessRow:
    name: str
    address: str
    pid: int | None
    """None for a service the floor did not start (a real deployment)."""
    host: str
    port: int
    restarts: int = 0
    """How often the supervisor has restarted it since ``floor up``."""
    last_exit: Exit | None = None
    """How it last ended (exit code or signal, when), if it ever did."""
    starting: bool = False
    """Restarted and not answering yet."""

    @classmethod
    def from_json(cls, raw: Mapping[str, object]) -> ProcessRow:
        fields = dict(raw)
        last_exit = fields.pop("last_exit", None)
        row = cls(**fields)  # type: ignore[arg-type]
        return replace(row, last_exit=Exit(**last_exit)) if isinstance(last_exit, dict) else row

    def now(self, service: RunningService) -> ProcessRow:
        """This row as ``service`` (its process) is now: after a restart, its new pid."""
        return replace(
            self,
            pid=service.pid,
            restarts=service.restarts,
            last_exit=service.last_exit,
            starting=service.alive() and not service.ready,
        )


@dataclass(frozen=True)
class FloorState:
    supervisor_pid: int
    started_at: float
    processes: tuple[ProcessRow, ...]
    urls: dict[str, str]

    def save(self, var_dir: Path) -> None:
        var_dir.mkdir(parents=True, exist_ok=True)
        tmp = var_dir / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(var_dir / STATE_FILE)

    @classmethod
    def load(cls, var_dir: Path) -> FloorState | None:
        try:
            raw = json.loads((var_dir / STATE_FILE).read_text())
        except (OSError, ValueError):
            return None
        return cls(
            supervisor_pid=raw["supervisor_pid"],
            started_at=raw["started_at"],
            processes=tuple(ProcessRow.from_json(p) for p in raw["processes"]),
            urls=raw["urls"],
        )


def remove_state(var_dir: Path) -> None:
    (var_dir / STATE_FILE).unlink(missing_ok=True)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def urls(settings: FloorSettings) -> dict[str, str]:
    api = settings.api_url
    temporal_ui = f"http://{settings.host}:{settings.temporal_ui_port}"
    if settings.temporal_address:
        temporal_ui = "(your Temporal deployment's UI)"
    local = f"http://{settings.host}"
    return {
        "GraphQL": f"{api}/graphql",
        "Command API": f"{api}/v1/commands",
        "Temporal UI": temporal_ui,
        # Prometheus targets, one per process (the hot path's on its control port).
        "Metrics (API)": f"{api}/metrics",
        "Metrics (hot path)": f"{local}:{settings.hotpath_health_port}/metrics",
        "Metrics (worker)": f"{local}:{settings.worker_health_port}/metrics",
        "Metrics (bridge)": f"{local}:{settings.bridge_health_port}/metrics",
    } | ({} if settings.ib_host else {"Schwab API (paper)": settings.schwab_paper_url})


def host_port(address: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    return parts.hostname or "127.0.0.1", parts.port or default_port


def floor_process_specs(settings: FloorSettings) -> list[ServiceSpec]:
    """The floor's own processes, started after the infrastructure, each needing the ones before.

    With ``IB_HOST`` set the broker is a real IB Gateway / TWS: no paper venue is started (nor
    the paper Schwab API in front of it).
    """
    from api.service import api_spec
    from floor.paper_cmd import venue_spec
    from hotpath.service import hotpath_spec

    specs: list[ServiceSpec] = []
    if not settings.ib_host:
        specs += [
            venue_spec(settings),
            services.gateway_spec(settings, "primary", settings.ib_port),
            services.gateway_spec(settings, "standby", settings.ib_standby_port),
            # The paper Schwab Trader API over the same venue: accounts routed to Schwab trade here.
            services.schwab_api_spec(settings),
        ]
    specs += [
        hotpath_spec(settings),
        services.worker_spec(settings),
        services.bridge_spec(settings),
        api_spec(settings),
    ]
    return specs


Progress = Callable[[str], None]


def current_rows(
    rows: tuple[ProcessRow, ...] | list[ProcessRow], supervisor: Supervisor
) -> tuple[ProcessRow, ...]:
    """``rows`` with each supervised process as it is now (pid, restarts, last exit)."""
    services = {service.spec.name: service for service in supervisor.running}
    return tuple(row.now(services[row.name]) if row.name in services else row for row in rows)


def run_floor(
    settings: FloorSettings, supervisor: Supervisor, state: FloorState, stop: threading.Event, say: Progress
) -> ServiceFailed | None:
    """Keep the started floor up until ``stop`` is set or a process keeps dying past the restart
    limit, restarting what dies; then stop everything and remove the state file. Returns why the
    supervisor gave up, if it did (the caller says so and exits non-zero, as for a failed start)."""

    def changed(service: RunningService) -> None:
        # `floor status` and `floor down` read the state file: keep its pids and exits current.
        FloorState(
            state.supervisor_pid, state.started_at, current_rows(state.processes, supervisor), state.urls
        ).save(settings.var_dir)
        name = service.spec.name
        if service.ready:
            say(f"[green]{name} restarted[/] (restart {service.restarts})")
        elif service.alive():
            say(f"[yellow]{name} restarting[/] (restart {service.restarts})")
        elif service.last_exit is not None:
            say(f"[red]{name} {service.last_exit.describe()}[/]; see {service.log_path}")

    gave_up: list[ServiceFailed] = []

    def give_up(failure: ServiceFailed) -> None:
        gave_up.append(failure)
        stop.set()

    setup_logs("supervisor")  # its ops events as OpenTelemetry logs; flushed at exit
    events = OpsEventLog(lambda: settings.role_url("cli"), settings.log_dir)
    watchdog = supervisor.watch(
        RestartPolicy.from_settings(settings),
        events,
        on_change=changed,
        on_give_up=give_up,
        after_restart=after_restart(settings),
    )
    try:
        # A timeout, so that the main thread runs the signal handlers that set ``stop``.
        while not stop.wait(1.0):
            pass
    finally:
        say("stopping the floor")
        watchdog.stop()
        # The events first (a critical one, if it gave up), while the database may take them.
        events.close()
        supervisor.stop_all()
        remove_state(settings.var_dir)
    return gave_up[0] if gave_up else None


def after_restart(settings: FloorSettings) -> dict[str, Callable[[], None]]:
    """What must follow a restart of an embedded service, by service name: the embedded Kafka
    (Tansu on memory storage) comes back empty, so the floor's topics are made again before the
    processes that reconnect to it need them."""
    if settings.kafka_bootstrap:
        return {}
    return {"kafka": lambda: asyncio.run(ensure_floor_topics(settings.kafka, settings.command_partitions))}


def start_floor(settings: FloorSettings, supervisor: Supervisor, progress: Progress) -> list[ProcessRow]:
    """Start everything not supplied by a real deployment; on failure stop what was started."""
    rows: list[ProcessRow] = []
    try:
        # Before anything starts: with DATABASE_URL each process needs its own role's URL (the
        # embedded roles are made below).
        for role in RUNTIME_ROLES if settings.database_url else ():
            settings.role_url(role.process)
    except DatabaseUrlMissing as exc:
        raise ServiceFailed("set-up", "a floor process has no database URL of its own", str(exc)) from exc

    def run(spec: ServiceSpec) -> None:
        progress(f"starting {spec.name}")
        started = time.monotonic()
        service = supervisor.start(spec)
        host, port = spec.ports[0] if spec.ports else ("", 0)
        rows.append(ProcessRow(spec.name, spec.address, service.pid, host, port))
        progress(f"{spec.name} ready in {time.monotonic() - started:.1f} s")

    def external(name: str, address: str, default_port: int) -> None:
        host, port = host_port(address, default_port)
        rows.append(ProcessRow(name, redact(address), None, host, port))

    try:
        if settings.database_url:
            external("postgres", settings.database_url, 5432)
        else:
            run(services.postgres_spec(settings))
        if settings.kafka_bootstrap:
            external("kafka", settings.kafka_bootstrap, 9092)
        else:
            run(services.kafka_spec(settings))
        if settings.temporal_address:
            external("temporal", settings.temporal_address, 7233)
        else:
            run(services.temporal_spec(settings, ui=True))
        # Paper: the Schwab adapter trades the paper Schwab API, with a token file made for it.
        settings = prepare_paper_schwab(settings, progress)
        progress("creating topics, applying migrations, provisioning keys")
        for line in asyncio.run(_prepare_data(settings)):
            progress(line)
        for spec in floor_process_specs(settings):
            run(spec)
    except ServiceFailed:
        supervisor.stop_all()
        raise
    except ProvisionError as exc:
        supervisor.stop_all()
        raise ServiceFailed("set-up", "first-run provisioning stopped", str(exc)) from exc
    except Exception as exc:
        supervisor.stop_all()
        raise ServiceFailed(
            "set-up", f"{type(exc).__name__}: {exc}", "check the services above are reachable"
        ) from exc
    return rows


async def _prepare_data(settings: FloorSettings) -> list[str]:
    await ensure_floor_topics(settings.kafka, settings.command_partitions)
    done = await prepare_database(settings)
    if settings.ib_host:
        return done + await provision(settings, paper_account=None)
    done += await provision(settings, paper_account=PAPER_ACCOUNT)
    # A paper Schwab account the floor trades (FLOOR_BROKER_ACCOUNTS=...,SCHW0001=schwab) gets
    # the same conservative profile, so its first order is not refused for having none.
    for account in paper_schwab_accounts(settings):
        done += await provision(settings, paper_account=account)
    return done


def redact(url: str) -> str:
    """A URL without its password, for printing."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url
