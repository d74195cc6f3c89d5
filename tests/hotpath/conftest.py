"""A real hot path process against the session's Postgres, Kafka and paper venue."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from bus.kafka import start_producer
from bus.topics import AGENT_COMMANDS
from config.ports import free_port
from config.settings import FloorSettings
from floor.keys import key_path, write_private_key
from floor.supervisor import RunningService, Supervisor, stop_process_group
from hotpath.iceberg_commands import FLOOR_CONTROL
from hotpath.service import hotpath_spec
from ledger.keys import ROLE_SERVICE, KeyConflict, register_key, revoke_agent
from ledger.risk_profiles import set_profile
from tests.fixtures.hotpath import ensure_record_writers, new_agent, register
from tests.fixtures.paper import PaperStack
from tests.helpers import eventually
from trading.commands import Command, CommandKind, utc_now_ms
from trading.signing import generate_private_key, private_key_to_pem, public_key_bytes
from trading.sizing import RiskProfile

VENUE_ACCOUNT = "DU1234567"
"""The paper venue's account (the only one with a net liquidation)."""
SYMBOLS = ("AAPL", "MSFT")
"""Streamed by the hot path; a symbol outside these has no fresh price."""

MAIN_PROFILE = RiskProfile(
    max_trade_size=Decimal("50000"),
    max_dollar_risk=Decimal("2000"),
    max_position=1000,
    max_gross_exposure=Decimal("500000"),
    max_open_orders=50,
    staleness_ms=60_000,
)
TIGHT_ACCOUNT = "DU-TIGHT"
TIGHT_PROFILE = RiskProfile(
    max_trade_size=Decimal("50000"),
    max_dollar_risk=Decimal("100"),
    max_position=15,
    max_gross_exposure=Decimal("1000"),
    max_open_orders=50,
    staleness_ms=60_000,
)


@dataclass
class HotPathProcess:
    control_url: str
    settings: FloorSettings
    supervisor: Supervisor | None = None
    service: RunningService | None = None

    async def restart(self, while_down: Callable[[], Awaitable[object]] | None = None) -> None:
        """Stop the process, run ``while_down``, and start it again as it was (same ports,
        consumer group, keys), as ``floor up`` would after a crash; returns once it consumes."""
        assert self.supervisor is not None and self.service is not None
        self.supervisor.running.remove(self.service)
        stop_process_group(self.service.pid)
        if while_down is not None:
            await while_down()
        self.service = self.supervisor.start(self.service.spec)

    async def health(self) -> dict[str, object]:
        async with httpx.AsyncClient(timeout=5.0) as client:
            body: dict[str, object] = (await client.get(f"{self.control_url}/health")).json()
            return body

    async def position(self, account: str, symbol: str) -> int:
        """The position the hot path's risk gate holds (``/stats``), which exits are checked against."""
        async with httpx.AsyncClient(timeout=5.0) as client:
            stats = (await client.get(f"{self.control_url}/stats")).json()
        return int(stats["positions"].get(account, {}).get(symbol, 0))


@pytest.fixture(scope="session")
async def risk_profiles(ledger_pool: asyncpg.Pool) -> None:
    """Profiles for the venue account and a tight one, each a signed ledger change."""
    operator_key = generate_private_key()
    operator_id = f"ops-{uuid.uuid4().hex[:8]}"
    await register_key(ledger_pool, operator_id, public_key_bytes(operator_key), "operator", ["*"])
    for account, profile in ((VENUE_ACCOUNT, MAIN_PROFILE), (TIGHT_ACCOUNT, TIGHT_PROFILE)):
        await set_profile(ledger_pool, account, profile, operator_id=operator_id, operator_key=operator_key)


@pytest.fixture(scope="package")
async def hotpath(
    floor_settings: FloorSettings,
    supervisor: Supervisor,
    paper: PaperStack,
    risk_profiles: None,
    ledger_pool: asyncpg.Pool,
    command_producer: AIOKafkaProducer,
) -> AsyncIterator[HotPathProcess]:
    """The hot path as ``floor up`` starts it, for this package's tests."""
    async with running_hotpath(floor_settings, supervisor, paper, ledger_pool, command_producer) as process:
        yield process


@contextlib.asynccontextmanager
async def running_hotpath(
    floor_settings: FloorSettings,
    supervisor: Supervisor,
    paper: PaperStack,
    ledger_pool: asyncpg.Pool,
    command_producer: AIOKafkaProducer,
    sniper_agents: tuple[str, ...] = ("sniper",),
) -> AsyncIterator[HotPathProcess]:
    """The hot path as ``floor up`` starts it: its own process, ready when consuming. (Other
    packages make their own fixture of it: a fixture imported from here would live for the
    whole session and hold the broker client id the next one needs.)

    Afterwards its orders still working at the shared paper venue are cancelled and the process
    stopped, so suites that run later on the same venue find it as they expect."""
    settings = floor_settings.model_copy(update={"hotpath_health_port": free_port()})
    breaker_agent = await breaker_key(ledger_pool, settings)
    await ensure_control_key(settings, ledger_pool)
    await ensure_record_writers(settings, ledger_pool)
    service = supervisor.start(
        hotpath_spec(
            settings,
            symbols=SYMBOLS,
            group_id=f"hotpath-{uuid.uuid4().hex[:8]}",
            breaker_agent=breaker_agent,
            sniper_agents=sniper_agents,
            # Short flood windows: one test's refused commands must not leave the next test's
            # security events counted into a summary instead of recorded.
            env={"FLOOR_KAFKA_FLOOD_WINDOW_S": "1"},
        )
    )
    process = HotPathProcess(
        f"http://{settings.host}:{settings.hotpath_health_port}", settings, supervisor, service
    )
    try:
        yield process
    finally:
        service = process.service
        assert service is not None
        closer = new_agent()
        await register(ledger_pool, closer)
        cancel_all = closer.sign(
            Command(
                kind=CommandKind.CANCEL_ALL, command_id=f"cmd-{uuid.uuid4().hex}", agent_id=closer.agent_id,
                account=VENUE_ACCOUNT, nonce=uuid.uuid4().hex, issued_at=utc_now_ms(),
            )
        )  # fmt: skip
        await command_producer.send_and_wait(
            AGENT_COMMANDS, cancel_all.to_wire(), key=f"{VENUE_ACCOUNT}/".encode()
        )
        with contextlib.suppress(AssertionError):
            await eventually(lambda: _no_open_orders(paper), timeout=10.0)
        supervisor.running.remove(service)
        stop_process_group(service.pid)


async def breaker_key(pool: asyncpg.Pool, settings: FloorSettings) -> str:
    """A breaker service key of its own for one hot path (as ``floor up`` provisions
    ``floor-breaker``), written to the keys dir and registered; returns its agent id."""
    agent_id = f"floor-breaker-{uuid.uuid4().hex[:8]}"
    key = generate_private_key()
    settings.keys_dir.mkdir(parents=True, exist_ok=True)
    (settings.keys_dir / f"{agent_id}.key").write_bytes(private_key_to_pem(key))
    await register_key(pool, agent_id, public_key_bytes(key), ROLE_SERVICE, ["*"])
    return agent_id


async def ensure_control_key(settings: FloorSettings, pool: asyncpg.Pool) -> None:
    """The hot path's control key (it signs the stops of a revoked key's icebergs) in the key
    directory, registered, as ``floor up`` provisions it."""
    path = key_path(settings, FLOOR_CONTROL)
    if path.exists():
        return
    key = generate_private_key()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private_key(path, private_key_to_pem(key))
    try:
        await register_key(pool, FLOOR_CONTROL, public_key_bytes(key), "service", ["*"])
    except KeyConflict:
        # Another suite provisioned one into this database under its own directory.
        await revoke_agent(pool, FLOOR_CONTROL)
        await register_key(pool, FLOOR_CONTROL, public_key_bytes(key), "service", ["*"])


async def _no_open_orders(paper: PaperStack) -> bool:
    return bool((await paper.acontrol("GET", "/status"))["open_orders"] == 0)


@pytest.fixture(scope="session")
async def command_producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    producer = await start_producer(kafka_bootstrap, "agent-under-test")
    yield producer
    await producer.stop()
