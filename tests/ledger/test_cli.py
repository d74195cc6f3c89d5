"""The `floor keys`, `floor risk` and `floor ledger` sub-commands against a real database."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from typer.testing import CliRunner

from config.settings import FloorSettings
from floor.keys import app as keys_app
from floor.keys import write_private_key
from floor.ledger_cmd import app as ledger_app
from floor.risk_cmd import app as risk_app
from ledger.append import Decision, append_command
from ledger.key_changes import register_key_signed
from ledger.keys import active_key_for
from ledger.risk_profiles import get_profile
from tests.factories import authorization, manual_enter_command
from tests.ledger.conftest import as_role
from tests.ledger.helpers import registered_agent, signed_enter
from trading.authorization import Ceremony
from trading.circuit_breaker import BreakerRule
from trading.sentry import ROLE_TRADER
from trading.signing import (
    generate_private_key,
    key_id,
    private_key_from_pem,
    private_key_to_pem,
    public_key_bytes,
)

FULL_PROFILE = [
    "--max-trade-size", "25000", "--max-dollar-risk", "500", "--max-position", "1000",
    "--max-gross-exposure", "100000", "--max-open-orders", "20", "--staleness-ms", "1500",
]  # fmt: skip


@pytest.fixture
async def cli(ledger_dsn: str, floor_settings: FloorSettings, tmp_path: Path) -> CliRunner:
    """The `floor` commands as an operator runs them: as the floor_cli role, with the floor's
    operator key (registered first, by itself, as on a new floor) in var/keys/."""
    operator = generate_private_key()
    (tmp_path / "keys").mkdir()
    write_private_key(tmp_path / "keys" / "operator.key", private_key_to_pem(operator))
    conn = await asyncpg.connect(ledger_dsn)
    try:
        await register_key_signed(
            conn, "operator", public_key_bytes(operator), "operator", ["*"],
            operator_id="operator", operator_key=operator,
        )  # fmt: skip
    finally:
        await conn.close()
    return CliRunner(
        env={
            "DATABASE_URL": ledger_dsn,
            "FLOOR_CLI_DATABASE_URL": as_role(floor_settings, "cli", ledger_dsn),
            "FLOOR_VAR_DIR": str(tmp_path),
            "COLUMNS": "200",
        }
    )


def fetch(dsn: str, coro_fn: Callable[[asyncpg.Connection], Awaitable[Any]]) -> Any:
    async def run() -> Any:
        conn = await asyncpg.connect(dsn)
        try:
            return await coro_fn(conn)
        finally:
            await conn.close()

    return asyncio.run(run())


def test_keys_new_writes_a_private_key_0600_and_registers_its_public_half(
    cli: CliRunner, ledger_dsn: str, tmp_path: Path
) -> None:
    result = cli.invoke(keys_app, ["new", "alpha", "--accounts", "DU1,DU2", "--role", "agent"])
    assert result.exit_code == 0, result.output
    path = tmp_path / "keys" / "alpha.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    private = private_key_from_pem(path.read_bytes())
    record = fetch(ledger_dsn, lambda c: active_key_for(c, "alpha"))
    assert record.key_id == key_id(private) and record.accounts == frozenset({"DU1", "DU2"})
    assert sorted((tmp_path / "keys").iterdir()) == [path, tmp_path / "keys" / "operator.key"]

    before = path.read_bytes()
    again = cli.invoke(keys_app, ["new", "alpha", "--accounts", "DU1"])
    assert again.exit_code == 1 and "already exists" in again.output
    assert path.read_bytes() == before


def test_keys_new_for_an_agent_with_an_active_key_leaves_no_file(
    cli: CliRunner, ledger_dsn: str, tmp_path: Path
) -> None:
    assert cli.invoke(keys_app, ["new", "alpha", "--accounts", "*"]).exit_code == 0
    (tmp_path / "keys" / "alpha.key").rename(tmp_path / "alpha.old")
    result = cli.invoke(keys_app, ["new", "alpha", "--accounts", "*"])
    assert result.exit_code == 1 and "already has an active key" in result.output
    assert [p.name for p in (tmp_path / "keys").iterdir()] == ["operator.key"]


def test_keys_revoke_and_list(cli: CliRunner, ledger_dsn: str) -> None:
    assert cli.invoke(keys_app, ["new", "alpha", "--accounts", "DU1"]).exit_code == 0
    result = cli.invoke(keys_app, ["revoke", "alpha"])
    assert result.exit_code == 0 and "revoked" in result.output
    assert fetch(ledger_dsn, lambda c: active_key_for(c, "alpha")) is None
    assert cli.invoke(keys_app, ["revoke", "alpha"]).exit_code == 1
    listing = cli.invoke(keys_app, ["list"])
    assert listing.exit_code == 0 and "alpha" in listing.output and "revoked" in listing.output


def test_risk_set_show_and_ledger_verify(cli: CliRunner, ledger_dsn: str) -> None:
    assert cli.invoke(keys_app, ["new", "ops", "--accounts", "*", "--role", "operator"]).exit_code == 0
    first = cli.invoke(risk_app, ["set", "DU1", *FULL_PROFILE, "--as", "ops"])
    assert first.exit_code == 0, first.output
    # Entries 1 and 2 register the operator and ops keys.
    assert "ledger entry 3" in first.output
    partial = cli.invoke(
        risk_app, ["set", "DU1", "--max-dollar-risk", "250", "--kelly-fraction", "0.5", "--as", "ops"]
    )
    assert partial.exit_code == 0, partial.output
    profile = fetch(ledger_dsn, lambda c: get_profile(c, "DU1"))
    assert (profile.max_dollar_risk, profile.kelly_fraction, profile.max_trade_size) == (
        Decimal("250"),
        Decimal("0.5"),
        Decimal("25000"),
    )
    shown = cli.invoke(risk_app, ["show", "DU1"])
    assert shown.exit_code == 0 and "ledger entry 4" in shown.output and "250" in shown.output

    verified = cli.invoke(ledger_app, ["verify"])
    assert verified.exit_code == 0, verified.output
    assert "ledger intact: 4 entries" in verified.output

    async def tamper(conn: asyncpg.Connection) -> None:
        await conn.execute("SET session_replication_role = replica")
        await conn.execute("UPDATE ledger_entries SET reason = 'edited' WHERE seq = 4")

    fetch(ledger_dsn, tamper)
    broken = cli.invoke(ledger_app, ["verify"])
    assert broken.exit_code == 1
    assert "first bad entry is seq 4" in broken.output


def test_risk_set_a_breaker_rule_per_account_and_per_symbol(cli: CliRunner, ledger_dsn: str) -> None:
    assert cli.invoke(keys_app, ["new", "ops", "--accounts", "*", "--role", "operator"]).exit_code == 0
    assert cli.invoke(risk_app, ["set", "DU1", *FULL_PROFILE, "--as", "ops"]).exit_code == 0
    assert fetch(ledger_dsn, lambda c: get_profile(c, "DU1")).breaker is None  # the default
    ruled = cli.invoke(
        risk_app,
        ["set", "DU1", "--breaker-drop-pct", "12", "--breaker-symbol", "NVDA=15",
         "--breaker-symbol", "tsla=20", "--as", "ops"],
    )  # fmt: skip
    assert ruled.exit_code == 0, ruled.output
    profile = fetch(ledger_dsn, lambda c: get_profile(c, "DU1"))
    assert profile.breaker == BreakerRule(Decimal(12), 60_000, {"NVDA": Decimal(15), "TSLA": Decimal(20)})
    assert profile.max_trade_size == Decimal("25000")  # the other limits keep their values
    dropped = cli.invoke(risk_app, ["set", "DU1", "--breaker-symbol", "TSLA=", "--as", "ops"])
    assert dropped.exit_code == 0, dropped.output
    assert fetch(ledger_dsn, lambda c: get_profile(c, "DU1")).breaker == BreakerRule(
        Decimal(12), 60_000, {"NVDA": Decimal(15)}
    )
    shown = cli.invoke(risk_app, ["show", "DU1"])
    assert shown.exit_code == 0 and "-12% within 60000 ms; NVDA -15%" in shown.output
    refused = cli.invoke(risk_app, ["set", "DU1", "--breaker-drop-pct", "100", "--as", "ops"])
    assert refused.exit_code == 1 and "drop_pct" in refused.output
    verified = cli.invoke(ledger_app, ["verify"])
    assert verified.exit_code == 0, verified.output


def test_risk_set_refusals(cli: CliRunner) -> None:
    missing_key = cli.invoke(risk_app, ["set", "DU1", *FULL_PROFILE, "--as", "nobody"])
    assert missing_key.exit_code == 1 and "floor keys new nobody --role operator" in missing_key.output
    assert cli.invoke(keys_app, ["new", "alpha", "--accounts", "*"]).exit_code == 0
    not_operator = cli.invoke(risk_app, ["set", "DU1", *FULL_PROFILE, "--as", "alpha"])
    assert not_operator.exit_code == 1 and "not an operator key" in not_operator.output
    assert cli.invoke(keys_app, ["new", "ops", "--accounts", "*", "--role", "operator"]).exit_code == 0
    incomplete = cli.invoke(risk_app, ["set", "DU1", "--max-trade-size", "100", "--as", "ops"])
    assert incomplete.exit_code == 1 and "--max-dollar-risk" in incomplete.output
    bad = cli.invoke(risk_app, ["set", "DU1", *FULL_PROFILE, "--kelly-fraction", "2", "--as", "ops"])
    assert bad.exit_code == 1 and "kelly_fraction" in bad.output
    assert cli.invoke(risk_app, ["show", "DU1"]).exit_code == 1


def test_ledger_head_anchor_round_trip(cli: CliRunner, ledger_dsn: str) -> None:
    assert cli.invoke(keys_app, ["new", "ops", "--accounts", "*", "--role", "operator"]).exit_code == 0
    assert cli.invoke(risk_app, ["set", "DU1", *FULL_PROFILE, "--as", "ops"]).exit_code == 0
    head = cli.invoke(ledger_app, ["head"])
    assert head.exit_code == 0
    anchor = head.output.strip()
    assert anchor.startswith("3:") and len(anchor) == 2 + 64
    assert cli.invoke(ledger_app, ["verify", "--anchor", anchor]).exit_code == 0
    wrong = "3:" + "00" * 32
    result = cli.invoke(ledger_app, ["verify", "--anchor", wrong])
    assert result.exit_code == 1 and "anchor" in result.output
    assert cli.invoke(ledger_app, ["verify", "--anchor", "nonsense"]).exit_code == 2


def test_ledger_tail_shows_newest_entries_with_detail(cli: CliRunner, ledger_dsn: str) -> None:
    async def seed(conn: asyncpg.Connection) -> None:
        alpha = await registered_agent(conn, "alpha")
        await append_command(
            conn, signed_enter(alpha, command_id="cmd-a"), decision=Decision.ACCEPTED, detail={"quantity": 37}
        )
        await append_command(
            conn,
            signed_enter(alpha, command_id="cmd-b"),
            decision=Decision.REJECTED,
            reason="risk.max_position",
        )

    fetch(ledger_dsn, seed)
    result = cli.invoke(ledger_app, ["tail", "-n", "1"])
    assert result.exit_code == 0
    assert "cmd-b" in result.output and "risk.max_position" in result.output and "cmd-a" not in result.output
    both = cli.invoke(ledger_app, ["tail"]).output
    assert both.index("cmd-a") < both.index("cmd-b") and '"quantity":37' in both


def test_ledger_verify_and_tail_show_who_authorised_a_traders_order(cli: CliRunner, ledger_dsn: str) -> None:
    async def seed(conn: asyncpg.Connection) -> str:
        alice = await registered_agent(conn, "trader.alice", role=ROLE_TRADER)
        step_up = authorization("alice", ceremony=Ceremony.STEP_UP, sign_count=7)
        order = alice.sign(manual_enter_command(alice.agent_id, quantity=10, authorization=step_up))
        await append_command(conn, order, decision=Decision.ACCEPTED, detail={"quantity": 10})
        alpha = await registered_agent(conn, "alpha")
        await append_command(conn, signed_enter(alpha, command_id="cmd-agent"), decision=Decision.ACCEPTED)
        return order.command.command_id

    command_id = fetch(ledger_dsn, seed)
    said = "authorised by trader alice, passkey AAECAwQFBgcI, sign count 7, step-up"
    verified = cli.invoke(ledger_app, ["verify"])
    assert verified.exit_code == 0, verified.output
    assert f"(enter {command_id}, accepted): {said}" in verified.output
    assert "cmd-agent" not in verified.output  # an agent's order names no trader
    assert "ledger intact: 3 entries" in verified.output  # the operator's registration, the two orders
    tail = cli.invoke(ledger_app, ["tail", "-n", "2"])
    assert tail.exit_code == 0, tail.output
    # The table wraps the cell over lines; its words are all there, once (the agent's order
    # names no trader).
    assert all(tail.output.count(word) == 1 for word in ("alice,", "AAECAwQFBgcI,", "step-up"))
    assert "cmd-agent" in tail.output
