"""A whole floor of its own for one chaos scenario, and the faults a scenario injects into it.

Every scenario gets its own Postgres, Tansu, paper venue, primary and standby gateways and hot
path, on free ports under ``var/chaos-*`` (started by the supervisor code ``floor up`` uses,
about two seconds in all): a scenario may kill or restart any of them without touching the
session's shared services or the next scenario, and the venue's records are this scenario's
alone. The floor is set up as ``floor up`` sets it up (topics, roles, migrations, the floor's
own keys), plus one agent and a risk profile roomy enough that the load's commands are refused
only for what a fault did.

The hot path runs under a watching supervisor, as ``floor up`` runs it: killed, it is restarted
by the supervisor (:func:`tests.fixtures.supervised.kill_and_await_restart`), not by the test.
The infrastructure's supervisor does not watch: a scenario that takes a gateway or Postgres down
brings it back itself, when the scenario says.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bus.kafka import ensure_topics, start_producer
from config.settings import FloorSettings
from floor import services
from floor.database import prepare_database
from floor.keys import key_path
from floor.provision import OPERATOR, provision
from floor.supervisor import RunningService, Supervisor, stop_process_group
from hotpath.service import hotpath_spec
from ledger.checkpoints import CHECKPOINTS_FILE, read_checkpoints
from ledger.keys import register_key
from ledger.risk_profiles import set_profile
from ledger.verify import VerifyReport, verify_ledger
from tests.factories import Agent, new_agent, risk_profile
from tests.fixtures.paper import PaperStack, start_paper_stack
from tests.fixtures.supervised import kill, kill_and_await_restart, watched_supervisor
from tests.helpers import eventually
from trading.signing import private_key_from_pem, public_key_bytes

ACCOUNT = "DU1234567"
"""The paper venue's account (the only one with a net liquidation)."""
SYMBOLS = ("AAPL", "MSFT")
PROFILE = risk_profile(
    max_dollar_risk=Decimal("5000"),
    max_position=100_000,
    max_gross_exposure=Decimal("100000000"),
    max_open_orders=100_000,
    # Quotes stop while both gateways are down: the scenario is about faults, not stale prices.
    staleness_ms=120_000,
)


@dataclass
class ChaosFloor:
    settings: FloorSettings
    supervisor: Supervisor
    paper: PaperStack
    pool: asyncpg.Pool
    """The superuser's, for reading what the floor wrote (reconnects after a Postgres restart)."""
    agent: Agent
    """Registered, may trade :data:`ACCOUNT`: signs the load's commands."""
    operator: Agent
    """The floor's operator key (``var/keys/operator.key``): trips and re-arms the breaker."""
    watcher: Supervisor
    """Restarts the hot path when it dies, with ``floor up``'s rules (a shorter back-off)."""
    closing: contextlib.ExitStack
    group_id: str = field(default_factory=lambda: f"hotpath-{uuid.uuid4().hex[:8]}")
    services: dict[str, RunningService] = field(default_factory=dict)

    # --- start and stop ---------------------------------------------------------------------

    @classmethod
    async def start(cls, var_dir: Path) -> ChaosFloor:
        settings = FloorSettings.on_free_ports(var_dir)
        supervisor = Supervisor(settings.log_dir)
        pool: asyncpg.Pool | None = None
        try:
            postgres = await asyncio.to_thread(supervisor.start, services.postgres_spec(settings))
            kafka = await asyncio.to_thread(supervisor.start, services.kafka_spec(settings))
            await ensure_topics(settings.kafka)
            await prepare_database(settings)
            await provision(settings, paper_account=None)
            pool = await asyncpg.create_pool(settings.db_url, min_size=1, max_size=4)
            operator_key = private_key_from_pem(key_path(settings, OPERATOR).read_bytes())
            operator = Agent(OPERATOR, operator_key, role="operator")
            await set_profile(pool, ACCOUNT, PROFILE, operator_id=OPERATOR, operator_key=operator_key)
            agent = new_agent()
            await register_key(pool, agent.agent_id, public_key_bytes(agent.private_key), "agent", [ACCOUNT])
            paper = await asyncio.to_thread(start_paper_stack, supervisor, settings, prefix="chaos")
        except BaseException:
            if pool is not None:
                await pool.close()
            supervisor.stop_all()
            raise
        closing = contextlib.ExitStack()
        watcher = closing.enter_context(watched_supervisor(settings, settings.log_dir))
        floor = cls(settings, supervisor, paper, pool, agent, operator, watcher, closing)
        floor.services.update(postgres=postgres, kafka=kafka)
        return floor

    async def close(self) -> None:
        await asyncio.to_thread(self.closing.close)
        await self.pool.close()
        await asyncio.to_thread(self.supervisor.stop_all)

    # --- the hot path -----------------------------------------------------------------------

    @property
    def control_url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.hotpath_health_port}"

    async def start_hotpath(self) -> None:
        """Start the hot path as ``floor up`` does (one consumer group for its whole life, so a
        restart resumes from its committed offset); returns once it consumes."""
        spec = hotpath_spec(
            self.settings, symbols=SYMBOLS, group_id=self.group_id, env={"FLOOR_KAFKA_FLOOD_WINDOW_S": "1"}
        )
        self.services["hotpath"] = await asyncio.to_thread(self.watcher.start, spec)

    async def restart_hotpath(self) -> None:
        """``kill -9`` the hot path; returns once the supervisor has it consuming again."""
        await kill_and_await_restart(self.watcher, "hotpath")

    def kill_hotpath(self) -> int:
        """``kill -9``, nothing more (the supervisor restarts it); returns its restart count before."""
        service = self.services["hotpath"]
        restarts = service.restarts
        kill(service)
        return restarts

    async def hotpath_back(self, restarts_before: int, timeout: float = 90.0) -> None:  # noqa: ASYNC109
        """Return once the supervisor restarted the hot path (after :meth:`kill_hotpath`) and it
        consumes again."""
        service = self.services["hotpath"]
        watchdog = self.watcher.watchdog
        assert watchdog is not None

        def back() -> bool:
            assert watchdog.gave_up is None, f"the supervisor gave up: {watchdog.gave_up}"
            return service.restarts > restarts_before and service.ready and service.alive()

        await eventually(back, timeout=timeout, interval=0.05)

    async def health(self) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=5.0) as client:
            body: dict[str, Any] = (await client.get(f"{self.control_url}/health")).json()
            return body

    def hotpath_log(self, lines: int = 30) -> str:
        """The end of the hot path's log: its warnings and errors, not ib_async's chatter."""
        path = self.settings.log_dir / "hotpath.log"
        if not path.exists():
            return "(no hot path started)"
        kept = [
            line
            for line in path.read_text(errors="replace").splitlines()
            if " ib_async." not in line
            and any(f" {level} " in line for level in ("WARNING", "ERROR", "CRITICAL"))
        ]
        return "\n".join(kept[-lines:])

    # --- the gateways -----------------------------------------------------------------------

    async def freeze_gateway(self, name: str, seconds: float) -> None:
        """The gateway goes silent: its sockets stay open, no byte comes out."""
        await self.paper.acontrol("POST", f"/gateways/{name}/freeze", {"seconds": seconds})

    async def drop_gateway(self, name: str) -> None:
        """The gateway closes its API client connections (and stays up)."""
        await self.paper.acontrol("POST", f"/gateways/{name}/drop")

    def kill_gateway(self, name: str) -> None:
        """``kill -9``, like a crashed IB Gateway: no goodbye on any socket."""
        service = self.paper.services.pop(name)
        _kill_group(service)
        self.supervisor.running.remove(service)

    async def restart_gateway(self, name: str) -> None:
        port = self.settings.ib_port if name == "primary" else self.settings.ib_standby_port
        await asyncio.to_thread(self.paper.start_gateway, name, port)

    # --- the infrastructure -----------------------------------------------------------------

    def kill_postgres(self) -> None:
        """``kill -9`` of the server and every backend: the clients' connections just die."""
        self._kill("postgres")

    async def start_postgres(self) -> None:
        """Start it again on the same data (crash recovery first); returns once it answers."""
        spec = services.postgres_spec(self.settings)
        self.services["postgres"] = await asyncio.to_thread(self.supervisor.start, spec)
        await self.pool.expire_connections()

    async def restart_kafka(self) -> None:
        """Stop the broker and start it again (the embedded Tansu keeps records in memory only)."""
        service = self.services.pop("kafka")
        self.supervisor.running.remove(service)
        await asyncio.to_thread(stop_process_group, service.pid)
        self.services["kafka"] = await asyncio.to_thread(
            self.supervisor.start, services.kafka_spec(self.settings)
        )
        await ensure_topics(self.settings.kafka)

    def _kill(self, name: str) -> None:
        service = self.services.pop(name)
        _kill_group(service)
        self.supervisor.running.remove(service)

    # --- reading ----------------------------------------------------------------------------

    def gateway(self, name: str) -> str:
        """The address the hot path's ops events name the gateway by."""
        port = self.settings.ib_port if name == "primary" else self.settings.ib_standby_port
        return f"{self.settings.host}:{port}"

    async def ops_mark(self) -> int:
        """The newest ops event's id: :meth:`session_change` looks only at what comes after it."""
        return int(await self.pool.fetchval("SELECT coalesce(max(id), 0) FROM ops_events"))

    async def session_change(
        self,
        change: str,
        *,
        since: int,
        gateway: str | None = None,
        timeout: float = 30.0,  # noqa: ASYNC109
    ) -> dict[str, Any]:
        """The hot path's first ``broker.<change>`` ops event after ``since`` (of ``gateway``, an
        address, if given): the floor's own record that its broker session changed."""

        async def found() -> dict[str, Any] | None:
            rows = await self.pool.fetch(
                "SELECT detail FROM ops_events WHERE id > $1 AND kind = $2 ORDER BY id",
                since,
                f"broker.{change}",
            )
            details = [json.loads(r["detail"]) for r in rows]
            return next((d for d in details if gateway is None or d.get("gateway") == gateway), None)

        detail: dict[str, Any] = await eventually(found, timeout=timeout, interval=0.1)
        return detail

    async def producer(self) -> Any:
        return await start_producer(self.settings.kafka, self.agent.agent_id)

    async def verify_ledger(self) -> VerifyReport:
        """What ``floor ledger verify`` checks: chain, signatures and the signed checkpoints."""
        lines = read_checkpoints(self.settings.var_dir / CHECKPOINTS_FILE)
        return await verify_ledger(self.settings.role_url("cli"), checkpoints=lines)


_LEVELS = ("WARNING", "ERROR", "CRITICAL")
_AREAS = ("hotpath", "brokers", "bus", "ledger", "trading")


def _kill_group(service: RunningService) -> None:
    try:
        os.killpg(service.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    service.process.wait()
