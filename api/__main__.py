"""``python -m api --port P``: the API process (uvicorn on 127.0.0.1 by default): the REST
command door, ``/health`` and ``/graphql``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import asyncpg
import uvicorn
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

from api.app import create_app
from api.desk import Desk
from api.door import Door
from api.door_guard import DoorLimits
from api.hub import Hub
from api.metrics import observe_hub
from api.outbox import CommandOutbox
from api.services import Services, ServicesFactory
from api.webauthn_ceremonies import Ceremonies
from bus.kafka import start_producer
from bus.topics import AGENT_COMMANDS, SECURITY_EVENTS
from config.settings import FloorSettings
from ledger.access import LedgerAccess
from ledger.span_store import SpanStore
from ledger.spans import prune_spans_every
from observability.flood import FloodSummary
from observability.logs import setup_logs
from observability.security import SecurityLog
from observability.telemetry import install_global, setup
from observability.tracing import flush_tracing, instrument_libraries, setup_tracing
from trading.symbols import parse_symbols

DB_CONNECT_TIMEOUT_S = 5.0
POOL_SIZE = 8
"""The REST door, GraphQL resolvers and the hub's polls share it."""


async def _cancelled(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def limits(settings: FloorSettings) -> DoorLimits:
    return DoorLimits(rate_per_s=settings.api_rate_per_s, burst=settings.api_rate_burst)


def services_factory(settings: FloorSettings) -> ServicesFactory:
    @asynccontextmanager
    async def open_services() -> AsyncIterator[Services]:
        telemetry = setup("api")
        install_global(telemetry)
        async with contextlib.AsyncExitStack() as stack:
            stack.callback(telemetry.shutdown)
            # Its own role, and a connect timeout, so a request meets an unreachable database
            # with a 503 in seconds, not after asyncpg's default minute.
            pool = await asyncpg.create_pool(
                settings.role_url("api"), min_size=1, max_size=POOL_SIZE, timeout=DB_CONNECT_TIMEOUT_S
            )
            stack.push_async_callback(pool.close)
            # Spans to the span store through the pool (flushed before it closes), pruned by age.
            span_store = SpanStore(pool, asyncio.get_running_loop())
            setup_tracing("api", processors=[span_store])
            instrument_libraries(asyncpg=True, kafka_producer=True)
            stack.push_async_callback(flush_tracing)
            stack.push_async_callback(span_store.flush)
            writing = asyncio.create_task(span_store.run(), name="span-store")
            stack.push_async_callback(_cancelled, writing)
            pruning = asyncio.create_task(
                prune_spans_every(pool, timedelta(hours=settings.span_retention_hours)), name="span-pruning"
            )
            stack.push_async_callback(_cancelled, pruning)
            producer = await start_producer(settings.kafka, "api")
            stack.push_async_callback(producer.stop)
            ledger = LedgerAccess(pool)
            security = FloodSummary(
                SecurityLog(ledger, producer, SECURITY_EVENTS),
                timedelta(seconds=settings.api_flood_window_s),
            )
            stack.push_async_callback(security.close)
            summaries = asyncio.create_task(security.run())
            stack.push_async_callback(_cancelled, summaries)
            outbox = CommandOutbox(pool, producer, AGENT_COMMANDS, settings.kafka)
            stack.push_async_callback(outbox.close)
            republisher = asyncio.create_task(outbox.run(), name="command-outbox")
            stack.push_async_callback(_cancelled, republisher)
            door = Door(
                ledger,
                ledger,
                producer,
                security,
                AGENT_COMMANDS,
                metrics=telemetry.metrics,
                symbols=parse_symbols(settings.hotpath_symbols),
                outbox=outbox,
            )
            hub = Hub(pool, security, settings)
            await hub.start()
            stack.push_async_callback(hub.stop)
            observe_hub(telemetry, hub)
            ceremonies = Ceremonies(pool, settings, security)
            desk = Desk(pool, ceremonies, door, hub, settings, books=hub)
            yield Services(
                db=pool,
                door=door,
                hub=hub,
                settings=settings,
                ceremonies=ceremonies,
                desk=desk,
                telemetry=telemetry,
            )

    return open_services


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="api", description="The floor's API.")
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--host", default=None)
    args = parser.parse_args(argv)
    settings = FloorSettings()
    problem = settings.webauthn_origin_problem(args.port or settings.api_port)
    if problem is not None:
        print(f"api: not starting: {problem}", file=sys.stderr)
        raise SystemExit(2)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    setup_logs("api")  # security and ops events as OpenTelemetry logs; flushed at exit
    app = create_app(
        services_factory(settings),
        limits=limits(settings),
        ws_read_timeout_s=settings.api_ws_read_timeout_s,
        ws_ping_interval_s=settings.api_ws_ping_interval_s,
    )
    # One server span per request, the trace a command's spans hang from (continued from the
    # caller's traceparent, if any); none for the probes. Its ASGI receive/send spans are noise.
    FastAPIInstrumentor.instrument_app(
        app, excluded_urls="/health,/metrics", exclude_spans=["receive", "send"]
    )
    uvicorn.run(
        app,
        host=args.host or settings.host,
        port=args.port or settings.api_port,
        loop="uvloop",
        log_level="info",
        # The client address is the TCP peer's: with proxy headers on, uvicorn would take any
        # local process's X-Forwarded-For as the client, and with it the rate limit's bucket and
        # the address in security events. Behind a TLS proxy, the proxy limits per client.
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
