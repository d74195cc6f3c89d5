"""Paper stacks for the broker adapter's tests, built on ``tests.fixtures.paper``.

Trading and market-data tests share the session ``paper`` stack (each uses its own client id).
Tests that kill gateways get a stack of their own (:func:`own_stack`), on fresh ports.
"""

from __future__ import annotations

import dataclasses
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from config.ports import free_port
from config.settings import FloorSettings
from floor import services
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


def restart_gateway(stack: PaperStack, name: str) -> None:
    stack.start_gateway(name, gateway_ports(stack)[name])


def _fresh_settings(base: FloorSettings) -> FloorSettings:
    return base.model_copy(
        update={
            "venue_port": free_port(),
            "venue_control_port": free_port(),
            "ib_port": free_port(),
            "ib_standby_port": free_port(),
        }
    )


@pytest.fixture()
def own_stack(floor_settings: FloorSettings, request: pytest.FixtureRequest) -> Iterator[PaperStack]:
    """A venue and both gateways for one test that kills or freezes things."""
    name = request.node.name[:40]
    supervisor = Supervisor(Path(floor_settings.log_dir) / "brokers" / name)
    try:
        yield start_paper_stack(supervisor, _fresh_settings(floor_settings), prefix=name)
    finally:
        supervisor.stop_all()


@pytest.fixture()
def trusting_127_0_0_2(floor_settings: FloorSettings) -> Iterator[PaperStack]:
    """Gateways whose only trusted client address is 127.0.0.2 (IB Gateway's Trusted IPs)."""
    settings = _fresh_settings(floor_settings)
    supervisor = Supervisor(Path(floor_settings.log_dir) / "brokers" / "trusted")
    stack = PaperStack(supervisor, settings, "trusted")
    try:
        stack.start_venue()
        for name, port in gateway_ports(stack).items():
            spec = services.gateway_spec(settings, name, port, prefix="trusted")
            spec = dataclasses.replace(spec, argv=[*spec.argv, "--trusted", "127.0.0.2"])
            stack.services[name] = supervisor.start(spec)
        yield stack
    finally:
        supervisor.stop_all()
