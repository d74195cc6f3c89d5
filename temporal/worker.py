"""The Temporal worker: runs ``workflows/`` and ``activities/`` on one task queue.

``python -m temporal.worker`` connects to Temporal, registers the floor's search attributes,
loads the signing keys of the agents it acts for (``<agent_id>.key`` files in ``--keys-dir``,
unencrypted PKCS#8 as ``floor keys new`` and ``floor up`` write them, e.g. ``sniper.key`` and
``floor-lifecycle.key``), starts the Kafka producer, the ledger pool and a market-data-only
broker connection (ib_async's read-only mode; it cannot place or cancel: the Sniper's quotes
only) and polls until interrupted. It does not reconcile: the hot path, which owns the broker
connection, does, and the BrokerSession workflows record its reports.

Its client's tracing interceptor (:func:`temporal.client.connect`) makes the workflows' and
activities' spans, in the trace of whoever started or signalled the workflow (the bridge, for an
order's records); they go to the span store (and to ``OTEL_EXPORTER_OTLP_ENDPOINT`` when set).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.worker import Worker

from activities.commands import CommandActivities, Producer
from activities.control import ControlActivities
from activities.iceberg_parent import IcebergLimits, IcebergParentActivities
from activities.lifecycle_order import LifecycleOrderActivities
from activities.market import MarketActivities, QuoteSource
from activities.quotes import StreamingQuotes
from activities.record_writers import RecordWriterActivities
from bus.kafka import start_producer
from config.settings import FloorSettings
from ledger.db import Db
from ledger.span_store import SpanStore
from observability.logs import setup_logs
from observability.prometheus import MetricsServer
from observability.telemetry import install_global, setup
from observability.temporal_metrics import TemporalMetrics
from observability.tracing import flush_tracing, setup_tracing
from temporal.client import connect
from temporal.config import TASK_QUEUE
from temporal.search_attributes import ensure_search_attributes
from trading.signing import private_key_from_pem
from workflows.broker_session import BrokerSession
from workflows.iceberg import Iceberg
from workflows.order_lifecycle import OrderLifecycle

log = logging.getLogger(__name__)

WORKFLOWS = [OrderLifecycle, Iceberg, BrokerSession]
QUOTES_CLIENT_ID = 9
"""The worker's market-data connection's API client id: apart from the hot path's (1), and not
the master client (0), which ib_async binds the account's manual orders to at connect."""


class KeysMissing(RuntimeError):
    pass


WORKFLOW_AGENTS = ("sniper", "floor-lifecycle")
"""The agents whose commands workflows issue: iceberg slices, and expiry cancels. No other key
in the directory (the operator's, say) is read by the worker."""


def load_keys(keys_dir: Path, agents: tuple[str, ...] = WORKFLOW_AGENTS) -> dict[str, Ed25519PrivateKey]:
    """``<agent_id>.key`` for each agent; fails at start-up, not at the first slice."""
    missing = [a for a in agents if not (keys_dir / f"{a}.key").is_file()]
    if missing:
        raise KeysMissing(
            f"no signing key for {', '.join(missing)} in {keys_dir} (`floor up` provisions them)"
        )
    return {a: private_key_from_pem((keys_dir / f"{a}.key").read_bytes()) for a in agents}


@dataclass(frozen=True)
class Dependencies:
    producer: Producer
    keys: Mapping[str, Ed25519PrivateKey]
    quotes: QuoteSource
    db: Db
    slicer_agent: str = "sniper"
    """The agent whose key signs iceberg slices: the only one an Iceberg may name."""
    iceberg_limits: IcebergLimits = IcebergLimits()
    """How far an Iceberg's input may speed up or jitter its slices."""
    canceller_agent: str = "floor-lifecycle"
    """The agent whose key signs an order's expiry cancel (never taken from a workflow's input)."""


def activities_for(deps: Dependencies) -> list[Callable[..., Any]]:
    commands = CommandActivities(deps.producer, deps.keys)
    market = MarketActivities(deps.quotes)
    control = ControlActivities(deps.db)
    parents = IcebergParentActivities(deps.db, deps.slicer_agent, deps.iceberg_limits)
    return [
        commands.publish_order,
        commands.publish_cancel,
        market.get_quote,
        control.read_control,
        parents.check_iceberg_parent,
        RecordWriterActivities(deps.db).record_writers,
        LifecycleOrderActivities(deps.db, deps.canceller_agent).lifecycle_order,
    ]


def build_worker(client: Client, deps: Dependencies, task_queue: str = TASK_QUEUE) -> Worker:
    return Worker(client, task_queue=task_queue, workflows=WORKFLOWS, activities=activities_for(deps))


@asynccontextmanager
async def live_dependencies(
    settings: FloorSettings,
    keys_dir: Path,
    client_id: int,
    agents: tuple[str, ...] = WORKFLOW_AGENTS,
    slicer: str = "sniper",
    iceberg_limits: IcebergLimits | None = None,
) -> AsyncIterator[Dependencies]:
    from brokers.ibkr import IbkrBroker, IbkrConfig

    keys = load_keys(keys_dir, agents)
    async with AsyncExitStack() as stack:
        producer = await start_producer(settings.kafka, "temporal-worker")
        stack.push_async_callback(producer.stop)
        pool = await asyncpg.create_pool(settings.role_url("worker"), min_size=1, max_size=4)
        stack.push_async_callback(pool.close)
        broker = IbkrBroker(
            IbkrConfig.from_settings(
                settings, client_id=client_id, standby_client_id=client_id, readonly=True
            )
        )
        await broker.connect()
        stack.push_async_callback(broker.close)
        yield Dependencies(
            producer,
            keys,
            StreamingQuotes(broker),
            pool,
            slicer,
            iceberg_limits or IcebergLimits(),
        )


async def main(argv: list[str] | None = None) -> None:
    settings = FloorSettings()
    parser = argparse.ArgumentParser(prog="python -m temporal.worker", description=__doc__)
    parser.add_argument("--temporal", default=settings.temporal)
    parser.add_argument("--namespace", default=settings.temporal_namespace)
    parser.add_argument("--task-queue", default=TASK_QUEUE)
    parser.add_argument("--keys-dir", type=Path, default=settings.var_dir / "keys")
    parser.add_argument("--ib-client-id", type=int, default=QUOTES_CLIENT_ID)
    parser.add_argument(
        "--agent",
        action="append",
        dest="agents",
        help="an agent to sign for (repeatable; default: " + ", ".join(WORKFLOW_AGENTS) + ")",
    )
    parser.add_argument(
        "--sniper-agent",
        default="sniper",
        help="the agent whose key signs iceberg slices (the bridge's --sniper-agent); an Iceberg"
        " naming any other is refused",
    )
    parser.add_argument(
        "--iceberg-min-interval-scale",
        type=Decimal,
        default=IcebergLimits().min_interval_scale,
        help="the smallest interval scale an Iceberg may run at (1: real time; a venue whose clock"
        " runs N times faster needs 1/N); an Iceberg asking for less is refused",
    )
    args = parser.parse_args(argv)
    if args.ib_client_id == settings.ib_client_id:
        # Two connections under one client id: the gateway drops the first when the second
        # connects, so the hot path would lose its broker session to the worker's quotes.
        parser.error(
            f"--ib-client-id {args.ib_client_id} is the hot path's IB_CLIENT_ID; give the worker's "
            "quotes connection another (and not 0, which ib_async binds manual orders to)"
        )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    setup_logs("temporal-worker")  # security and ops events as OpenTelemetry logs; flushed at exit

    telemetry = setup("worker")
    install_global(telemetry)
    # The SDK's metrics and the workflows' own (an Iceberg's fill quality) join /metrics: every
    # client of this process is made on the Runtime whose buffer is drained into it.
    temporal_metrics = TemporalMetrics(telemetry)
    Runtime.set_default(temporal_metrics.runtime)
    client = await connect(args.temporal, args.namespace)
    added = await ensure_search_attributes(client)
    if added:
        log.info("registered search attributes %s", ", ".join(added))
    agents = tuple(args.agents) if args.agents else WORKFLOW_AGENTS
    async with live_dependencies(
        settings,
        args.keys_dir,
        args.ib_client_id,
        agents,
        args.sniper_agent,
        IcebergLimits(min_interval_scale=args.iceberg_min_interval_scale),
    ) as deps:
        # The workflows' and activities' spans (TracingInterceptor, on the client) go to the span
        # store through the worker's pool, in batches written from the loop.
        span_store = SpanStore(deps.db, asyncio.get_running_loop())
        setup_tracing("worker", processors=[span_store])
        worker = build_worker(client, deps, args.task_queue)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        metrics = MetricsServer(telemetry)
        port = metrics.start(settings.host, settings.worker_health_port, "FLOOR_WORKER_HEALTH_PORT")
        draining = asyncio.create_task(temporal_metrics.run(), name="temporal-metrics")
        writing = asyncio.create_task(span_store.run(), name="span-store")
        try:
            async with worker:
                log.info("worker polling %s on %s; metrics on port %d", args.task_queue, args.temporal, port)
                await stop.wait()
        finally:
            draining.cancel()
            writing.cancel()
            metrics.close()
            await flush_tracing()  # an OTLP exporter's batch
            await span_store.flush()  # through the pool: before it closes


if __name__ == "__main__":
    asyncio.run(main())
