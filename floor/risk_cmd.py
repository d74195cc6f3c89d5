"""``floor risk``: show and change accounts' risk profiles. Every change is a signed ledger
entry, signed with an operator key made by ``floor keys new NAME --role operator``."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from typing import Any

import asyncpg
import typer
from rich.console import Console
from rich.table import Table

from config.settings import FloorSettings
from floor.keys import load_private_key
from ledger import risk_profiles
from trading.circuit_breaker import DEFAULT_RULE, BreakerRule, RuleInvalid
from trading.sizing import ProfileInvalid, RiskProfile

app = typer.Typer(help="Per-account risk profiles (Position Sizer and risk limits).", no_args_is_help=True)
console = Console()

_FIELDS = (
    ("max_trade_size", "Max Trade Size ($)"),
    ("max_dollar_risk", "Max Dollar Risk per trade ($)"),
    ("kelly_fraction", "Kelly fraction"),
    ("max_position", "Max position per symbol (shares)"),
    ("max_gross_exposure", "Max gross exposure ($)"),
    ("max_open_orders", "Max open orders"),
    ("staleness_ms", "Price staleness window (ms)"),
)


def _dec(name: str, raw: str | None) -> Decimal | None:
    if raw is None:
        return None
    try:
        return Decimal(raw)
    except InvalidOperation:
        raise typer.BadParameter(
            f"{raw!r} is not a decimal", param_hint=f"--{name.replace('_', '-')}"
        ) from None


@app.command("show")
def show(account: str | None = typer.Argument(None, help="One account (default: all).")) -> None:
    """Current profile(s), with the ledger entry that set each."""
    settings = FloorSettings()

    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(settings.role_url("cli"))
        try:
            return await conn.fetch(
                "SELECT account, ledger_seq, updated_at FROM risk_profiles"
                " WHERE $1::text IS NULL OR account = $1 ORDER BY account",
                account,
            )
        finally:
            await conn.close()

    async def profiles() -> dict[str, RiskProfile]:
        conn = await asyncpg.connect(settings.role_url("cli"))
        try:
            return await risk_profiles.all_profiles(conn)
        finally:
            await conn.close()

    rows = asyncio.run(run())
    if not rows:
        console.print(f"no risk profile for {account}" if account else "no risk profiles yet")
        raise typer.Exit(1 if account else 0)
    current = asyncio.run(profiles())
    for r in rows:
        profile = current[r["account"]]
        table = Table(
            title=f"{r['account']} (ledger entry {r['ledger_seq']}, {r['updated_at']:%Y-%m-%d %H:%M:%S}Z)",
            title_justify="left",
        )
        table.add_column("limit")
        table.add_column("value", justify="right")
        for name, label in _FIELDS:
            table.add_row(label, str(getattr(profile, name)))
        table.add_row("Circuit breaker", _rule_text(profile.breaker))
        console.print(table)


def _rule_text(rule: BreakerRule | None) -> str:
    shown = rule or DEFAULT_RULE
    text = f"-{shown.drop_pct}% within {shown.window_ms} ms"
    if shown.symbols:
        text += "; " + ", ".join(f"{s} -{p}%" for s, p in shown.symbols.items())
    return text + ("" if rule is not None else " (default)")


def _breaker_rule(
    current: BreakerRule | None, drop_pct: str | None, window_ms: int | None, symbols: list[str]
) -> BreakerRule | None:
    """The account's breaker rule after the options: the current one (or the default) with the
    given threshold, window and per-symbol thresholds (``SYM=PCT``; ``SYM=`` drops SYM's)."""
    if drop_pct is None and window_ms is None and not symbols:
        return current
    base = current or DEFAULT_RULE
    per_symbol = dict(base.symbols)
    for given in symbols:
        symbol, sep, pct = given.partition("=")
        if not sep or not symbol:
            raise typer.BadParameter(f"{given!r}: write SYMBOL=PERCENT", param_hint="--breaker-symbol")
        if pct:
            per_symbol[symbol.upper()] = _dec("breaker_symbol", pct) or Decimal(0)
        else:
            per_symbol.pop(symbol.upper(), None)
    return BreakerRule(
        drop_pct=base.drop_pct if drop_pct is None else (_dec("breaker_drop_pct", drop_pct) or Decimal(0)),
        window_ms=base.window_ms if window_ms is None else window_ms,
        symbols=per_symbol,
    )


@app.command("set")
def set_(
    account: str = typer.Argument(..., help="Broker account id."),
    max_trade_size: str | None = typer.Option(None, help="Dollars."),
    max_dollar_risk: str | None = typer.Option(None, help="Dollars lost at the stop, per trade."),
    kelly_fraction: str | None = typer.Option(None, help="Multiplier on Kelly, in (0, 1]."),
    max_position: int | None = typer.Option(None, help="Shares per symbol."),
    max_gross_exposure: str | None = typer.Option(None, help="Dollars."),
    max_open_orders: int | None = typer.Option(None),
    staleness_ms: int | None = typer.Option(None, help="Milliseconds."),
    breaker_drop_pct: str | None = typer.Option(
        None, help="Circuit breaker: the fall (percent) that trips it, for every symbol (default 10)."
    ),
    breaker_window_ms: int | None = typer.Option(
        None, help="Circuit breaker: the fall is from the highest price within this window (default 60000)."
    ),
    breaker_symbol: list[str] = typer.Option(  # noqa: B008 - typer's way of declaring a list option
        [], help="Circuit breaker: SYMBOL=PERCENT, that symbol's own threshold (SYMBOL= removes it)."
    ),
    operator: str = typer.Option(
        "operator", "--as", help="Operator whose key (var/keys/NAME.key) signs the change."
    ),
) -> None:
    """Change some or all limits; unspecified ones keep their current value."""
    settings = FloorSettings()
    try:
        key = load_private_key(settings, operator)
    except FileNotFoundError:
        console.print(f"[red]no key for {operator}[/]: run `floor keys new {operator} --role operator` first")
        raise typer.Exit(1) from None
    given: dict[str, Any] = {
        "max_trade_size": _dec("max_trade_size", max_trade_size),
        "max_dollar_risk": _dec("max_dollar_risk", max_dollar_risk),
        "kelly_fraction": _dec("kelly_fraction", kelly_fraction),
        "max_position": max_position,
        "max_gross_exposure": _dec("max_gross_exposure", max_gross_exposure),
        "max_open_orders": max_open_orders,
        "staleness_ms": staleness_ms,
    }
    given = {k: v for k, v in given.items() if v is not None}

    async def run() -> tuple[int, RiskProfile]:
        conn = await asyncpg.connect(settings.role_url("cli"))
        try:
            current = await risk_profiles.get_profile(conn, account)
            rule = _breaker_rule(
                None if current is None else current.breaker,
                breaker_drop_pct,
                breaker_window_ms,
                breaker_symbol,
            )
            if rule is not None:
                given["breaker"] = rule
            if current is None:
                missing = [
                    f"--{n.replace('_', '-')}" for n, _ in _FIELDS if n not in given and n != "kelly_fraction"
                ]
                if missing:
                    raise ProfileInvalid(
                        missing[0].lstrip("-"), f"first profile of {account} needs {', '.join(missing)}"
                    )
                profile = RiskProfile(**given)
            else:
                profile = replace(current, **given)
            record = await risk_profiles.set_profile(
                conn, account, profile, operator_id=operator, operator_key=key
            )
            return record.seq, profile
        finally:
            await conn.close()

    try:
        seq, profile = asyncio.run(run())
    except (ProfileInvalid, RuleInvalid) as exc:
        console.print(f"[red]refused[/]: {exc}")
        raise typer.Exit(1) from None
    except risk_profiles.OperatorNotAuthorised as exc:
        console.print(f"[red]refused[/]: {exc}")
        raise typer.Exit(1) from None
    console.print(f"risk profile of [bold]{account}[/] set (ledger entry {seq}):")
    for name, label in _FIELDS:
        console.print(f"  {label}: {getattr(profile, name)}")
    console.print(f"  Circuit breaker: {_rule_text(profile.breaker)}")
