"""``floor api-tokens``: bearer tokens for programs that query and subscribe to the API.

A token is printed once and stored only as its SHA-256; ``read`` sees orders, positions, books
and the breaker, ``ops`` also the security events. Programs trade with signed commands of their
own key (``submitCommand``), never with a token alone.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from config.settings import FloorSettings
from floor.database import run_as_cli
from ledger import api_tokens

app = typer.Typer(help="Bearer tokens for API clients.", no_args_is_help=True)
console = Console()


@app.command("new")
def new(
    name: Annotated[str, typer.Argument(help="Who the token is for (letters, digits, '.', '_', '-').")],
    role: Annotated[str, typer.Option("--role", "-r", help="read or ops.")] = api_tokens.ROLE_READ,
) -> None:
    """Issue a token and print it once."""
    try:
        record, token = run_as_cli(FloorSettings(), lambda conn: api_tokens.issue_token(conn, name, role))
    except api_tokens.ApiTokenError as exc:
        console.print(f"[red]no token issued[/]: {exc}")
        raise typer.Exit(1) from None
    console.print(
        f"token for [bold]{record.name}[/] (role {record.role}); it is shown only now, send it as"
        " `Authorization: Bearer <token>`:"
    )
    print(token)


@app.command("revoke")
def revoke(name: Annotated[str, typer.Argument(help="Whose active token to revoke.")]) -> None:
    """Revoke a token: the API refuses it from the next request on."""
    try:
        record = run_as_cli(FloorSettings(), lambda conn: api_tokens.revoke_token(conn, name))
    except api_tokens.ApiTokenError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    console.print(f"token of [bold]{record.name}[/] revoked")


@app.command("list")
def list_tokens() -> None:
    """Every token issued (never the tokens themselves)."""
    table = Table(title="API tokens", title_justify="left")
    for column in ("name", "role", "created", "status"):
        table.add_column(column)
    for record in run_as_cli(FloorSettings(), api_tokens.list_tokens):
        status = "[red]revoked[/]" if record.revoked_at else "[green]active[/]"
        table.add_row(record.name, record.role, f"{record.created_at:%Y-%m-%d %H:%M:%S}", status)
    console.print(table)
