"""The worker and the bridge, started from the specs ``floor up`` starts them from, each serve
``/metrics`` on the port their settings name: Prometheus text that parses, with the worker's
Temporal SDK metrics and the bridge's record counts in it."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid

import asyncpg
import pytest

from config.ports import free_port
from config.processes import child_env
from config.settings import FloorSettings
from floor.services import bridge_spec, worker_spec
from floor.supervisor import Supervisor, stop_process_group
from ledger.keys import register_key
from tests.fixtures.paper import PaperStack
from tests.helpers import eventually
from tests.observability.scrape import families, scrape
from trading.signing import generate_private_key, private_key_to_pem, public_key_bytes

pytestmark = pytest.mark.long  # two processes of their own: several seconds


async def test_the_worker_and_the_bridge_serve_prometheus_text(
    floor_settings: FloorSettings,
    supervisor: Supervisor,
    paper: PaperStack,
    temporal_address: str,
    kafka_bootstrap: str,
    ledger_pool: asyncpg.Pool,
) -> None:
    settings = floor_settings.model_copy(
        update={"worker_health_port": free_port(), "bridge_health_port": free_port()}
    )
    tag = uuid.uuid4().hex[:8]
    agents = (f"sniper-{tag}", f"lifecycle-{tag}")
    settings.keys_dir.mkdir(parents=True, exist_ok=True)
    for agent in agents:
        key = generate_private_key()
        (settings.keys_dir / f"{agent}.key").write_bytes(private_key_to_pem(key))
        await register_key(ledger_pool, agent, public_key_bytes(key), "service", ["*"])
    queue = f"metrics-{tag}"
    worker = worker_spec(settings)
    worker = dataclasses.replace(
        worker,
        argv=[*worker.argv, "--agent", agents[0], "--agent", agents[1], "--sniper-agent", agents[0],
              "--task-queue", queue, "--ib-client-id", "71"],
    )  # fmt: skip
    bridge = bridge_spec(settings)
    bridge = dataclasses.replace(
        bridge, argv=[*bridge.argv, "--group-id", f"bridge-{tag}", "--task-queue", queue]
    )
    assert worker.env == {**child_env(settings, "worker")}  # the ports reach the processes
    started = []
    try:
        for spec in (worker, bridge):
            started.append(await asyncio.to_thread(supervisor.start, spec))
        worker_url = f"http://{settings.host}:{settings.worker_health_port}/metrics"

        async def worker_reports_temporal() -> bool:
            return any(name.startswith("temporal_") for name in families(await scrape(worker_url)))

        await eventually(worker_reports_temporal, timeout=20.0, interval=0.5)  # drained each second
        found = families(await scrape(f"http://{settings.host}:{settings.bridge_health_port}/metrics"))
        assert found["floor_bridge_records"].type == "counter"
    finally:
        for service in reversed(started):
            supervisor.running.remove(service)
            with contextlib.suppress(Exception):
                await asyncio.to_thread(stop_process_group, service.pid)
