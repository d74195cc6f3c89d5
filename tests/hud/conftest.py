"""The HUD's browser tests: the whole floor (the session's Postgres; a Kafka broker, a paper venue
and a hot path of the HUD suites' own; an API process the browser opens at ``http://localhost:<port>``)
and one headless Chromium, started once for all of tests/hud (each costs seconds to start); per
test, a fresh browser context with a CDP virtual authenticator and a fresh trader enrolled
through the enrolment page and signed in on the HUD (the fixture ``hud``), and ``venue`` to drive
the paper market. Each test starts with the breaker ACTIVE and leaves the prices it moved where
they were.

A module changes its API process's settings by overriding ``hud_api_env`` (a short
``FLOOR_ARMING_TTL_S`` for expiry tests, say): modules with the same settings share a process.
A failing test leaves a screenshot of the page in ``tests/artifacts/``, and a test whose page
logged an error or threw fails."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from playwright.async_api import Browser, async_playwright

from bus.kafka import start_producer
from config.ports import free_port
from config.settings import FloorSettings
from floor.supervisor import Supervisor
from hotpath.circuit_breaker_log import BREAKER_AGENT
from tests.api.http import api_process
from tests.factories import Agent
from tests.fixtures.kafka import PrivateKafka, private_kafka
from tests.fixtures.paper import PaperStack, start_paper_stack
from tests.hotpath.conftest import (  # noqa: F401 - fixtures used by name
    HotPathProcess,
    risk_profiles,
    running_hotpath,
)
from tests.hotpath.test_circuit_breaker_flow import rearm
from tests.hud.browser import PageErrors, add_authenticator, artifact_path, enrol, launch, new_page, sign_in
from tests.hud.hud import Hud
from tests.hud.stack import HUD_SYMBOLS, Venue, new_hud_trader

FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, object, object]:
    """Tell the ``hud`` fixture's teardown that the test failed (it takes a screenshot)."""
    report = yield
    if call.when == "call" and getattr(report, "failed", False):
        item.stash[FAILED] = True
    return report


@pytest.fixture(scope="module")
def hud_api_env() -> dict[str, str]:
    """Settings of the module's API process over the floor's defaults; override in a module."""
    return {}


class ApiProcesses:
    """The HUD suites' API processes, one per distinct set of settings, started when a module
    first asks for it and shared by every module that asks for the same."""

    def __init__(self, settings: FloorSettings, supervisor: Supervisor) -> None:
        self.settings = settings
        self.supervisor = supervisor
        self.origins: dict[tuple[tuple[str, str], ...], str] = {}
        self.stack = contextlib.ExitStack()

    def origin(self, overrides: dict[str, str]) -> str:
        """The address (and WebAuthn origin: ``localhost``, never an IP address, which WebAuthn
        refuses) of an API process with these settings over the HUD's defaults."""
        env = {"FLOOR_HOTPATH_SYMBOLS": ",".join(HUD_SYMBOLS), "FLOOR_API_STATE_POLL_MS": "50", **overrides}
        key = tuple(sorted(env.items()))
        if key not in self.origins:
            name = f"api-hud-{len(self.origins) + 1}"
            url, _ = self.stack.enter_context(api_process(self.settings, self.supervisor, name, env))
            self.origins[key] = url.replace(self.settings.host, "localhost")
        return self.origins[key]


@pytest.fixture(scope="package")
async def hud_kafka(supervisor: Supervisor, floor_settings: FloorSettings) -> AsyncIterator[PrivateKafka]:
    """The HUD suites' own Kafka broker. The session's embedded Tansu holds every record the
    suites before them published, its fetches slow with each, and the HUD checks a book that
    must change within seconds: on the shared broker the ladder went stale after the hot path
    suites had run (their hot paths publish every book change). On a broker of its own the
    other suites' books do not reach the HUD's API. (The ladder's later staleness in whole runs
    was the hot path's depth rate against Tansu's fetch cost: ``FLOOR_DEPTH_INTERVAL_MS``.)"""
    async with private_kafka(supervisor, floor_settings) as kafka:
        yield kafka


@pytest.fixture(scope="package")
def hud_settings(hud_kafka: PrivateKafka) -> FloorSettings:
    """The floor's settings with the HUD's broker: its hot path, API processes and commands."""
    return hud_kafka.settings


@pytest.fixture(scope="package")
async def hud_command_producer(hud_settings: FloorSettings) -> AsyncIterator[AIOKafkaProducer]:
    producer = await start_producer(hud_settings.kafka, "hud-under-test")
    yield producer
    await producer.stop()


@pytest.fixture(scope="package")
def hud_apis(
    hud_settings: FloorSettings, supervisor: Supervisor, postgres_url: str
) -> Iterator[ApiProcesses]:
    processes = ApiProcesses(hud_settings, supervisor)
    with processes.stack:
        yield processes


@pytest.fixture(scope="module")
def hud_origin(hud_apis: ApiProcesses, hud_api_env: dict[str, str]) -> str:
    """Where the module's browser opens the HUD: an API process with the module's settings."""
    return hud_apis.origin(hud_api_env)


@pytest.fixture(scope="package")
def hud_paper(hud_settings: FloorSettings) -> Iterator[PaperStack]:
    """A paper venue and its gateways for the HUD suites alone: a test may crash, move, pause
    and fill that market without another suite seeing it.

    Its order flow is zero intelligence (``zi``): the desk's checks catch the ladder's mid and
    the floor's mark between two changes of the book, which needs a book that changes every few
    reads, as zi's two-tick spread does; the agent model's touch sits still at one tick most of
    the time, and the checks would wait out their timeouts for a move."""
    settings = hud_settings.model_copy(
        update={
            "paper_flow": "zi",
            "venue_port": free_port(),
            "venue_control_port": free_port(),
            "ib_port": free_port(),
            "ib_standby_port": free_port(),
        }
    )
    supervisor = Supervisor(Path(hud_settings.log_dir) / "hud")
    try:
        yield start_paper_stack(supervisor, settings, prefix="hud")
    finally:
        supervisor.stop_all()


@pytest.fixture(scope="package")
async def hud_hotpath(
    supervisor: Supervisor,
    hud_paper: PaperStack,
    risk_profiles: None,  # noqa: F811
    ledger_pool: asyncpg.Pool,
    hud_command_producer: AIOKafkaProducer,
) -> AsyncIterator[HotPathProcess]:
    """The HUD suites' hot path, trading their venue on their broker. Its breaker signs as the
    floor's ``floor-breaker``, whose automatic trips the API believes (and shows what they did)."""
    async with running_hotpath(
        hud_paper.settings,
        supervisor,
        hud_paper,
        ledger_pool,
        hud_command_producer,
        breaker_agent=BREAKER_AGENT,
    ) as process:
        yield process


@pytest.fixture
async def hud_floor(
    hud_hotpath: HotPathProcess,
    hud_command_producer: AIOKafkaProducer,
    operator: Agent,
) -> AsyncIterator[HotPathProcess]:
    """The hot path, ACTIVE before and after each test (a test that trips the breaker does not
    halt the next one: the halt is durable and shared by every hot path)."""
    await rearm(hud_hotpath, hud_command_producer, operator)
    yield hud_hotpath
    await rearm(hud_hotpath, hud_command_producer, operator)


@pytest.fixture
async def venue(hud_paper: PaperStack) -> AsyncIterator[Venue]:
    """The HUD's paper venue; every price a test moved is moved back afterwards."""
    handle = Venue(hud_paper)
    yield handle
    await handle.restore()


@pytest.fixture(scope="package")
async def hud_browser() -> AsyncIterator[Browser]:
    """One headless Chromium for the HUD suites; each test opens its own context in it."""
    async with async_playwright() as playwright:
        browser = await launch(playwright)
        yield browser
        await browser.close()


@pytest.fixture
async def hud(
    request: pytest.FixtureRequest,
    hud_browser: Browser,
    hud_origin: str,
    hud_floor: HotPathProcess,
    floor_settings: FloorSettings,
    cli_pool: asyncpg.Pool,
    ledger_pool: asyncpg.Pool,
) -> AsyncIterator[Hud]:
    """A fresh trader on the venue's account, its passkey registered by the page's virtual
    authenticator through the enrolment link, signed in on the HUD (not armed)."""
    context, page = await new_page(hud_browser)
    errors = PageErrors()
    errors.attach(page)
    try:
        try:
            authenticator = await add_authenticator(context, page)
            trader = await new_hud_trader(cli_pool, ledger_pool, floor_settings)
            state, text = await enrol(page, hud_origin, trader.enrolment_token)
            assert state == "done", text
            await sign_in(page, hud_origin)
        except Exception:
            await page.screenshot(path=str(artifact_path(request.node.name, "setup-failure")), full_page=True)
            raise
        hud = Hud(page, context, authenticator, hud_origin, trader, request.node.name, errors)
        yield hud
        if request.node.stash.get(FAILED, False):
            await hud.shot("failure")
    finally:
        await context.close()
    assert not errors.unexpected(), f"the page logged errors: {errors.unexpected()}"
