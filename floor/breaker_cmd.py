"""``floor breaker arm`` / ``floor breaker status``: the circuit breaker's trader controls.

The hot path halts intake after a flash crash and stays halted until a trader re-arms it here;
the request goes to the hot path's control port on 127.0.0.1.
"""

from __future__ import annotations

import json

import httpx
import typer

from floor.settings import FloorSettings

app = typer.Typer(help="The circuit breaker: see its state, re-arm it after a trip.", no_args_is_help=True)


def _control_url(settings: FloorSettings) -> str:
    return f"http://{settings.host}:{settings.hotpath_health_port}"


@app.command()
def arm() -> None:
    """Re-arm the breaker and resume intake after a trip."""
    settings = FloorSettings()
    try:
        response = httpx.post(f"{_control_url(settings)}/breaker/arm", timeout=5.0)
    except httpx.HTTPError as exc:
        typer.echo(f"cannot reach the hot path at {_control_url(settings)}: {exc}", err=True)
        raise typer.Exit(1) from None
    body = response.json()
    state = body.get("trading_state")
    typer.echo(
        f"breaker re-armed; trading state {state}"
        if body.get("was_halted")
        else f"breaker was not tripped; trading state {state}"
    )


@app.command()
def status() -> None:
    """Show the trading state (ACTIVE or HALTED) and the broker link."""
    settings = FloorSettings()
    try:
        response = httpx.get(f"{_control_url(settings)}/health", timeout=5.0)
    except httpx.HTTPError as exc:
        typer.echo(f"cannot reach the hot path at {_control_url(settings)}: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps(response.json()))
