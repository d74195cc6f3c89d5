"""The end of every chaos scenario: read the venue's and the ledger's records, wait (bounded)
for the floor to settle, then assert the checker finds nothing and ``floor ledger verify`` passes.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict

import asyncpg

from tests.chaos.checker import Entry, Records, Sent, StateRow, VenueFill, VenueOrder, Violation, check
from tests.chaos.floor import ChaosFloor
from trading.iceberg_parents import CONTROL

SETTLE_S = 30.0
"""How long the floor may take, after the load and the fault, to bring its records in line."""
SHOWN = 25


async def read_records(floor: ChaosFloor, sent: Sequence[Sent]) -> Records:
    ids = [s.command_id for s in sent]
    async with floor.pool.acquire() as conn:
        # The floor's own orders for the load's positions (protective stops, stops placed again:
        # ``<entry id>.stop-...``, ``<id>.restop<n>``) are owed like the load's: held to the same rules.
        own = await conn.fetch(
            "SELECT DISTINCT command_id FROM ledger_entries WHERE agent_id = $1"
            " AND split_part(command_id, '.', 1) = ANY($2::text[])",
            CONTROL,
            ids,
        )
        sent = (*sent, *(Sent(r["command_id"], "exit") for r in own if r["command_id"] not in ids))
        ids = [s.command_id for s in sent]
        entries = await conn.fetch(
            "SELECT command_id, decision, reason, authenticated, payload FROM ledger_entries"
            " WHERE command_id = ANY($1::text[]) OR NOT authenticated ORDER BY seq",
            ids,
        )
        states = await conn.fetch(
            "SELECT command_id, kind, filled_qty, exec_id FROM order_events"
            " WHERE command_id = ANY($1::text[]) ORDER BY id",
            ids,
        )
    orders = (await floor.paper.acontrol("GET", "/orders"))["orders"]
    fills = (await floor.paper.acontrol("GET", "/executions"))["executions"]
    return Records(
        sent=tuple(sent),
        entries=tuple(
            Entry(cid, r["decision"], r["reason"], r["authenticated"])
            for r in entries
            if (cid := r["command_id"] or _evidence_of(r["payload"])) is not None
        ),
        states=tuple(StateRow(r["command_id"], r["kind"], r["filled_qty"], r["exec_id"]) for r in states),
        venue_orders=tuple(
            VenueOrder(o["order_ref"], o["perm_id"], o["status"], o["filled"]) for o in orders
        ),
        venue_fills=tuple(VenueFill(e["exec_id"], e["order_ref"], e["shares"]) for e in fills),
    )


async def assert_nothing_lost(floor: ChaosFloor, sent: Sequence[Sent], settle_s: float = SETTLE_S) -> Records:
    """Poll until the checker finds nothing or ``settle_s`` runs out; then fail naming every
    command the floor let down, with a summary of what happened and the end of the hot path's
    log. Last, the ledger must verify as ``floor ledger verify`` does."""
    deadline = time.monotonic() + settle_s
    while True:
        try:
            records = await read_records(floor, sent)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            # Postgres is still coming back after a scenario's restart.
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)
            continue
        violations = check(records)
        if not violations or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    report = await floor.verify_ledger()
    if report.first_bad is not None or report.problems:
        violations.append(
            Violation("-", "ledger_verify", f"{report.first_bad}; {'; '.join(report.problems)}")
        )
    if violations:
        _keep(floor, violations, records)
    assert not violations, _explain(violations, records, floor)
    print(summary(records))  # shown with -s and in a failing test's captured output
    return records


def _evidence_of(payload: bytes) -> str | None:
    """The command id inside an unauthenticated entry (evidence of a refusal: such an entry
    leaves the command id column to the genuine command)."""
    try:
        command_id = json.loads(payload).get("command_id")
    except (ValueError, AttributeError):
        return None
    return command_id if isinstance(command_id, str) else None


def summary(records: Records) -> str:
    """What the run came to: decisions by reason, venue orders by status, fills."""
    decisions = Counter(e.reason or e.decision for e in records.entries)
    statuses = Counter(o.status for o in records.venue_orders)
    return (
        f"{len(records.sent)} sent; ledger: {dict(decisions)}; venue orders: {dict(statuses)};"
        f" venue fills: {len(records.venue_fills)}"
    )


def _keep(floor: ChaosFloor, violations: list[Violation], records: Records) -> None:
    """The records behind a failed verdict, beside the logs a failed scenario keeps."""
    out = {"violations": [asdict(v) for v in violations], "records": asdict(records)}
    (floor.settings.log_dir / "verdict.json").write_text(json.dumps(out, indent=1, default=str))


def _explain(violations: list[Violation], records: Records, floor: ChaosFloor) -> str:
    by_rule = Counter(v.rule for v in violations)
    shown = "\n".join(f"  {v}" for v in violations[:SHOWN])
    more = f"\n  ... and {len(violations) - SHOWN} more" if len(violations) > SHOWN else ""
    return (
        f"{len(violations)} violations {dict(by_rule)}\n{shown}{more}\n{summary(records)}\n"
        f"hot path log, warnings and errors:\n{floor.hotpath_log()}"
    )
