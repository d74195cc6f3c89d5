from __future__ import annotations

import stat
from pathlib import Path

import asyncpg
import pytest

from config.settings import FloorSettings
from floor.provision import PAPER_PROFILE, SERVICE_KEYS, ProvisionError, provision
from ledger import keys as registry
from ledger.migrate import apply_migrations
from ledger.risk_profiles import get_profile
from ledger.verify import verify_ledger


async def test_first_run_makes_and_registers_service_keys_and_a_paper_profile(
    postgres_url: str, tmp_path: Path
) -> None:
    # A database of its own: the session's may already hold the service keys, registered by
    # suites that provision them for their own processes.
    url = await _fresh_database(postgres_url, f"p0_{tmp_path.name[-6:].lower()}")
    settings = FloorSettings(var_dir=tmp_path, DATABASE_URL=url)
    account = f"DU{tmp_path.name[-6:]}"
    done = await provision(settings, paper_account=account)
    assert any("default risk profile" in line for line in done)
    for service in SERVICE_KEYS:
        path = settings.keys_dir / f"{service.agent_id}.key"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    conn = await asyncpg.connect(url)
    try:
        active = {rec.agent_id: rec for rec in (await registry.load_keys(conn)).values()}
        for service in SERVICE_KEYS:
            assert active[service.agent_id].role == service.role
        assert await get_profile(conn, account) == PAPER_PROFILE
    finally:
        await conn.close()
    report = await verify_ledger(url)
    assert report.first_bad is None

    # A second run finds everything in place and changes nothing.
    assert await provision(settings, paper_account=account) == []


async def _fresh_database(postgres_url: str, name: str) -> str:
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = postgres_url.rsplit("/", 1)[0] + f"/{name}"
    await apply_migrations(url)
    return url


async def test_existing_key_file_is_registered_again_for_a_new_database(
    postgres_url: str, tmp_path: Path
) -> None:
    tag = tmp_path.name[-6:].lower()
    first = FloorSettings(var_dir=tmp_path, DATABASE_URL=await _fresh_database(postgres_url, f"p1_{tag}"))
    await provision(first, paper_account=None)
    before = (tmp_path / "keys" / "sniper.key").read_bytes()

    second_url = await _fresh_database(postgres_url, f"p2_{tag}")
    done = await provision(FloorSettings(var_dir=tmp_path, DATABASE_URL=second_url), paper_account=None)
    assert "registered sniper (service)" in done
    assert not any(line.startswith("made key") for line in done)
    assert (tmp_path / "keys" / "sniper.key").read_bytes() == before


async def test_a_key_file_that_is_not_the_registered_key_is_refused_with_what_to_do(
    postgres_url: str, tmp_path: Path
) -> None:
    url = await _fresh_database(postgres_url, f"p3_{tmp_path.name[-6:].lower()}")
    await provision(FloorSettings(var_dir=tmp_path / "a", DATABASE_URL=url), paper_account=None)
    with pytest.raises(ProvisionError, match="floor keys revoke"):
        await provision(FloorSettings(var_dir=tmp_path / "b", DATABASE_URL=url), paper_account=None)
