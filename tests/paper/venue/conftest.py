"""A real venue process for the client/server and control API suites, on free ports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from config.ports import free_port
from config.settings import FloorSettings
from floor.paper_cmd import control_request, control_token, venue_spec
from floor.supervisor import Supervisor
from paper.venue.client import VenueClient


@dataclass(frozen=True)
class VenueProcess:
    host: str
    port: int
    control_port: int
    token: str
    var_dir: Path

    @property
    def control_url(self) -> str:
        return f"http://{self.host}:{self.control_port}"

    @property
    def cli_env(self) -> dict[str, str]:
        """What ``floor paper --url ...`` needs to find this venue's control token."""
        return {"FLOOR_VAR_DIR": str(self.var_dir)}

    def control(self, method: str, path: str, body: dict[str, object] | None = None) -> dict[str, object]:
        result: dict[str, object] = control_request(self.control_url, method, path, body, token=self.token)
        return result


@pytest.fixture(scope="session")
def venue_process(floor_settings: FloorSettings) -> Iterator[VenueProcess]:
    settings = floor_settings.model_copy(
        update={"venue_port": free_port(), "venue_control_port": free_port()}
    )
    supervisor = Supervisor(Path(floor_settings.log_dir) / "venue-tests")
    counters_file = Path(floor_settings.var_dir) / "venue-tests" / "counters.json"
    supervisor.start(venue_spec(settings, seed=11, name="venue-under-test", counters_file=counters_file))
    try:
        yield VenueProcess(
            settings.host,
            settings.venue_port,
            settings.venue_control_port,
            control_token(settings),
            settings.var_dir,
        )
    finally:
        supervisor.stop_all()


@pytest.fixture
async def venue(venue_process: VenueProcess) -> AsyncIterator[VenueClient]:
    """A fresh venue (reset to seed 11, clock running) and a gateway connection to it."""
    venue_process.control("POST", "/reset", {"seed": 11, "paused": False})
    venue_process.control("POST", "/rate", {"rate": 20})
    client = await VenueClient.connect(venue_process.host, venue_process.port, "gw-test")
    try:
        yield client
    finally:
        await client.close()
