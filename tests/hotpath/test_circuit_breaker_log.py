"""The hot path will not start unable to ledger its trips: the breaker's key must be on disk and
registered as an active service key of the breaker's agent."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg
import pytest

from hotpath.circuit_breaker_log import BreakerKeyMissing, load_breaker_key
from ledger.keys import ROLE_OPERATOR, ROLE_SERVICE, register_key, revoke_agent
from trading.signing import generate_private_key, key_id, private_key_to_pem, public_key_bytes


async def test_the_breaker_key_loads_only_as_an_active_service_key_of_its_agent(
    ledger_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    agent_id = f"floor-breaker-{uuid.uuid4().hex[:8]}"
    with pytest.raises(BreakerKeyMissing, match="`floor up` makes and registers it"):
        await load_breaker_key(ledger_pool, tmp_path, agent_id)

    key = generate_private_key()
    (tmp_path / f"{agent_id}.key").write_bytes(private_key_to_pem(key))
    with pytest.raises(BreakerKeyMissing, match="not an active service key"):
        await load_breaker_key(ledger_pool, tmp_path, agent_id)  # on disk, never registered

    await register_key(ledger_pool, agent_id, public_key_bytes(key), ROLE_SERVICE, ["*"])
    assert key_id(await load_breaker_key(ledger_pool, tmp_path, agent_id)) == key_id(key)

    await revoke_agent(ledger_pool, agent_id)
    with pytest.raises(BreakerKeyMissing, match="not an active service key"):
        await load_breaker_key(ledger_pool, tmp_path, agent_id)


async def test_an_operator_key_is_not_the_breakers(ledger_pool: asyncpg.Pool, tmp_path: Path) -> None:
    agent_id = f"floor-breaker-{uuid.uuid4().hex[:8]}"
    key = generate_private_key()
    (tmp_path / f"{agent_id}.key").write_bytes(private_key_to_pem(key))
    await register_key(ledger_pool, agent_id, public_key_bytes(key), ROLE_OPERATOR, ["*"])
    with pytest.raises(BreakerKeyMissing, match="not an active service key"):
        await load_breaker_key(ledger_pool, tmp_path, agent_id)
