"""``floor traders``: add a trader (its own signing key and a one-time enrolment link for its
passkey), issue a new link, list them; list and revoke its passkeys, sign it out everywhere, or
disable it (passkeys, sessions and grants end, its signing key is revoked, enrolment refused).

A trader signs in at the HUD with a passkey it registers through the link; the API signs its
orders with its key (agent ``trader.<name>``, role ``trader``, allowed on the trader's accounts)
only after the trader's WebAuthn ceremony passed. The private key is written to
``<var>/keys/trader.<name>.key`` (0600), like every key.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

import asyncpg
import typer
from rich.console import Console
from rich.table import Table

from config.settings import FloorSettings
from floor.database import run_as_cli
from floor.keys import OPERATOR, KeyFileExists, make_key, operator_key_or_exit
from ledger import trader_revocation as revocation
from ledger import traders
from ledger.key_changes import revoke_key_signed
from ledger.keys import ROLE_TRADER, KeyRegistryError, UnknownAgent, active_key_for
from ledger.operator_changes import OperatorNotAuthorised
from ledger.webauthn_store import StoredCredential, passkey_confirmed_by
from trading.authorization import trader_agent_id

app = typer.Typer(help="Human traders: signing keys and passkey enrolment.", no_args_is_help=True)
console = Console()


def enrolment_link(settings: FloorSettings, token: str) -> str:
    """Where the trader registers its passkey. The token travels in the fragment, which browsers
    never send to a server or put in a Referer."""
    return f"{settings.webauthn_origin}/enrol#token={token}"


def _print_link(settings: FloorSettings, name: str, token: str, expires_at: datetime) -> None:
    console.print(f"enrolment link for [bold]{name}[/] (one use, expires {expires_at:%Y-%m-%d %H:%M:%S}Z):")
    # Printed bare (no wrapping, no markup) so it can be copied whole.
    print(enrolment_link(settings, token))


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="The trader's name (lower-case letters, digits, '_', '-').")],
    accounts: Annotated[
        list[str],
        typer.Option("--accounts", "-a", help="Accounts it may trade (repeat or comma-separate; * = all)."),
    ],
    ops: Annotated[bool, typer.Option("--ops", help="Also sees the security events (role ops).")] = False,
    step_up_every_order: Annotated[
        bool,
        typer.Option(
            "--step-up-every-order", help="Ask for a passkey ceremony on every order, not once per arming."
        ),
    ] = False,
    operator: Annotated[
        str, typer.Option("--as", help="Operator whose key (var/keys/NAME.key) signs the key's registration.")
    ] = OPERATOR,
) -> None:
    """Add a trader: its signing key (registered by the operator) and a one-time enrolment link."""
    settings = FloorSettings()
    account_list = sorted({a.strip() for v in accounts for a in v.split(",") if a.strip()})
    try:
        traders.check_trader(name, account_list)
    except traders.TraderError as exc:
        console.print(f"[red]trader not added[/]: {exc}")
        raise typer.Exit(1) from None
    if run_as_cli(settings, lambda conn: traders.get_trader(conn, name)) is not None:
        console.print(
            f"[red]trader {name} exists[/]; `floor traders enrol {name}` makes a new enrolment link"
        )
        raise typer.Exit(1)
    signer = operator_key_or_exit(settings, operator)
    agent = trader_agent_id(name)
    try:
        record, key_file = make_key(settings, agent, ROLE_TRADER, account_list, operator, signer)
    except (KeyFileExists, KeyRegistryError, OperatorNotAuthorised) as exc:
        console.print(f"[red]trader not added[/]: {exc}")
        raise typer.Exit(1) from None

    async def add_and_enrol(conn: asyncpg.Connection) -> tuple[str, datetime]:
        await traders.add_trader(conn, name, account_list, ops=ops, step_up_every_order=step_up_every_order)
        return await traders.new_enrolment(conn, name, timedelta(seconds=settings.enrolment_ttl_s))

    try:
        token, expires_at = run_as_cli(settings, add_and_enrol)
    except traders.TraderError as exc:
        console.print(
            f"[red]trader not added[/]: {exc} (its key {record.key_id} is registered:"
            f" `floor keys revoke {agent}`)"
        )
        raise typer.Exit(1) from None
    console.print(
        f"trader [bold]{name}[/] added (role {'ops' if ops else 'trader'}, accounts {', '.join(account_list)}"
        f"{', step-up on every order' if step_up_every_order else ''});"
        f" signing key {record.key_id} in {key_file}"
    )
    _print_link(settings, name, token, expires_at)


@app.command("enrol")
def enrol(name: Annotated[str, typer.Argument(help="The trader who needs a (new) passkey.")]) -> None:
    """A new one-time enrolment link for an existing trader (another passkey, or a lost link)."""
    settings = FloorSettings()

    async def issue(conn: asyncpg.Connection) -> tuple[str, datetime] | str:
        trader = await traders.get_trader(conn, name)
        if trader is None:
            return f"no trader {name}; `floor traders add {name} --accounts ...` adds one"
        if trader.disabled_at is not None:
            return f"trader {name} is disabled; it cannot enrol a passkey"
        return await traders.new_enrolment(conn, name, timedelta(seconds=settings.enrolment_ttl_s))

    issued = run_as_cli(settings, issue)
    if isinstance(issued, str):
        console.print(f"[red]{issued}[/]")
        raise typer.Exit(1)
    _print_link(settings, name, *issued)


@app.command("list")
def list_traders() -> None:
    """Every trader: role, accounts, whether every order needs a ceremony, passkeys registered."""
    settings = FloorSettings()
    table = Table(title="Traders", title_justify="left")
    for column in ("trader", "role", "accounts", "step-up", "passkeys", "created", "disabled"):
        table.add_column(column)
    for trader, passkeys in run_as_cli(settings, traders.list_traders):
        table.add_row(
            trader.name,
            trader.role,
            ", ".join(sorted(trader.accounts)),
            "every order" if trader.step_up_every_order else "beyond the grant",
            str(passkeys),
            f"{trader.created_at:%Y-%m-%d %H:%M:%S}",
            "" if trader.disabled_at is None else f"{trader.disabled_at:%Y-%m-%d %H:%M:%S}",
        )
    console.print(table)


def _existing(settings: FloorSettings, name: str) -> traders.TraderRecord:
    trader = run_as_cli(settings, lambda conn: traders.get_trader(conn, name))
    if trader is None:
        console.print(f"[red]no trader {name}[/]; `floor traders list` shows them")
        raise typer.Exit(1)
    return trader


def _ended(ended: revocation.Ended) -> str:
    return f"{ended.sessions} session(s) and {ended.grants} arming grant(s) ended"


@app.command("passkeys")
def passkeys(name: Annotated[str, typer.Argument(help="The trader whose passkeys to list.")]) -> None:
    """The trader's passkeys: id, created, how it was added (an enrolment link, or from a session
    confirmed by which passkey), last used, sign count, synced or device-bound, status."""
    settings = FloorSettings()
    _existing(settings, name)
    table = Table(title=f"Passkeys of {name}", title_justify="left")
    for column in ("credential id", "created", "added", "last used", "sign count", "kind", "status"):
        table.add_column(column, overflow="fold")

    async def listed(conn: asyncpg.Connection) -> list[tuple[StoredCredential, bytes | None]]:
        return [
            (c, await passkey_confirmed_by(conn, c.credential_id))
            for c in await revocation.passkeys(conn, name)
        ]

    for c, confirmed_by in run_as_cli(settings, listed):
        table.add_row(
            revocation.credential_text(c.credential_id),
            f"{c.created_at:%Y-%m-%d %H:%M:%S}",
            "enrolment link"
            if confirmed_by is None
            else f"confirmed by {revocation.credential_text(confirmed_by)[:12]}",
            "" if c.last_used_at is None else f"{c.last_used_at:%Y-%m-%d %H:%M:%S}",
            str(c.sign_count),
            "synced" if c.backup_eligible or c.sign_count == 0 else "device-bound",
            "active" if c.revoked_at is None else f"revoked {c.revoked_at:%Y-%m-%d %H:%M:%S}",
        )
    console.print(table)


@app.command("revoke-passkey")
def revoke_passkey(
    name: Annotated[str, typer.Argument(help="The trader whose passkey to revoke.")],
    credential_prefix: Annotated[
        str, typer.Argument(help="The first characters of its id, as `floor traders passkeys` shows it.")
    ],
) -> None:
    """Revoke one passkey: it can no longer sign in, arm or confirm an order; the sessions it
    opened and the grants it gave end now."""
    settings = FloorSettings()
    _existing(settings, name)

    async def revoke(conn: asyncpg.Connection) -> tuple[str, revocation.Ended]:
        found = revocation.match_passkey(await revocation.passkeys(conn, name), credential_prefix)
        return revocation.credential_text(found.credential_id), await revocation.revoke_passkey(
            conn, name, found.credential_id
        )

    try:
        shown, ended = run_as_cli(settings, revoke)
    except traders.TraderError as exc:
        console.print(f"[red]passkey not revoked[/]: {exc}")
        raise typer.Exit(1) from None
    console.print(f"passkey {shown} of [bold]{name}[/] revoked; {_ended(ended)}")


@app.command("sign-out")
def sign_out(name: Annotated[str, typer.Argument(help="The trader to sign out everywhere.")]) -> None:
    """End every web session of the trader and its arming grants (it may sign in again)."""
    settings = FloorSettings()
    _existing(settings, name)
    ended = run_as_cli(settings, lambda conn: revocation.sign_out(conn, name))
    console.print(f"[bold]{name}[/] signed out: {_ended(ended)}")


@app.command("disable")
def disable(
    name: Annotated[str, typer.Argument(help="The trader to disable.")],
    operator: Annotated[
        str, typer.Option("--as", help="Operator whose key (var/keys/NAME.key) signs the key's revocation.")
    ] = OPERATOR,
) -> None:
    """Disable the trader: every passkey revoked, every session and grant ended, its enrolment
    links refused, and its signing key revoked (signed by the operator), so nothing it signed
    before the floor saw this is accepted after."""
    settings = FloorSettings()
    _existing(settings, name)
    signer = operator_key_or_exit(settings, operator)
    ended = run_as_cli(settings, lambda conn: revocation.disable_trader(conn, name))
    assert ended is not None  # checked above; traders are never deleted
    console.print(f"[bold]{name}[/] disabled: {ended.passkeys} passkey(s) revoked, {_ended(ended)}")
    agent = trader_agent_id(name)

    async def revoke_key(conn: asyncpg.Connection) -> str | None:
        active = await active_key_for(conn, agent)
        if active is None:
            return None
        await revoke_key_signed(conn, active.key_id, operator_id=operator, operator_key=signer)
        return active.key_id

    try:
        key_id = run_as_cli(settings, revoke_key)
    except (UnknownAgent, OperatorNotAuthorised) as exc:
        console.print(f"[red]its signing key was not revoked[/]: {exc}; `floor keys revoke {agent}`")
        raise typer.Exit(1) from None
    if key_id is None:
        console.print(f"{agent} had no active signing key")
    else:
        console.print(f"signing key {key_id} of {agent} revoked")
