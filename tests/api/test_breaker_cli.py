"""``floor breaker trip|arm`` against the real API door: a key without the operator role is
refused before anything reaches Kafka, named, and recorded as a security event."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
from typer.testing import CliRunner

from floor.breaker_cmd import app
from tests.api.test_order_cli import write_key
from tests.factories import new_agent
from tests.fixtures.hotpath import register
from trading import sentry
from trading.signing import private_key_to_pem


async def test_a_trip_or_arm_signed_by_an_agents_key_is_refused_at_the_door_as_not_operator(
    api_url: str, ledger_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    agent = new_agent()  # allowed on every account, but an agent, not an operator
    await register(ledger_pool, agent)
    write_key(tmp_path, agent.agent_id, private_key_to_pem(agent.private_key))
    for verb in ("trip", "arm"):
        result = CliRunner().invoke(
            app, [verb, "--as", agent.agent_id, "--api", api_url], env={"FLOOR_VAR_DIR": str(tmp_path)}
        )
        assert result.exit_code == 1, result.output
        answer = json.loads(result.output)
        assert (answer["http_status"], answer["error"]) == (403, sentry.NOT_OPERATOR)
        assert "operator role" in answer["detail"]
    rows = await ledger_pool.fetch(
        "SELECT reason, severity, source FROM security_events WHERE agent_id = $1 ORDER BY id", agent.agent_id
    )
    assert [tuple(r) for r in rows] == [(sentry.NOT_OPERATOR, "critical", "api")] * 2
