"""``floor paper ...``: drive the paper venue's control API for scripted scenarios.

Examples::

    floor paper status
    floor paper flash-crash AAPL 10 --ms 200
    floor paper freeze primary 5
    floor paper reset --seed 7

Every request carries the venue's control token, read from ``<var>/paper/control.token``
(:func:`control_token_path`), which the venue makes at its first start.

Also :func:`venue_spec`, the supervisor spec that starts the venue process (``floor up`` and the
test fixtures use it).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from config.processes import Probe, ServiceSpec, tcp_probe
from config.settings import FloorSettings
from paper.venue.control_token import TokenFileError, authorization, read_token

app = typer.Typer(
    help="Control the paper venue (flash crashes, gateway faults, resets).", no_args_is_help=True
)

VENUE_SERVICE = "paper-venue"


class PaperControlError(RuntimeError):
    """The venue's control API refused a request or could not be reached."""


def venue_spec(
    settings: FloorSettings,
    *,
    seed: int | None = None,
    time_scale: float = 1.0,
    depth_rates: Mapping[str, float] | None = None,
    paused: bool = False,
    name: str = VENUE_SERVICE,
    counters_file: Path | None = None,
    flow: str | None = None,
) -> ServiceSpec:
    """Supervisor spec for ``python -m paper.venue`` on the settings' venue ports.

    ``depth_rates`` maps a symbol (or ``"*"`` for all) to model events per second; ``flow``
    names the order-flow model (default: the settings' ``paper_flow``). permIds and
    order-id high-water marks persist in ``counters_file`` (default under ``var_dir``), so they
    keep increasing across venue restarts.
    """
    counters = counters_file or settings.var_dir / "paper" / "venue-counters.json"
    argv = [
        sys.executable,
        "-m",
        "paper.venue",
        "--host",
        settings.host,
        "--port",
        str(settings.venue_port),
        "--control-port",
        str(settings.venue_control_port),
        "--token-file",
        str(control_token_path(settings)),
        "--seed",
        str(settings.paper_seed if seed is None else seed),
        "--time-scale",
        repr(time_scale),
        "--flow",
        settings.paper_flow if flow is None else flow,
    ]
    for symbol, rate in (depth_rates or {}).items():
        argv += ["--depth-rate", repr(rate) if symbol == "*" else f"{symbol}={rate!r}"]
    if paused:
        argv.append("--paused")
    argv += ["--counters-file", str(counters)]
    # The paper Schwab API's accounts are the venue's too, each with its own cash and positions.
    argv += ["--sub-accounts", settings.schwab_accounts]
    return ServiceSpec(
        name=name,
        argv=argv,
        address=f"{settings.host}:{settings.venue_port} (control {settings.venue_control_port})",
        probe=_both(
            tcp_probe(settings.host, settings.venue_port),
            tcp_probe(settings.host, settings.venue_control_port),
        ),
        ports=((settings.host, settings.venue_port), (settings.host, settings.venue_control_port)),
        ready_timeout=20.0,
        hint="read the venue log; check that the venue ports are free",
    )


def _both(first: Probe, second: Probe) -> Probe:
    return lambda: first() and second()


def control_url(settings: FloorSettings) -> str:
    return f"http://{settings.host}:{settings.venue_control_port}"


def control_token_path(settings: FloorSettings) -> Path:
    """The venue's control token (0600), made by the venue at its first start."""
    return settings.var_dir / "paper" / "control.token"


def control_token(settings: FloorSettings) -> str:
    """The token control requests carry; raises :class:`PaperControlError` without one."""
    try:
        return read_token(control_token_path(settings))
    except (TokenFileError, OSError) as exc:
        raise PaperControlError(str(exc)) from exc


def control_request(
    url: str, method: str, path: str, body: Mapping[str, Any] | None = None, *, token: str
) -> Any:
    """One control API call; returns the JSON reply or raises :class:`PaperControlError`."""
    try:
        response = httpx.request(
            method, url.rstrip("/") + path, json=dict(body or {}), headers=authorization(token), timeout=10.0
        )
    except httpx.HTTPError as exc:
        raise PaperControlError(f"cannot reach the paper venue at {url}: {exc}") from exc
    try:
        payload = response.json()
    except ValueError as exc:
        raise PaperControlError(f"paper venue answered {response.status_code} without JSON") from exc
    if response.status_code != 200:
        raise PaperControlError(payload.get("error", f"HTTP {response.status_code}"))
    return payload


# ------------------------------------------------------------------------------------- commands

UrlOption = Annotated[
    str | None,
    typer.Option("--url", help="control API URL (default from settings; token from FLOOR_VAR_DIR)"),
]


def _call(url: str | None, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
    settings = FloorSettings()
    target = url or control_url(settings)
    try:
        return control_request(target, method, path, body, token=control_token(settings))
    except PaperControlError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


def _print(payload: Any) -> None:
    typer.echo(json.dumps(payload, indent=2))


@app.command()
def status(url: UrlOption = None) -> None:
    """Symbols (bid/ask/mid/last), open orders, connected gateways, clock."""
    data = _call(url, "GET", "/status")
    typer.echo(
        f"seed {data['seed']}  time scale {data['time_scale']}  "
        f"{'paused' if data['paused'] else 'running'}  account {data['account']}"
    )
    for s in data["symbols"]:
        typer.echo(
            f"  {s['symbol']:<6} bid {s['bid']}  ask {s['ask']}  mid {s['mid']}  last {s['last']}  "
            f"vol {s['volume']}  rate {s['event_rate']}/s"
        )
    typer.echo(f"open orders {data['open_orders']}  executions {data['executions']}")
    typer.echo(f"gateways: {', '.join(data['gateways']) or '(none)'}")


@app.command("flash-crash")
def flash_crash(
    symbol: str,
    pct: Annotated[float, typer.Argument(help="drop in percent, e.g. 10")],
    ms: Annotated[float, typer.Option(help="duration of the fall in milliseconds")] = 200.0,
    url: UrlOption = None,
) -> None:
    """Drop SYMBOL's price by PCT percent within MS milliseconds."""
    data = _call(url, "POST", f"/symbols/{symbol}/flash-crash", {"pct": str(pct), "ms": ms})
    _print_symbol(data, symbol)


@app.command()
def move(
    symbol: str,
    pct: Annotated[float, typer.Argument(help="signed move in percent, e.g. -10 or 5")],
    ms: Annotated[float, typer.Option(help="duration of the move in milliseconds")] = 200.0,
    url: UrlOption = None,
) -> None:
    """Move SYMBOL's price by PCT percent (signed) within MS milliseconds."""
    data = _call(url, "POST", f"/symbols/{symbol}/move", {"pct": str(pct), "ms": ms})
    _print_symbol(data, symbol)


def _print_symbol(data: Any, symbol: str) -> None:
    for s in data["status"]["symbols"]:
        if s["symbol"] == symbol.upper():
            typer.echo(f"{s['symbol']}: bid {s['bid']} ask {s['ask']} mid {s['mid']} (moving)")


@app.command()
def drop(gateway: str, url: UrlOption = None) -> None:
    """Close every API client connection of GATEWAY."""
    _call(url, "POST", f"/gateways/{gateway}/drop")
    typer.echo(f"{gateway}: client connections dropped")


@app.command()
def freeze(gateway: str, seconds: float, url: UrlOption = None) -> None:
    """Make GATEWAY silent for SECONDS (sockets stay open, no bytes either way)."""
    _call(url, "POST", f"/gateways/{gateway}/freeze", {"seconds": seconds})
    typer.echo(f"{gateway}: frozen for {seconds:g} s")


@app.command()
def kill(gateway: str, url: UrlOption = None) -> None:
    """Make GATEWAY's process exit at once."""
    _call(url, "POST", f"/gateways/{gateway}/kill")
    typer.echo(f"{gateway}: killed")


@app.command()
def reset(
    seed: Annotated[int | None, typer.Option(help="seed (default: the current one)")] = None,
    paused: Annotated[bool | None, typer.Option("--paused/--running", help="market clock state")] = None,
    time_ns: Annotated[int | None, typer.Option(help="restart the market clock at this time")] = None,
    url: UrlOption = None,
) -> None:
    """Start the venue over from a seed: fresh books, no orders, fills or positions."""
    body: dict[str, Any] = {}
    if seed is not None:
        body["seed"] = seed
    if paused is not None:
        body["paused"] = paused
    if time_ns is not None:
        body["time_ns"] = time_ns
    data = _call(url, "POST", "/reset", body)
    typer.echo(f"reset to seed {data['status']['seed']}")


@app.command()
def rate(
    events_per_second: float,
    symbol: Annotated[str | None, typer.Option(help="one symbol (default: all)")] = None,
    url: UrlOption = None,
) -> None:
    """Set the order-flow event rate (book updates per second)."""
    path = f"/symbols/{symbol}/rate" if symbol else "/rate"
    _call(url, "POST", path, {"rate": events_per_second})
    typer.echo(f"{symbol or 'all symbols'}: {events_per_second:g} events/s")


@app.command()
def clock(
    paused: Annotated[bool | None, typer.Option("--pause/--resume", help="stop or restart the clock")] = None,
    advance_ms: Annotated[float, typer.Option(help="move a paused clock forward")] = 0.0,
    time_scale: Annotated[float | None, typer.Option(help="market seconds per real second")] = None,
    url: UrlOption = None,
) -> None:
    """Pause, resume, step or rescale the market clock."""
    body: dict[str, Any] = {"advance_ms": advance_ms}
    if paused is not None:
        body["paused"] = paused
    if time_scale is not None:
        body["time_scale"] = time_scale
    data = _call(url, "POST", "/clock", body)["status"]
    state = "paused" if data["paused"] else "running"
    typer.echo(f"clock {state} at {data['time_ns']} x{data['time_scale']}")


@app.command("session-close")
def session_close(url: UrlOption = None) -> None:
    """End the trading day: expire every open DAY order."""
    data = _call(url, "POST", "/session/close")
    typer.echo(f"{data['expired']} DAY orders expired")


@app.command()
def venue(
    seed: Annotated[int | None, typer.Option(help="seed (default from settings)")] = None,
    time_scale: Annotated[float, typer.Option(help="market seconds per real second")] = 1.0,
    depth_rate: Annotated[list[str] | None, typer.Option(help="[SYMBOL=]RATE, repeatable")] = None,
) -> None:
    """Run the venue in the foreground on the settings' ports."""
    from paper.venue.__main__ import main

    settings = FloorSettings()
    argv: Sequence[str] = [
        "--host", settings.host,
        "--port", str(settings.venue_port),
        "--control-port", str(settings.venue_control_port),
        "--token-file", str(control_token_path(settings)),
        "--seed", str(settings.paper_seed if seed is None else seed),
        "--time-scale", repr(time_scale),
        "--flow", settings.paper_flow,
    ]  # fmt: skip
    for value in depth_rate or []:
        argv = [*argv, "--depth-rate", value]
    main(list(argv))
