"""Signing a command with an agent's key file and posting it to the API door.

Shared by the CLI commands that place commands (``floor order submit``, ``floor sniper
start``). The key is ``<var>/keys/<agent>.key`` (what ``floor keys new AGENT`` writes); the API
answers 202 (published), 403 (refused by the sentry), 422 (bad field), 429 (too many requests
from this address: the detail says how long to wait) or 503 (Kafka or the ledger unreachable).
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation

import httpx
import typer

from config.settings import FloorSettings
from floor.keys import key_path, load_private_key
from trading.commands import Command
from trading.signing import KeyInvalid, SignedCommand, sign_command


def sign_with_agent_key(command: Command, settings: FloorSettings) -> SignedCommand:
    path = key_path(settings, command.agent_id)
    try:
        key = load_private_key(settings, command.agent_id)
    except FileNotFoundError:
        raise typer.BadParameter(
            f"no key for agent {command.agent_id!r} at {path}; "
            f"create one with `floor keys new {command.agent_id}`",
            param_hint="--agent",
        ) from None
    except KeyInvalid as exc:
        raise typer.BadParameter(f"{path}: {exc}", param_hint="--agent") from None
    return sign_command(command, key)


def post(envelope: SignedCommand, api_url: str, timeout: float = 10.0) -> httpx.Response:
    return httpx.post(
        f"{api_url.rstrip('/')}/v1/commands",
        content=envelope.to_wire(),
        headers={"Content-Type": "application/json"},
        timeout=timeout,
    )


def submit(command: Command, settings: FloorSettings, api: str | None, **extra: object) -> None:
    """Sign ``command`` with its agent's key, post it, and print the API's answer as one JSON
    line (with ``extra`` fields); exit 1 unless the door took it (202)."""
    envelope = sign_with_agent_key(command, settings)
    url = api or f"http://{settings.host}:{settings.api_port}"
    try:
        response = post(envelope, url)
    except httpx.HTTPError as exc:
        typer.echo(f"cannot reach the API at {url}: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps({"http_status": response.status_code, **response.json(), **extra}))
    if response.status_code != 202:
        raise typer.Exit(1)


def decimal_option(value: str | None, name: str) -> Decimal | None:
    """A decimal command-line option, exact (parsed from the text, never through a float)."""
    if value is None:
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        raise typer.BadParameter(f"not a decimal: {value!r}", param_hint=name) from None
