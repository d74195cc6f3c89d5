"""A real paper venue with primary and standby TWS gateways, for the broker adapter's tests.

Each gateway can be killed with SIGKILL and started again on the same port, so failover and
outage scenarios run against real processes.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from floor.supervisor import RunningService, ServiceSpec, Supervisor, free_port, tcp_probe

HOST = "127.0.0.1"


@dataclass
class PaperStack:
    supervisor: Supervisor
    venue_port: int
    control_port: int
    ports: dict[str, int]
    trusted: str = HOST
    no_pacing: bool = False
    gateways: dict[str, RunningService] = field(default_factory=dict)

    def start_venue(self) -> None:
        self.supervisor.start(
            ServiceSpec(
                name="venue",
                argv=[sys.executable, "-m", "paper.venue", "--port", str(self.venue_port),
                      "--control-port", str(self.control_port), "--seed", "7"],
                address=f"{HOST}:{self.venue_port}",
                probe=tcp_probe(HOST, self.venue_port),
            )
        )  # fmt: skip

    def start_gateway(self, name: str) -> None:
        argv = [sys.executable, "-m", "paper.gateway", "--port", str(self.ports[name]),
                "--venue", f"{HOST}:{self.venue_port}", "--name", name,
                "--trusted", self.trusted]  # fmt: skip
        if self.no_pacing:
            argv.append("--no-pacing")
        self.gateways[name] = self.supervisor.start(
            ServiceSpec(name=f"gateway-{name}", argv=argv, address=f"{HOST}:{self.ports[name]}",
                        probe=tcp_probe(HOST, self.ports[name]))
        )  # fmt: skip

    def kill_gateway(self, name: str) -> None:
        """SIGKILL, like a crashed IB Gateway: no goodbye on any socket."""
        service = self.gateways.pop(name)
        os.killpg(service.pid, signal.SIGKILL)
        service.process.wait()
        self.supervisor.running.remove(service)


def make_stack(tmp: Path, trusted: str = HOST, no_pacing: bool = False) -> PaperStack:
    """Start a venue and both gateways on free ports (stop with ``stack.supervisor.stop_all()``)."""
    ports = {"primary": free_port(), "standby": free_port()}
    stack = PaperStack(Supervisor(tmp / "log"), free_port(), free_port(), ports, trusted, no_pacing)
    try:
        stack.start_venue()
        stack.start_gateway("primary")
        stack.start_gateway("standby")
    except BaseException:
        stack.supervisor.stop_all()
        raise
    return stack


@pytest.fixture(scope="module")
def paper() -> Iterator[PaperStack]:
    """Venue + gateways shared by a module's non-destructive tests."""
    with tempfile.TemporaryDirectory(prefix="brokers-") as tmp:
        stack = make_stack(Path(tmp))
        try:
            yield stack
        finally:
            stack.supervisor.stop_all()


@pytest.fixture()
def fresh_paper() -> Iterator[PaperStack]:
    """Venue + gateways of one test's own, for tests that kill gateways."""
    with tempfile.TemporaryDirectory(prefix="brokers-") as tmp:
        stack = make_stack(Path(tmp))
        try:
            yield stack
        finally:
            stack.supervisor.stop_all()
