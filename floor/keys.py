"""``floor keys``: make, register, list and revoke Ed25519 signing keys.

The private key is written to ``<var>/keys/AGENT.key`` (PKCS#8 PEM, mode 0600, never
overwritten); only the public key goes to the database.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated

import asyncpg
import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.console import Console
from rich.table import Table

from config.settings import FloorSettings
from ledger import keys as registry
from ledger.key_changes import register_key_signed, revoke_key_signed
from ledger.operator_changes import OperatorNotAuthorised
from trading.authorization import TRADER_AGENT_PREFIX
from trading.signing import (
    generate_private_key,
    private_key_from_pem,
    private_key_to_pem,
    public_key_bytes,
)

OPERATOR = "operator"
"""The operator key ``floor up`` makes (floor/provision.py), the default signer of key changes."""

app = typer.Typer(help="Signing keys of agents and operators.", no_args_is_help=True)
console = Console()


def key_path(settings: FloorSettings, agent_id: str) -> Path:
    """``<var>/keys/AGENT.key``; a trader's in ``<var>/keys/traders/``, the one folder the API
    reads (it never needs the floor's own keys)."""
    folder = settings.trader_keys_dir if agent_id.startswith(TRADER_AGENT_PREFIX) else settings.keys_dir
    return folder / f"{agent_id}.key"


def load_private_key(settings: FloorSettings, agent_id: str) -> Ed25519PrivateKey:
    """Read ``<var>/keys/AGENT.key``; raises FileNotFoundError if there is none."""
    return private_key_from_pem(key_path(settings, agent_id).read_bytes())


def write_private_key(path: Path, pem: bytes) -> None:
    # O_EXCL: never clobber an existing key; 0600 from creation, not chmod'ed afterwards.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
        f.flush()
        os.fsync(f.fileno())


def _split_accounts(values: list[str]) -> list[str]:
    return sorted({a.strip() for v in values for a in v.split(",") if a.strip()})


@app.command("new")
def new(
    agent: Annotated[str, typer.Argument(help="Agent (or operator) id the key belongs to.")],
    accounts: Annotated[
        list[str],
        typer.Option("--accounts", "-a", help="Accounts it may trade (repeat or comma-separate; * = all)."),
    ],
    role: Annotated[
        str, typer.Option("--role", "-r", help="agent, operator or service.")
    ] = registry.ROLE_AGENT,
    operator: Annotated[
        str, typer.Option("--as", help="Operator whose key (var/keys/NAME.key) signs the registration.")
    ] = OPERATOR,
) -> None:
    """Make a key pair: private key to var/keys/AGENT.key (0600), public key registered by a
    ledger entry the operator signs."""
    settings = FloorSettings()
    signer = operator_key_or_exit(settings, operator)
    try:
        record, final = make_key(settings, agent, role, _split_accounts(accounts), operator, signer)
    except (KeyFileExists, registry.KeyRegistryError, OperatorNotAuthorised) as exc:
        console.print(f"[red]not registered[/]: {exc}")
        raise typer.Exit(1) from None
    console.print(
        f"key [bold]{record.key_id}[/] registered for [bold]{agent}[/] (role {record.role}, "
        f"accounts {', '.join(sorted(record.accounts))}); private key in {final}"
    )


class KeyFileExists(Exception):
    """The agent's key file is there already; it is never overwritten."""


def make_key(
    settings: FloorSettings,
    agent: str,
    role: str,
    accounts: list[str],
    operator: str,
    operator_key: Ed25519PrivateKey,
) -> tuple[registry.KeyRecord, Path]:
    """Make ``agent``'s key pair, register its public half (a ledger entry ``operator`` signs)
    and only then put the private key at var/keys/AGENT.key (0600). Raises
    :class:`KeyFileExists`, :class:`~ledger.keys.KeyRegistryError` or
    :class:`~ledger.operator_changes.OperatorNotAuthorised`, leaving no file behind."""
    settings.keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    final = key_path(settings, agent)
    final.parent.mkdir(exist_ok=True, mode=0o700)
    if final.exists():
        raise KeyFileExists(f"{final} already exists; revoke the agent and move the file away first")
    key = generate_private_key()
    staging = final.with_suffix(f".key.new-{os.getpid()}")
    write_private_key(staging, private_key_to_pem(key))
    try:
        record = asyncio.run(
            _register(
                settings.role_url("cli"), agent, public_key_bytes(key), role, accounts, operator, operator_key
            )
        )
    except BaseException:
        staging.unlink()
        raise
    os.link(staging, final)
    staging.unlink()
    return record, final


def operator_key_or_exit(settings: FloorSettings, operator: str) -> Ed25519PrivateKey:
    """The operator's signing key, or exit saying where it should be."""
    try:
        return load_private_key(settings, operator)
    except FileNotFoundError:
        console.print(
            f"[red]no key for {operator}[/] in {settings.keys_dir}: key changes are signed by an "
            "operator; name one with --as, or start the floor once (`floor up` makes `operator`)"
        )
        raise typer.Exit(1) from None


async def _register(
    dsn: str,
    agent: str,
    public: bytes,
    role: str,
    accounts: list[str],
    operator: str,
    operator_key: Ed25519PrivateKey,
) -> registry.KeyRecord:
    conn = await asyncpg.connect(dsn)
    try:
        return await register_key_signed(
            conn, agent, public, role, accounts, operator_id=operator, operator_key=operator_key
        )
    finally:
        await conn.close()


@app.command("revoke")
def revoke(
    agent: str = typer.Argument(..., help="Agent whose active key is revoked."),
    operator: str = typer.Option(
        OPERATOR, "--as", help="Operator whose key (var/keys/NAME.key) signs the revocation."
    ),
) -> None:
    """Revoke the agent's active key: its commands are refused from now on."""
    settings = FloorSettings()
    operator_key = operator_key_or_exit(settings, operator)

    async def run() -> registry.KeyRecord:
        conn = await asyncpg.connect(settings.role_url("cli"))
        try:
            active = await registry.active_key_for(conn, agent)
            if active is None:
                raise registry.UnknownAgent(f"no active key for {agent}")
            return await revoke_key_signed(
                conn, active.key_id, operator_id=operator, operator_key=operator_key
            )
        finally:
            await conn.close()

    try:
        record = asyncio.run(run())
    except (registry.UnknownAgent, OperatorNotAuthorised) as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    console.print(
        f"key [bold]{record.key_id}[/] of [bold]{agent}[/] revoked at {record.revoked_at:%Y-%m-%d %H:%M:%S}Z"
    )


@app.command("list")
def list_keys() -> None:
    """Every registered key, revoked ones included."""
    settings = FloorSettings()

    async def run() -> dict[str, registry.KeyRecord]:
        conn = await asyncpg.connect(settings.role_url("cli"))
        try:
            return await registry.load_keys(conn)
        finally:
            await conn.close()

    table = Table(title="Signing keys", title_justify="left")
    for column in ("agent", "key id", "role", "accounts", "created", "status"):
        table.add_column(column)
    for rec in asyncio.run(run()).values():
        status = "[red]revoked[/]" if rec.revoked else "[green]active[/]"
        table.add_row(
            rec.agent_id,
            rec.key_id,
            rec.role,
            ", ".join(sorted(rec.accounts)),
            f"{rec.created_at:%Y-%m-%d %H:%M:%S}",
            status,
        )
    console.print(table)
