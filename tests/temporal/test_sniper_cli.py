"""``floor sniper start`` and ``floor sniper status`` against the real API process and Temporal."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import asyncpg
import pytest
from typer.testing import CliRunner

from bus.topics import AGENT_COMMANDS
from config.workflow_ids import iceberg_workflow_id
from floor.sniper_cmd import app
from tests.api.test_order_cli import write_key
from tests.factories import new_agent
from tests.fixtures.hotpath import command_id_of, read_until, register
from trading.commands import CommandKind
from trading.signing import SignedCommand, private_key_to_pem

ARGS = ["--account", "DU100", "--symbol", "AAPL", "--side", "BUY", "--total", "1000", "--display", "100",
        "--limit", "230.50", "--p", "0.55", "--b", "1.5", "--stop", "225"]  # fmt: skip
"""DU100 has no risk profile: a hot path that reads this command refuses it, nothing trades."""


def run(var_dir: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"FLOOR_VAR_DIR": str(var_dir)})
    return result.exit_code, result.output


async def test_start_signs_an_iceberg_with_the_agents_key_and_posts_it_to_the_door(
    api_url: str, kafka_bootstrap: str, ledger_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    agent = new_agent()
    await register(ledger_pool, agent)
    write_key(tmp_path, agent.agent_id, private_key_to_pem(agent.private_key))

    code, output = run(tmp_path, "start", "--agent", agent.agent_id, *ARGS, "--api", api_url)
    assert code == 0, output
    answer = json.loads(output)
    assert answer["http_status"] == 202
    assert answer["workflow_id"] == iceberg_workflow_id(answer["command_id"])
    records = await read_until(
        kafka_bootstrap, AGENT_COMMANDS, lambda raw: command_id_of(raw) == answer["command_id"]
    )
    envelope = SignedCommand.from_wire(records[-1])
    assert envelope.signer == agent.key_id
    envelope.verify(agent.private_key.public_key())
    command = envelope.command
    assert command.kind is CommandKind.ICEBERG
    assert (command.quantity, command.display_size, str(command.limit_price)) == (1000, 100, "230.50")
    assert command.edge is not None and str(command.edge.stop_price) == "225"


async def test_start_refuses_a_display_larger_than_the_total_before_sending(
    api_url: str, tmp_path: Path
) -> None:
    args = [x if x != "100" else "2000" for x in ARGS]
    code, output = run(tmp_path, "start", "--agent", "a", *args, "--api", api_url)
    assert code == 2 and "display_size" in output


async def test_status_of_an_iceberg_nobody_started_says_so(temporal_address: str, tmp_path: Path) -> None:
    missing = f"cli-{uuid.uuid4().hex}"
    code, output = await asyncio.to_thread(run, tmp_path, "status", missing, "--temporal", temporal_address)
    assert code == 1 and f"no iceberg {iceberg_workflow_id(missing)}" in output


@pytest.mark.parametrize(
    ("verb", "extra", "kind"),
    [
        ("amend", ["--total", "600", "--limit", "229.75"], CommandKind.ICEBERG_AMEND),
        ("pause", [], CommandKind.ICEBERG_PAUSE),
        ("resume", [], CommandKind.ICEBERG_RESUME),
        ("cancel", [], CommandKind.ICEBERG_CANCEL),
    ],
)
async def test_controls_are_signed_commands_posted_to_the_door_not_signals(
    verb: str,
    extra: list[str],
    kind: CommandKind,
    api_url: str,
    kafka_bootstrap: str,
    ledger_pool: asyncpg.Pool,
    tmp_path: Path,
) -> None:
    agent = new_agent()
    await register(ledger_pool, agent)
    write_key(tmp_path, agent.agent_id, private_key_to_pem(agent.private_key))
    parent = f"cli-{uuid.uuid4().hex}"

    code, output = run(
        tmp_path, verb, parent, "--agent", agent.agent_id, "--account", "DU100", *extra, "--api", api_url
    )
    assert code == 0, output
    answer = json.loads(output)
    assert answer["http_status"] == 202 and answer["workflow_id"] == iceberg_workflow_id(parent)
    records = await read_until(
        kafka_bootstrap, AGENT_COMMANDS, lambda raw: command_id_of(raw) == answer["command_id"]
    )
    envelope = SignedCommand.from_wire(records[-1])
    envelope.verify(agent.private_key.public_key())
    command = envelope.command
    assert (command.kind, command.parent_id, command.account) == (kind, iceberg_workflow_id(parent), "DU100")
    if kind is CommandKind.ICEBERG_AMEND:
        assert (command.quantity, str(command.limit_price)) == (600, "229.75")


async def test_an_amend_naming_nothing_to_change_is_refused_before_sending(tmp_path: Path) -> None:
    code, output = run(tmp_path, "amend", "cli-x", "--agent", "a", "--account", "DU100")
    assert code == 2 and "iceberg_amend names a new quantity" in output
