"""The database's roles and schema, made ready before any floor process connects.

Embedded Postgres: the superuser creates the owner and the runtime roles with generated
passwords (var/db/ROLE.password, 0600) and hands the schema to the owner; the owner applies the
migrations. The superuser is used for nothing else.

``DATABASE_URL`` (a real deployment): it is the owner's URL and applies the migrations; the roles
are the database administrator's to create (README, Security), and each process's URL is given
by its ``FLOOR_<PROCESS>_DATABASE_URL``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from config.settings import FloorSettings
from floor.services import ensure_password
from ledger import roles
from ledger.migrate import apply_migrations

T = TypeVar("T")


async def prepare_database(settings: FloorSettings) -> list[str]:
    """Roles (embedded only), then migrations as the owner; one line per thing done."""
    done: list[str] = []
    if not settings.database_url:
        names = (roles.OWNER, *(r.name for r in roles.RUNTIME_ROLES))
        passwords = {name: ensure_password(settings, name) for name in names}
        done += await roles.ensure_roles(settings.embedded_database_url, passwords)
        await roles.hand_over_schema(settings.embedded_database_url)
    else:
        for role in roles.RUNTIME_ROLES:
            settings.role_url(role.process)  # raises, naming the variable to set
    applied = await apply_migrations(settings.owner_url)
    if applied:
        done.append(f"applied migrations {', '.join(applied)}")
    return done


def run_as_cli(settings: FloorSettings, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """Run ``work`` on one connection as the CLI's own role (``floor_cli``), from a command."""

    async def run() -> T:
        conn = await asyncpg.connect(settings.role_url("cli"))
        try:
            return await work(conn)
        finally:
            await conn.close()

    return asyncio.run(run())
