"""`floor traders` and `floor api-tokens` against the real database, as the floor_cli role."""

from __future__ import annotations

import asyncio
import stat
import uuid
from pathlib import Path

import asyncpg
import pytest
import typer
from typer.testing import CliRunner, Result

from api.principals import authenticate
from api.webauthn_ceremonies import Ceremonies
from api.webauthn_results import AuthenticatorInfo, Challenge
from config.settings import FloorSettings
from floor.api_tokens_cmd import app as tokens_app
from floor.keys import write_private_key
from floor.traders_cmd import app as traders_app
from ledger.keys import active_key_for
from tests.fixtures.hotpath import fresh_agent
from tests.fixtures.identity import Trader, enrol, sign_in
from tests.webauthn_authenticator import SoftwareAuthenticator
from trading.signing import private_key_to_pem


@pytest.fixture
async def cli(
    ledger_pool: asyncpg.Pool, floor_settings: FloorSettings, tmp_path: Path
) -> tuple[CliRunner, str]:
    """The commands as an operator runs them, signing with an operator key of its own."""
    operator = await fresh_agent(ledger_pool, f"ops-{uuid.uuid4().hex[:8]}", "operator")
    (tmp_path / "keys").mkdir()
    write_private_key(
        tmp_path / "keys" / f"{operator.agent_id}.key", private_key_to_pem(operator.private_key)
    )
    runner = CliRunner(
        env={
            "FLOOR_CLI_DATABASE_URL": floor_settings.role_url("cli"),
            "FLOOR_VAR_DIR": str(tmp_path),
            "COLUMNS": "200",
        }
    )
    return runner, operator.agent_id


async def invoke(runner: CliRunner, app: typer.Typer, args: list[str]) -> Result:
    """The command in a thread of its own: it runs its own event loop, as from a shell."""
    return await asyncio.to_thread(runner.invoke, app, args)


def _token_from(output: str) -> str:
    [link] = [line for line in output.splitlines() if "/enrol#token=" in line]
    assert link.startswith("http://localhost:8000/enrol#token=")
    return link.split("#token=", 1)[1]


async def test_traders_add_makes_the_trader_key_and_a_link_that_enrols_a_passkey(
    cli: tuple[CliRunner, str], tmp_path: Path, ledger_pool: asyncpg.Pool, ceremonies: Ceremonies
) -> None:
    runner, operator = cli
    name = f"t-{uuid.uuid4().hex[:8]}"
    result = await invoke(
        runner, traders_app, ["add", name, "--accounts", "DU1,DU2", "--step-up-every-order", "--as", operator]
    )
    assert result.exit_code == 0, result.output
    # In the traders' own folder, the one the API reads, apart from the floor's keys.
    key_file = tmp_path / "keys" / "traders" / f"trader.{name}.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    assert not (tmp_path / "keys" / f"trader.{name}.key").exists()
    key = await active_key_for(ledger_pool, f"trader.{name}")
    assert key is not None and key.role == "trader" and key.accounts == {"DU1", "DU2"}

    await enrol(ceremonies, Trader(name, _token_from(result.output), SoftwareAuthenticator()))
    listed = await invoke(runner, traders_app, ["list"])
    [row] = [line for line in listed.output.splitlines() if name in line]
    assert "DU1, DU2" in row and "every order" in row and " 1 " in row

    again = await invoke(runner, traders_app, ["add", name, "--accounts", "DU1", "--as", operator])
    assert again.exit_code == 1 and f"floor traders enrol {name}" in again.output
    link = await invoke(runner, traders_app, ["enrol", name])
    assert link.exit_code == 0 and _token_from(link.output)


async def test_traders_add_refuses_a_bad_name_before_making_any_key(
    cli: tuple[CliRunner, str], tmp_path: Path
) -> None:
    runner, operator = cli
    result = await invoke(runner, traders_app, ["add", "Not A Name", "--accounts", "DU1", "--as", operator])
    assert result.exit_code == 1 and "is not a trader name" in result.output
    assert list((tmp_path / "keys").rglob("trader.*")) == []


async def test_traders_enrol_names_an_unknown_trader(cli: tuple[CliRunner, str]) -> None:
    runner, _ = cli
    result = await invoke(runner, traders_app, ["enrol", "nobody-here"])
    assert result.exit_code == 1 and "floor traders add nobody-here" in result.output


async def test_api_tokens_new_prints_a_token_once_and_revoke_ends_it(
    cli: tuple[CliRunner, str], api_pool: asyncpg.Pool
) -> None:
    runner, _ = cli
    name = f"bot-{uuid.uuid4().hex[:8]}"
    issued = await invoke(runner, tokens_app, ["new", name, "--role", "ops"])
    assert issued.exit_code == 0, issued.output
    token = issued.output.strip().splitlines()[-1]
    principal = await authenticate(api_pool, cookie=None, bearer=token)
    assert principal is not None and principal.is_ops
    listed = await invoke(runner, tokens_app, ["list"])
    assert name in listed.output and token not in listed.output
    assert (await invoke(runner, tokens_app, ["revoke", name])).exit_code == 0
    assert await authenticate(api_pool, cookie=None, bearer=token) is None
    assert (await invoke(runner, tokens_app, ["revoke", name])).exit_code == 1
    assert (await invoke(runner, tokens_app, ["new", name, "--role", "admin"])).exit_code == 1


async def test_traders_passkeys_revoke_passkey_sign_out_and_disable(
    cli: tuple[CliRunner, str], ledger_pool: asyncpg.Pool, api_pool: asyncpg.Pool, ceremonies: Ceremonies
) -> None:
    runner, operator = cli
    name = f"t-{uuid.uuid4().hex[:8]}"
    added = await invoke(runner, traders_app, ["add", name, "--accounts", "DU1", "--as", operator])
    assert added.exit_code == 0, added.output
    trader = Trader(name, _token_from(added.output), SoftwareAuthenticator())
    info = await enrol(ceremonies, trader)
    _, cookie = await sign_in(ceremonies, trader)

    listed = await invoke(runner, traders_app, ["passkeys", name])
    assert listed.exit_code == 0 and info.credential_id in listed.output and "active" in listed.output
    assert "enrolment link" in listed.output

    unknown = await invoke(runner, traders_app, ["revoke-passkey", name, "no-such-prefix"])
    assert unknown.exit_code == 1 and "floor traders passkeys" in unknown.output

    revoked = await invoke(runner, traders_app, ["revoke-passkey", name, "--", info.credential_id[:6]])
    assert revoked.exit_code == 0, revoked.output
    assert "1 session(s)" in revoked.output
    assert await authenticate(api_pool, cookie=cookie, bearer=None) is None
    assert "revoked" in (await invoke(runner, traders_app, ["passkeys", name])).output
    again = await invoke(runner, traders_app, ["revoke-passkey", name, "--", info.credential_id[:6]])
    assert again.exit_code == 1 and "revoked already" in again.output

    link = await invoke(runner, traders_app, ["enrol", name])
    second = Trader(name, _token_from(link.output), SoftwareAuthenticator())
    await enrol(ceremonies, second)
    _, cookie = await sign_in(ceremonies, second)
    signed_out = await invoke(runner, traders_app, ["sign-out", name])
    assert signed_out.exit_code == 0 and "1 session(s)" in signed_out.output
    assert await authenticate(api_pool, cookie=cookie, bearer=None) is None

    _, cookie = await sign_in(ceremonies, second)
    disabled = await invoke(runner, traders_app, ["disable", name, "--as", operator])
    assert disabled.exit_code == 0, disabled.output
    assert "1 passkey(s) revoked" in disabled.output
    assert await authenticate(api_pool, cookie=cookie, bearer=None) is None
    assert await active_key_for(ledger_pool, f"trader.{name}") is None  # the signed revocation
    refused = await invoke(runner, traders_app, ["enrol", name])
    assert refused.exit_code == 1 and "disabled" in refused.output
    assert (await invoke(runner, traders_app, ["sign-out", "nobody-here"])).exit_code == 1


async def test_traders_passkeys_shows_which_passkey_confirmed_one_added_from_a_session(
    cli: tuple[CliRunner, str], ceremonies: Ceremonies
) -> None:
    runner, operator = cli
    name = f"t-{uuid.uuid4().hex[:8]}"
    added = await invoke(runner, traders_app, ["add", name, "--accounts", "DU1", "--as", operator])
    assert added.exit_code == 0, added.output
    trader = Trader(name, _token_from(added.output), SoftwareAuthenticator())
    info = await enrol(ceremonies, trader)
    principal, cookie = await sign_in(ceremonies, trader)

    # A passkey added from the session shows which passkey confirmed it.
    begun = await ceremonies.begin_add_passkey(principal)
    assert isinstance(begun, Challenge)
    opened = await ceremonies.confirm_add_passkey(
        principal, cookie, begun.challenge_id, trader.authenticator.get(begun.options_json)
    )
    assert isinstance(opened, Challenge), opened
    phone = await ceremonies.finish_add_passkey(
        principal, cookie, opened.challenge_id, SoftwareAuthenticator().create(opened.options_json)
    )
    assert isinstance(phone, AuthenticatorInfo), phone
    listed = await invoke(runner, traders_app, ["passkeys", name])
    assert f"confirmed by {info.credential_id[:12]}" in " ".join(listed.output.split()), listed.output
