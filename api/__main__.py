"""``python -m api --port P``: the API process (uvicorn on 127.0.0.1 by default)."""

from __future__ import annotations

import argparse
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import uvicorn

from api.app import DoorFactory, create_app
from api.door import Door
from api.ledger_access import LedgerAccess
from bus.kafka import start_producer
from bus.topics import AGENT_COMMANDS, SECURITY_EVENTS
from floor.settings import FloorSettings
from observability.security import SecurityLog
from observability.telemetry import install_global, setup


def door_factory(settings: FloorSettings) -> DoorFactory:
    @asynccontextmanager
    async def open_door() -> AsyncIterator[Door]:
        telemetry = setup("api")
        install_global(telemetry)
        pool = await asyncpg.create_pool(settings.role_url("api"), min_size=1, max_size=4)
        try:
            producer = await start_producer(settings.kafka, "api")
            try:
                ledger = LedgerAccess(pool)
                security = SecurityLog(ledger, producer, SECURITY_EVENTS)
                yield Door(ledger, ledger, producer, security, AGENT_COMMANDS, metrics=telemetry.metrics)
            finally:
                await producer.stop()
        finally:
            await pool.close()
            telemetry.shutdown()

    return open_door


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="api", description="The floor's API.")
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--host", default=None)
    args = parser.parse_args(argv)
    settings = FloorSettings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app = create_app(door_factory(settings))
    uvicorn.run(
        app,
        host=args.host or settings.host,
        port=args.port or settings.api_port,
        loop="uvloop",
        log_level="info",
    )


if __name__ == "__main__":
    main()
