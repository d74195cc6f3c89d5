"""The embedded Postgres asks every TCP connection for a password, the superuser's included."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from config.settings import FloorSettings
from floor import services
from floor.supervisor import Supervisor


async def test_a_data_directory_made_before_passwords_is_given_them(tmp_path: Path) -> None:
    settings = FloorSettings.on_free_ports(tmp_path / "var")
    services.prepare_postgres(settings)
    # What an older floor left: every host line trusts, and no password file.
    hba = settings.pg_dir / "pg_hba.conf"
    hba.write_text(hba.read_text().replace("scram-sha-256", "trust"))
    (settings.db_secrets_dir / "postgres.password").unlink()

    supervisor = Supervisor(settings.log_dir)
    try:
        supervisor.start(services.postgres_spec(settings))  # prepares the directory again
        bare = f"postgresql://postgres@{settings.host}:{settings.pg_port}/postgres"
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(bare, password="")
        conn = await asyncpg.connect(settings.embedded_database_url)
        assert await conn.fetchval("SELECT current_user") == "postgres"
        await conn.close()
    finally:
        supervisor.stop_all()
