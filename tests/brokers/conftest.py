"""Paper stacks for the broker adapter's tests, built on ``tests.fixtures.paper``.

Read-only and trading tests share the session ``paper`` stack (each uses its own client id).
Tests that kill gateways get a stack of their own from :func:`own_stack`.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from floor.settings import FloorSettings
from floor.supervisor import Supervisor
from tests.fixtures.paper import HOST, PaperStack, start_paper_stack

__all__ = ["HOST", "PaperStack", "kill_gateway", "restart_gateway", "gateway_ports"]


def gateway_ports(stack: PaperStack) -> dict[str, int]:
    return {"primary": stack.gateway_port, "standby": stack.standby_port}


def kill_gateway(stack: PaperStack, name: str) -> None:
    """SIGKILL, like a crashed IB Gateway: no goodbye on any socket."""
    service = stack.services.pop(name)
    os.killpg(service.pid, signal.SIGKILL)
    service.process.wait()
    stack.supervisor.running.remove(service)


def restart_gateway(stack: PaperStack, name: str, extra: tuple[str, ...] = ()) -> None:
    stack.start_gateway(name, gateway_ports(stack)[name], extra)


@pytest.fixture()
def own_stack(floor_settings: FloorSettings, request: pytest.FixtureRequest) -> Iterator[PaperStack]:
    """A venue and both gateways for one test that kills or freezes things."""
    name = request.node.name[:40]
    supervisor = Supervisor(Path(floor_settings.log_dir) / "brokers" / name)
    try:
        yield start_paper_stack(supervisor, prefix=name)
    finally:
        supervisor.stop_all()


@pytest.fixture()
def trusting_127_0_0_2(floor_settings: FloorSettings) -> Iterator[PaperStack]:
    """Gateways whose only trusted client address is 127.0.0.2."""
    supervisor = Supervisor(Path(floor_settings.log_dir) / "brokers" / "trusted")
    try:
        yield start_paper_stack(supervisor, prefix="trusted", gateway_args=("--trusted", "127.0.0.2"))
    finally:
        supervisor.stop_all()
