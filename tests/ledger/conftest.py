"""A fresh, fully migrated database per test, cloned from a template migrated once per session,
so each test sees a ledger that holds exactly what it appended."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from config.settings import FloorSettings
from ledger import roles
from ledger.migrate import apply_migrations

TEMPLATE = f"ledger_template_{uuid.uuid4().hex[:8]}"


def with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


def make_owned_database(postgres_url: str, owner_url: str, prefix: str) -> str:
    """A new database whose schema the owner made, as `floor up` does: its name."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"

    async def build() -> None:
        admin = await asyncpg.connect(postgres_url)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        await roles.hand_over_schema(with_database(postgres_url, name))
        await apply_migrations(with_database(owner_url, name))

    asyncio.run(build())
    return name


@pytest.fixture(scope="session")
def ledger_template(postgres_url: str) -> str:
    async def build() -> None:
        admin = await asyncpg.connect(postgres_url)
        try:
            await admin.execute(f'CREATE DATABASE "{TEMPLATE}"')
        finally:
            await admin.close()
        await apply_migrations(with_database(postgres_url, TEMPLATE))

    asyncio.run(build())
    return TEMPLATE


@pytest.fixture
async def ledger_dsn(postgres_url: str, ledger_template: str) -> AsyncIterator[str]:
    name = f"ledger_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{ledger_template}" STRATEGY FILE_COPY')
    finally:
        await admin.close()
    yield with_database(postgres_url, name)
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def as_role(floor_settings: FloorSettings, process: str, dsn: str) -> str:
    """The database behind ``dsn``, reached as ``process``'s own runtime role."""
    return with_database(floor_settings.role_url(process), urlsplit(dsn).path.lstrip("/"))


@pytest.fixture
async def db(ledger_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(ledger_dsn)
    yield conn
    await conn.close()
