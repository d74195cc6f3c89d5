"""What the paper-loop audit reads: the ledger's own entries and the venue's own executions.

Never the hot path's counters. From the ledger (as the CLI's role): every accepted ``enter`` and
``exit`` entry after a sequence number, with its signed command (re-parsed from the ledgered
payload) and the floor's detail (quantity sent, touch, bankroll ...); every risk profile change
(so each order is held against the profile in force when it was ledgered); the first
``submitted`` state row of each order (the broker's acknowledgement, for latency). From the
venue's control API (its token in ``var/paper/control.token``): ``GET /orders`` and
``GET /executions`` (``orderRef`` is the command id), the venue's own record of every order and
fill. :func:`trading.paper_loop_audit.audit` does the checking.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg
import httpx

from config.settings import FloorSettings
from floor.paper_cmd import PaperControlError, control_token, control_url
from ledger.risk_profiles import KIND_RISK_PROFILE_SET, RiskProfileChange
from paper.venue.control_token import authorization
from trading.commands import Command
from trading.paper_loop_audit import AuditInput, LedgeredOrder, ProfileChange, VenueExecution, VenueOrder

_ORDERS = """
SELECT seq, payload, detail FROM ledger_entries
 WHERE kind = ANY($1::text[]) AND decision = 'accepted' AND authenticated AND seq > $2
   AND ($3::text[] IS NULL OR agent_id = ANY($3::text[])
        OR (kind = 'exit' AND command_id LIKE '%.%' AND split_part(command_id, '.', 1) IN (
            SELECT command_id FROM ledger_entries
             WHERE authenticated AND decision = 'accepted' AND seq > $2 AND agent_id = ANY($3::text[]))))
 ORDER BY seq
"""
"""The agents' accepted orders, and the floor's protective stops on their positions (exits whose
id is ``<agent's command>.…``: :func:`trading.round_trips.root_command_id`)."""
_PROFILES = """
SELECT seq, payload FROM ledger_entries WHERE kind = $1 AND decision = 'applied' ORDER BY seq
"""
_SUBMITTED = """
SELECT command_id, min(ts) AS ts FROM order_events
 WHERE kind = 'submitted' AND command_id = ANY($1::text[]) GROUP BY command_id
"""
ORDER_KINDS = ("enter", "exit")


async def read_loop_records(
    settings: FloorSettings,
    *,
    since_seq: int = 0,
    agents: Collection[str] | None = None,
    conn: asyncpg.Connection | None = None,
    signal_mids: Mapping[str, Decimal] | None = None,
) -> AuditInput:
    """The audit's input: ledger entries after ``since_seq`` (of ``agents`` only, if given) and
    the venue's orders and executions. ``conn`` None: a connection of the CLI's own role for the
    read. ``signal_mids``: the mid each command's agent saw when it signalled, by command id,
    where the agent said (slippage is measured from it; nothing else is taken from the agent)."""
    if conn is None:
        own = await asyncpg.connect(settings.role_url("cli"))
        try:
            orders, profiles = await read_ledger(own, since_seq=since_seq, agents=agents)
        finally:
            await own.close()
    else:
        orders, profiles = await read_ledger(conn, since_seq=since_seq, agents=agents)
    if signal_mids:
        orders = [replace(o, signal_mid=signal_mids.get(o.command.command_id)) for o in orders]
    # Read after the ledger, so every order the ledger holds that reached the venue is listed.
    url, token = control_url(settings), control_token(settings)
    venue_orders = [_venue_order(row) for row in await _control_get(url, token, "/orders", "orders")]
    executions = [_execution(row) for row in await _control_get(url, token, "/executions", "executions")]
    return AuditInput(orders=orders, profiles=profiles, executions=executions, venue_orders=venue_orders)


async def read_ledger(
    conn: asyncpg.Connection, *, since_seq: int = 0, agents: Collection[str] | None = None
) -> tuple[list[LedgeredOrder], list[ProfileChange]]:
    """Accepted order entries after ``since_seq`` and every risk profile change, oldest first."""
    wanted = None if agents is None else list(agents)
    rows = await conn.fetch(_ORDERS, list(ORDER_KINDS), since_seq, wanted)
    commands = [(int(r["seq"]), _command(bytes(r["payload"])), _detail(r["detail"])) for r in rows]
    submitted: dict[str, datetime] = {}
    if commands:
        ids = [c.command_id for _, c, _ in commands]
        submitted = {r["command_id"]: r["ts"] for r in await conn.fetch(_SUBMITTED, ids)}
    orders = [
        LedgeredOrder(seq, command, detail, submitted_at=submitted.get(command.command_id))
        for seq, command, detail in commands
    ]
    profiles = [
        ProfileChange(int(r["seq"]), change.account, change.profile)
        for r in await conn.fetch(_PROFILES, KIND_RISK_PROFILE_SET)
        for change in [RiskProfileChange.from_json_dict(json.loads(bytes(r["payload"])))]
    ]
    return orders, profiles


async def _control_get(url: str, token: str, path: str, key: str) -> list[dict[str, Any]]:
    """One of the venue's lists (``GET /orders``, ``GET /executions``)."""
    try:
        async with httpx.AsyncClient(timeout=30.0, headers=authorization(token)) as client:
            response = await client.get(url.rstrip("/") + path)
    except httpx.HTTPError as exc:
        raise PaperControlError(
            f"cannot reach the paper venue's control API at {url}: {exc}; is the stack up (`floor status`)?"
        ) from exc
    if response.status_code != 200:
        raise PaperControlError(
            f"the paper venue answered {response.status_code} to GET {path}: {response.text[:200]}"
        )
    rows: list[dict[str, Any]] = response.json()[key]
    return rows


def _venue_order(row: dict[str, Any]) -> VenueOrder:
    return VenueOrder(
        str(row["order_ref"]),
        int(row["perm_id"]),
        int(row["total_qty"]),
        int(row["filled"]),
        str(row["status"]),
    )


def _execution(row: dict[str, Any]) -> VenueExecution:
    return VenueExecution(
        str(row["exec_id"]), str(row["order_ref"]), int(row["shares"]), Decimal(row["price"])
    )


def _command(payload: bytes) -> Command:
    return Command.from_json_dict(json.loads(payload))


def _detail(raw: str | None) -> dict[str, Any]:
    if raw is None:
        return {}
    parsed = json.loads(raw)
    return parsed if isinstance(parsed, dict) else {}
