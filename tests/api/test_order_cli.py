"""``floor order submit`` against the real API process: signs with the agent's key file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import asyncpg
import pytest
from typer.testing import CliRunner

from bus.topics import AGENT_COMMANDS
from floor.order_cmd import app
from tests.factories import new_agent
from tests.fixtures.hotpath import command_id_of, read_until, register
from trading.signing import SignedCommand, private_key_to_pem

ARGS = ["--account", "DU100", "--symbol", "AAPL", "--side", "BUY", "--type", "LMT", "--limit", "189.50",
        "--p", "0.55", "--b", "1.5", "--stop", "185"]  # fmt: skip


def write_key(var_dir: Path, agent_id: str, pem: bytes) -> None:
    keys = var_dir / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    (keys / f"{agent_id}.key").write_bytes(pem)
    os.chmod(keys / f"{agent_id}.key", 0o600)


def run(var_dir: Path, api_url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["submit", *args, "--api", api_url], env={"FLOOR_VAR_DIR": str(var_dir)})
    return result.exit_code, result.output


async def test_submit_signs_with_the_agents_key_and_the_command_is_published(
    api_url: str, kafka_bootstrap: str, ledger_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    agent = new_agent()
    await register(ledger_pool, agent)
    write_key(tmp_path, agent.agent_id, private_key_to_pem(agent.private_key))

    code, output = run(tmp_path, api_url, "--agent", agent.agent_id, *ARGS)
    assert code == 0, output
    answer = json.loads(output)
    assert answer["http_status"] == 202
    records = await read_until(
        kafka_bootstrap,
        AGENT_COMMANDS,
        lambda raw: command_id_of(raw) == answer["command_id"],
    )
    env = SignedCommand.from_wire(records[-1])
    assert env.signer == agent.key_id
    command = env.command
    assert (command.symbol, command.side, str(command.limit_price)) == ("AAPL", "BUY", "189.50")
    assert command.edge is not None and (str(command.edge.p), str(command.edge.stop_price)) == ("0.55", "185")


async def test_submit_with_an_unregistered_key_is_refused_by_the_door(api_url: str, tmp_path: Path) -> None:
    stranger = new_agent()
    write_key(tmp_path, stranger.agent_id, private_key_to_pem(stranger.private_key))
    code, output = run(tmp_path, api_url, "--agent", stranger.agent_id, *ARGS)
    assert code == 1
    assert json.loads(output) | {"detail": ""} == {
        "http_status": 403,
        "error": "sentry.unknown_key",
        "detail": "",
    }


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--agent", "nobody-has-this-key", *ARGS], "floor keys new nobody-has-this-key"),
        (["--agent", "a", *[x if x != "0.55" else "1.5" for x in ARGS]], "edge.p"),
    ],
)
def test_submit_reports_bad_input_before_sending(
    api_url: str, tmp_path: Path, args: list[str], needle: str
) -> None:
    code, output = run(tmp_path, api_url, *args)
    assert code == 2 and needle in output


async def test_submit_for_a_symbol_the_floor_does_not_trade_says_so_and_what_to_do(
    api_url: str, ledger_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """Published and then refused as risk.stale_price, it sent users looking for a market-data
    problem; the door knows the floor's symbols and answers at once."""
    agent = new_agent()
    await register(ledger_pool, agent)
    write_key(tmp_path, agent.agent_id, private_key_to_pem(agent.private_key))
    args = [x if x != "AAPL" else "ZZZZ" for x in ARGS]

    code, output = run(tmp_path, api_url, "--agent", agent.agent_id, *args)

    assert code == 1
    answer = json.loads(output)
    assert (answer["http_status"], answer["error"], answer["field"]) == (422, "unknown_symbol", "symbol")
    assert answer["detail"].startswith("ZZZZ is not a symbol this floor trades (AAPL, AMZN, JPM, MSFT, NVDA)")
    assert "FLOOR_HOTPATH_SYMBOLS" in answer["detail"]
