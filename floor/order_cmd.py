"""``floor order submit``: sign a command with an agent's key and post it to the API door.

The command is built and validated locally, so a schema mistake is reported before anything is
sent; signing and posting are :mod:`floor.door_client`'s.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated

import typer

from config.settings import FloorSettings
from floor.door_client import decimal_option as _decimal
from floor.door_client import submit as submit_signed
from trading.commands import (
    Command,
    CommandInvalid,
    CommandKind,
    Edge,
    OrderType,
    Side,
    TimeInForce,
    utc_now_ms,
)

app = typer.Typer(help="Place orders through the API door, signed with an agent's key.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Keeps ``submit`` a sub-command (``floor order submit``) even while it is the only one."""


def build_command(
    *,
    agent: str,
    account: str,
    symbol: str,
    side: str,
    order_type: str,
    limit: Decimal | None,
    stop_price: Decimal | None,
    p: Decimal,
    b: Decimal,
    stop: Decimal,
    quantity: int | None,
    tif: str,
) -> Command:
    """An ``enter`` command with a fresh command id and nonce, issued now."""
    return Command(
        kind=CommandKind.ENTER,
        command_id=f"cli-{uuid.uuid4().hex}",
        agent_id=agent,
        account=account,
        nonce=uuid.uuid4().hex,
        issued_at=utc_now_ms(),
        symbol=symbol,
        side=Side(side),
        order_type=OrderType(order_type),
        limit_price=limit,
        stop_price=stop_price,
        edge=Edge(p=p, b=b, stop_price=stop),
        tif=TimeInForce(tif),
        quantity=quantity,
    )


@app.command()
def submit(
    agent: Annotated[str, typer.Option(help="Agent whose key signs the command")],
    account: Annotated[str, typer.Option(help="Broker account")],
    symbol: Annotated[str, typer.Option(help="Instrument, e.g. AAPL")],
    side: Annotated[str, typer.Option(help="BUY or SELL")],
    p: Annotated[str, typer.Option("--p", help="Claimed win probability, 0 < p < 1")],
    b: Annotated[str, typer.Option("--b", help="Claimed payoff ratio (win / loss)")],
    stop: Annotated[str, typer.Option("--stop", help="Where the trade is wrong (the edge's stop)")],
    order_type: Annotated[str, typer.Option("--type", help="MKT, LMT, STP, STP_LMT")] = "LMT",
    limit: Annotated[str | None, typer.Option(help="Limit price (LMT, STP_LMT)")] = None,
    stop_price: Annotated[str | None, typer.Option(help="Stop trigger of a STP / STP_LMT order")] = None,
    quantity: Annotated[int | None, typer.Option(help="Upper bound on the sized quantity")] = None,
    tif: Annotated[str, typer.Option(help="DAY, GTC or IOC")] = "DAY",
    api: Annotated[str | None, typer.Option(help="API base URL (default: from the settings)")] = None,
) -> None:
    """Sign an enter command with AGENT's key and post it; prints the API's answer."""
    settings = FloorSettings()
    try:
        command = build_command(
            agent=agent,
            account=account,
            symbol=symbol,
            side=side.upper(),
            order_type=order_type.upper(),
            limit=_decimal(limit, "--limit"),
            stop_price=_decimal(stop_price, "--stop-price"),
            p=_decimal(p, "--p") or Decimal(0),
            b=_decimal(b, "--b") or Decimal(0),
            stop=_decimal(stop, "--stop") or Decimal(0),
            quantity=quantity,
            tif=tif.upper(),
        )
    except (CommandInvalid, ValueError) as exc:
        typer.echo(f"invalid command: {exc}", err=True)
        raise typer.Exit(2) from None
    submit_signed(command, settings, api)
