"""``floor breaker status`` / ``arm`` / ``trip``: the circuit breaker's operator controls.

``arm`` and ``trip`` sign a ``breaker_arm`` / ``breaker_trip`` command with the operator's key
(``var/keys/operator.key``, or ``--as NAME``) and post it to the API door like ``floor order
submit``; the hot path ledgers it (naming the operator) and then changes state. The command
then waits for the hot path's control port to show that very command behind the trading
state, and prints it. ``status`` only reads the control port, which changes nothing.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Annotated, Any

import httpx
import typer

from config.settings import FloorSettings
from floor.door_client import post, sign_with_agent_key
from trading.commands import FLOOR_WIDE, Command, CommandKind, utc_now_ms

app = typer.Typer(
    help="The circuit breaker: see its state; trip or re-arm it with the operator's signed command.",
    no_args_is_help=True,
)

APPLY_TIMEOUT_S = 10.0
POLL_S = 0.1

Operator = Annotated[
    str, typer.Option("--as", help="Operator whose key (var/keys/NAME.key) signs the command.")
]
Api = Annotated[str | None, typer.Option(help="API base URL (default: from the settings)")]


def _control_url(settings: FloorSettings) -> str:
    return f"http://{settings.host}:{settings.hotpath_health_port}"


def breaker_command(kind: CommandKind, operator: str) -> Command:
    """A floor-wide breaker command (account ``*``) with a fresh id and nonce, issued now."""
    return Command(
        kind=kind,
        command_id=f"cli-{uuid.uuid4().hex}",
        agent_id=operator,
        account=FLOOR_WIDE,
        nonce=uuid.uuid4().hex,
        issued_at=utc_now_ms(),
    )


def _health(settings: FloorSettings) -> dict[str, Any]:
    try:
        body: dict[str, Any] = httpx.get(f"{_control_url(settings)}/health", timeout=5.0).json()
    except httpx.HTTPError as exc:
        typer.echo(f"cannot reach the hot path at {_control_url(settings)}: {exc}", err=True)
        raise typer.Exit(1) from None
    return body


def _submit_and_wait(kind: CommandKind, operator: str, api: str | None, done: str) -> None:
    settings = FloorSettings()
    command = breaker_command(kind, operator)
    envelope = sign_with_agent_key(command, settings)
    url = api or f"http://{settings.host}:{settings.api_port}"
    try:
        response = post(envelope, url)
    except httpx.HTTPError as exc:
        typer.echo(f"cannot reach the API at {url}: {exc}", err=True)
        raise typer.Exit(1) from None
    if response.status_code != 202:
        typer.echo(json.dumps({"http_status": response.status_code, **response.json()}))
        raise typer.Exit(1)
    deadline = time.monotonic() + APPLY_TIMEOUT_S
    while True:
        health = _health(settings)
        change = health.get("breaker") or {}
        if change.get("command_id") == command.command_id:
            state = health["trading_state"]
            typer.echo(f"breaker {done} by {operator} ({command.command_id}); trading state {state}")
            return
        if time.monotonic() > deadline:
            typer.echo(
                f"{command.command_id} was published but the hot path has not applied it within "
                f"{APPLY_TIMEOUT_S:.0f} s (trading state {health.get('trading_state')}); see "
                "`floor breaker status`, `floor ledger tail` and the hot path's log",
                err=True,
            )
            raise typer.Exit(1)
        time.sleep(POLL_S)


@app.command()
def arm(operator: Operator = "operator", api: Api = None) -> None:
    """Re-arm the breaker and resume intake after a trip (an operator's signed command)."""
    _submit_and_wait(CommandKind.BREAKER_ARM, operator, api, "re-armed")


@app.command()
def trip(operator: Operator = "operator", api: Api = None) -> None:
    """Halt the floor now: cancel every open order and refuse new ones until re-armed."""
    _submit_and_wait(CommandKind.BREAKER_TRIP, operator, api, "tripped")


@app.command()
def status() -> None:
    """Show the trading state (ACTIVE or HALTED), what set it and the broker link."""
    typer.echo(json.dumps(_health(FloorSettings())))
