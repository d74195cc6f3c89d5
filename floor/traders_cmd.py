"""``floor traders``: add a trader (its own signing key and a one-time enrolment link for its
passkey), issue a new link, list them.

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
from ledger import traders
from ledger.keys import ROLE_TRADER, KeyRegistryError
from ledger.operator_changes import OperatorNotAuthorised
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

    async def issue(conn: asyncpg.Connection) -> tuple[str, datetime] | None:
        if await traders.get_trader(conn, name) is None:
            return None
        return await traders.new_enrolment(conn, name, timedelta(seconds=settings.enrolment_ttl_s))

    issued = run_as_cli(settings, issue)
    if issued is None:
        console.print(f"[red]no trader {name}[/]; `floor traders add {name} --accounts ...` adds one")
        raise typer.Exit(1)
    _print_link(settings, name, *issued)


@app.command("list")
def list_traders() -> None:
    """Every trader: role, accounts, whether every order needs a ceremony, passkeys registered."""
    settings = FloorSettings()
    table = Table(title="Traders", title_justify="left")
    for column in ("trader", "role", "accounts", "step-up", "passkeys", "created"):
        table.add_column(column)
    for trader, passkeys in run_as_cli(settings, traders.list_traders):
        table.add_row(
            trader.name,
            trader.role,
            ", ".join(sorted(trader.accounts)),
            "every order" if trader.step_up_every_order else "beyond the grant",
            str(passkeys),
            f"{trader.created_at:%Y-%m-%d %H:%M:%S}",
        )
    console.print(table)
