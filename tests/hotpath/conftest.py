"""A real hot path process against the session's Postgres, Kafka and paper venue."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import os
import signal
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from brokers.ibkr import IbkrBroker, IbkrConfig
from bus.command_keys import account_key
from bus.kafka import start_producer
from bus.topics import AGENT_COMMANDS
from config.ports import free_port
from config.settings import FloorSettings
from floor.supervisor import RunningService, Supervisor, stop_process_group
from hotpath.iceberg_commands import FLOOR_CONTROL
from hotpath.service import hotpath_spec
from ledger.keys import ROLE_SERVICE, register_key
from ledger.risk_profiles import set_profile
from tests.factories import Agent, cancel_all_command, risk_profile
from tests.fixtures.hotpath import ensure_record_writers, ensure_service_key, fresh_agent, package_api_url
from tests.fixtures.paper import PaperStack
from tests.fixtures.schwab import SchwabApi
from tests.helpers import eventually
from tests.hotpath.live_floor import LiveFloor
from trading.signing import generate_private_key, private_key_to_pem, public_key_bytes

VENUE_ACCOUNT = "DU1234567"
"""The paper venue's account (the only one with a net liquidation)."""
SCHWAB_ACCOUNT = "SCHW0001"
"""The paper Schwab API's account, in front of the same venue account: the package's hot path
routes its orders to Schwab (``FLOOR_BROKER_ACCOUNTS``), the venue account's to IB."""
BROKER_ACCOUNTS = {"ibkr": VENUE_ACCOUNT, "schwab": SCHWAB_ACCOUNT}
SYMBOLS = ("AAPL", "MSFT")
"""Streamed by the hot path; a symbol outside these has no fresh price."""

MAIN_PROFILE = risk_profile(
    max_dollar_risk=Decimal("2000"),
    max_position=1000,
    max_gross_exposure=Decimal("500000"),
    staleness_ms=60_000,
)
TIGHT_ACCOUNT = "DU-TIGHT"
TIGHT_PROFILE = dataclasses.replace(
    MAIN_PROFILE, max_dollar_risk=Decimal("100"), max_position=15, max_gross_exposure=Decimal("1000")
)


@dataclass
class HotPathProcess:
    control_url: str
    settings: FloorSettings
    supervisor: Supervisor | None = None
    service: RunningService | None = None

    async def restart(
        self, while_down: Callable[[], Awaitable[object]] | None = None, *, kill: bool = False
    ) -> None:
        """Stop the process (``kill``: ``kill -9`` its group, no drain, no goodbye to the broker),
        run ``while_down``, and start it again as it was (same ports, consumer group, keys), as
        ``floor up``'s supervisor does after a crash; returns once it consumes."""
        assert self.supervisor is not None and self.service is not None
        service = self.service
        if kill:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(service.pid, signal.SIGKILL)
        await asyncio.to_thread(stop_process_group, service.pid)
        if while_down is not None:
            await while_down()
        # The supervisor's own restart: it waits for the ports the dead process's connections
        # still hold, then starts the same spec into the same RunningService.
        await asyncio.to_thread(self.supervisor.respawn, service)
        await asyncio.to_thread(self.supervisor.await_ready, service)

    async def health(self) -> dict[str, object]:
        async with httpx.AsyncClient(timeout=5.0) as client:
            body: dict[str, object] = (await client.get(f"{self.control_url}/health")).json()
            return body

    async def profile(self, account: str) -> dict[str, object] | None:
        """The risk profile the hot path enforces for ``account`` now (``/stats``)."""
        async with httpx.AsyncClient(timeout=5.0) as client:
            stats = (await client.get(f"{self.control_url}/stats")).json()
        profile: dict[str, object] | None = stats["profiles"].get(account)
        return profile

    async def position(self, account: str, symbol: str) -> int:
        """The position the hot path's risk gate holds (``/stats``), which exits are checked against."""
        async with httpx.AsyncClient(timeout=5.0) as client:
            stats = (await client.get(f"{self.control_url}/stats")).json()
        return int(stats["positions"].get(account, {}).get(symbol, 0))


@pytest.fixture(scope="session")
async def risk_profiles(ledger_pool: asyncpg.Pool) -> None:
    """Profiles for the venue account and a tight one, each a signed ledger change."""
    operator = await fresh_agent(ledger_pool, f"ops-{uuid.uuid4().hex[:8]}", "operator")
    profiles = ((VENUE_ACCOUNT, MAIN_PROFILE), (SCHWAB_ACCOUNT, MAIN_PROFILE), (TIGHT_ACCOUNT, TIGHT_PROFILE))
    for account, profile in profiles:
        await set_profile(
            ledger_pool, account, profile, operator_id=operator.agent_id, operator_key=operator.private_key
        )


@pytest.fixture(scope="package")
async def hotpath(
    floor_settings: FloorSettings,
    supervisor: Supervisor,
    paper: PaperStack,
    risk_profiles: None,
    ledger_pool: asyncpg.Pool,
    command_producer: AIOKafkaProducer,
    schwab_api: SchwabApi,
) -> AsyncIterator[HotPathProcess]:
    """The hot path as ``floor up`` starts it, for this package's tests: IB's paper gateways for
    the venue's account, the paper Schwab API for Schwab's."""
    async with running_hotpath(
        floor_settings, supervisor, paper, ledger_pool, command_producer, schwab=schwab_api
    ) as process:
        yield process


@contextlib.asynccontextmanager
async def running_hotpath(
    floor_settings: FloorSettings,
    supervisor: Supervisor,
    paper: PaperStack,
    ledger_pool: asyncpg.Pool,
    command_producer: AIOKafkaProducer,
    sniper_agents: tuple[str, ...] = ("sniper",),
    breaker_agent: str | None = None,
    symbols: tuple[str, ...] = SYMBOLS,
    schwab: SchwabApi | None = None,
) -> AsyncIterator[HotPathProcess]:
    """The hot path as ``floor up`` starts it: its own process, ready when consuming. (Other
    packages make their own fixture of it: a fixture imported from here would live for the
    whole session and hold the broker client id the next one needs.) Its breaker signs with a
    key of its own unless ``breaker_agent`` names the one to use (an API process believes the
    automatic trips of ``floor-breaker`` only, as ``floor up`` runs them).

    With ``schwab`` (a paper Schwab API) it also serves that API's account through the Schwab
    adapter, on a login (token file) of its own.

    Afterwards its orders still working at the shared paper venue are cancelled and the process
    stopped, so suites that run later on the same venue find it as they expect."""
    settings = floor_settings.model_copy(update={"hotpath_health_port": free_port()})
    if breaker_agent is None:
        breaker_agent = await breaker_key(ledger_pool, settings)
    else:
        await ensure_service_key(settings, ledger_pool, breaker_agent)
    # The hot path's control key signs the stops of a revoked key's icebergs.
    await ensure_service_key(settings, ledger_pool, FLOOR_CONTROL)
    await ensure_record_writers(settings, ledger_pool)
    service = supervisor.start(
        hotpath_spec(
            settings,
            symbols=symbols,
            group_id=f"hotpath-{uuid.uuid4().hex[:8]}",
            breaker_agent=breaker_agent,
            sniper_agents=sniper_agents,
            # Short flood windows: one test's refused commands must not leave the next test's
            # security events counted into a summary instead of recorded.
            env={"FLOOR_KAFKA_FLOOD_WINDOW_S": "1", **(schwab_env(schwab, settings) if schwab else {})},
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
        closer = await fresh_agent(ledger_pool)
        for account in (VENUE_ACCOUNT, *([schwab.account_number] if schwab else [])):
            cancel_all = closer.sign(cancel_all_command(closer.agent_id, account=account))
            await command_producer.send_and_wait(
                AGENT_COMMANDS, cancel_all.to_wire(), key=account_key(account)
            )
        with contextlib.suppress(AssertionError):
            await eventually(lambda: _no_open_orders(paper), timeout=10.0)
        supervisor.running.remove(service)
        stop_process_group(service.pid)


def schwab_env(api: SchwabApi, settings: FloorSettings) -> dict[str, str | None]:
    """A hot path's settings for serving ``api``'s account through the Schwab adapter beside the
    venue's account through IB."""
    return {
        "FLOOR_BROKER_ACCOUNTS": f"{VENUE_ACCOUNT},{api.account_number}=schwab",
        "FLOOR_SCHWAB_BASE_URL": api.base_url,
        "FLOOR_SCHWAB_TOKEN_PATH": str(api.new_token_file(settings.var_dir / "schwab")),
        "FLOOR_SCHWAB_APP_KEY": api.app_key,
        "FLOOR_SCHWAB_APP_SECRET": api.app_secret,
        "FLOOR_SCHWAB_POLL_S": "1",
    }


async def breaker_key(pool: asyncpg.Pool, settings: FloorSettings) -> str:
    """A breaker service key of its own for one hot path (as ``floor up`` provisions
    ``floor-breaker``), written to the keys dir and registered; returns its agent id."""
    agent_id = f"floor-breaker-{uuid.uuid4().hex[:8]}"
    key = generate_private_key()
    settings.keys_dir.mkdir(parents=True, exist_ok=True)
    (settings.keys_dir / f"{agent_id}.key").write_bytes(private_key_to_pem(key))
    await register_key(pool, agent_id, public_key_bytes(key), ROLE_SERVICE, ["*"])
    return agent_id


async def _no_open_orders(paper: PaperStack) -> bool:
    return await paper.open_orders() == 0


@pytest.fixture
async def live(
    hotpath: HotPathProcess,
    paper: PaperStack,
    agent: Agent,
    command_producer: AIOKafkaProducer,
    kafka_bootstrap: str,
    ledger_pool: asyncpg.Pool,
) -> LiveFloor:
    """The package's hot path end to end, with a fresh agent trading the venue's account."""
    return LiveFloor(hotpath, paper, agent, command_producer, kafka_bootstrap, ledger_pool, VENUE_ACCOUNT)


@pytest.fixture(params=["ibkr", "schwab"])
async def on_broker(request: pytest.FixtureRequest, live: LiveFloor) -> AsyncIterator[LiveFloor]:
    """The package's hot path end to end, trading an account of each broker in turn: the venue's
    through IB, the paper Schwab API's through the Schwab adapter (same venue, same book).

    Afterwards the Schwab account's working orders (the floor's protective stops on what its
    entries bought, say) are cancelled: the package's other tests trade the venue's account
    and count the venue's working orders."""
    yield dataclasses.replace(live, account=BROKER_ACCOUNTS[request.param], broker=request.param)
    if request.param == "schwab":
        closer = live.agent.sign(cancel_all_command(live.agent.agent_id, account=SCHWAB_ACCOUNT))
        await live.send(closer)
        await eventually(lambda: _none_working(live.hotpath, SCHWAB_ACCOUNT), timeout=10.0)


async def _none_working(hotpath: HotPathProcess, account: str) -> bool:
    async with httpx.AsyncClient(timeout=5.0) as client:
        stats = (await client.get(f"{hotpath.control_url}/stats")).json()
    return not stats["open_orders"].get(account)


@pytest.fixture(scope="session")
async def command_producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    producer = await start_producer(kafka_bootstrap, "agent-under-test")
    yield producer
    await producer.stop()


_venue_client_ids = itertools.count(2100)  # apart from every other suite's ids


@pytest.fixture(scope="module")
async def venue(floor_settings: FloorSettings) -> AsyncIterator[IbkrBroker]:
    """A client of the paper gateway of the module's own, to read the venue's working orders
    (every client's) by orderRef."""
    broker = IbkrBroker(IbkrConfig.from_settings(floor_settings, client_id=next(_venue_client_ids)))
    await broker.connect()
    yield broker
    await broker.close()


async def working_at_venue(venue: IbkrBroker, *command_ids: str) -> set[str]:
    """Which of ``command_ids`` the venue lists as working."""
    return {o.order_ref for o in await venue.open_orders()} & set(command_ids)


async def working_are(venue: IbkrBroker, command_ids: tuple[str, ...], expected: set[str]) -> bool:
    return await working_at_venue(venue, *command_ids) == expected


async def the_dead_hotpaths_client(settings: FloorSettings) -> IbkrBroker:
    """A broker client with the hot path's own client id, connected while that process is down
    (to play what it wrote before it died). The gateway frees the id once it has read the dead
    socket's end and refuses it until then (326), which on a busy machine can lag the kill."""

    async def attempt() -> IbkrBroker | None:
        broker = IbkrBroker(IbkrConfig.from_settings(settings))
        try:
            await broker.connect()
        except ConnectionError:
            await broker.close()
            return None
        return broker

    return await eventually(attempt, timeout=15.0, interval=0.2)


api_url = pytest.fixture(scope="package", name="api_url")(package_api_url)
"""The floor's API process for this package's tests (:func:`tests.fixtures.hotpath.package_api_url`)."""
