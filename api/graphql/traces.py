"""An order's trace from the span store (``ledger/spans.py``): where its time went, from the door
or Kafka intake through the hot path's stages to the broker's acknowledgement and each fill, and
the workflows that followed. The HUD's order timeline and API clients read it; ``floor trace``
prints the same spans.

Who may see it: a command the ledger holds on an account, whoever sees that account (as for
``order``); a command the ledger does not hold on an account (refused at the door, never
decided), the ops role only, since nothing ties it to an account the caller sees.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import strawberry

from api.graphql.context import Info
from api.graphql.scalars import Long
from ledger.order_entries import entries_of
from ledger.spans import SpanRow, spans_for_command

MAX_SPANS = 2000
"""Spans answered per trace; a trace with more says ``truncated``. A command's own trace has
a few dozen (a fill is one span); the cap bounds what a caller can make the API send."""


@strawberry.type(description="One attribute of a span; values that are not strings as JSON text.")
class SpanAttribute:
    key: str
    value: str


@strawberry.type(description="One span of an order's trace.")
class TraceSpan:
    trace_id: str = strawberry.field(description="32 hex digits.")
    span_id: str = strawberry.field(description="16 hex digits.")
    parent_span_id: str | None = strawberry.field(
        description="The parent's span id; null for a trace's root (or a parent the store no longer has)."
    )
    name: str
    service: str = strawberry.field(description="The process that made it: api, hotpath, ...")
    command_id: str | None = strawberry.field(description="The command it belongs to (floor.command_id).")
    depth: int = strawberry.field(description="Its level in the tree: 0 for a root, its parent's + 1.")
    start: datetime
    start_offset_nanos: Long = strawberry.field(description="Nanoseconds after the first span's start.")
    duration_nanos: Long
    status: str = strawberry.field(description="ok or error.")
    attributes: list[SpanAttribute]


@strawberry.type(description="The spans of every trace that has a span of the command, as a tree.")
class OrderTrace:
    command_id: str
    trace_ids: list[str] = strawberry.field(description="The traces, by their first span's start.")
    started_at: datetime = strawberry.field(description="The first span's start.")
    duration_nanos: Long = strawberry.field(description="From the first span's start to the last span's end.")
    spans: list[TraceSpan] = strawberry.field(
        description="Depth first: each span right after its parent, siblings by start; roots by start."
    )
    truncated: bool = strawberry.field(description=f"More than {MAX_SPANS} spans: the rest are left out.")


async def order_trace(info: Info, command_id: str) -> OrderTrace | None:
    principal = info.context.caller()
    db = info.context.services.db
    entry = (await entries_of(db, [command_id])).get(command_id)
    if entry is not None and entry.account is not None:
        if not principal.sees(entry.account):
            return None
    elif not principal.is_ops:
        return None
    rows = await spans_for_command(db, command_id)
    if not rows:
        return None
    return trace_of(command_id, rows)


def trace_of(command_id: str, rows: Sequence[SpanRow]) -> OrderTrace:
    """The trace as the API shows it (``rows`` ordered by start, as the store answers)."""
    origin = min(r.start_ns for r in rows)
    end = max(r.end_ns for r in rows)
    ordered = tree_order(rows)
    shown = ordered[:MAX_SPANS]
    trace_ids = list(dict.fromkeys(r.trace_id for r, _ in ordered))
    return OrderTrace(
        command_id=command_id,
        trace_ids=trace_ids,
        started_at=_at(origin),
        duration_nanos=Long(end - origin),
        spans=[_span(row, depth, origin) for row, depth in shown],
        truncated=len(ordered) > MAX_SPANS,
    )


def tree_order(rows: Sequence[SpanRow]) -> list[tuple[SpanRow, int]]:
    """Each span with its depth, depth first (a span whose parent is not among ``rows`` is a root)."""
    by_start = sorted(rows, key=lambda r: (r.start_ns, -r.end_ns, r.span_id))
    present = {(r.trace_id, r.span_id) for r in by_start}
    children: dict[tuple[str, str], list[SpanRow]] = {}
    roots: list[SpanRow] = []
    for row in by_start:
        parent = (row.trace_id, row.parent_span_id) if row.parent_span_id else None
        if parent is not None and parent in present and parent != (row.trace_id, row.span_id):
            children.setdefault(parent, []).append(row)
        else:
            roots.append(row)
    out: list[tuple[SpanRow, int]] = []
    seen: set[tuple[str, str]] = set()
    stack: list[tuple[SpanRow, int]] = [(root, 0) for root in reversed(roots)]
    while stack:
        row, depth = stack.pop()
        key = (row.trace_id, row.span_id)
        if key in seen:  # a cycle in bad data: each span is shown once
            continue
        seen.add(key)
        out.append((row, depth))
        stack.extend((child, depth + 1) for child in reversed(children.get(key, [])))
    # Spans only reachable through a cycle (no root above them) are shown as roots.
    out.extend((row, 0) for row in by_start if (row.trace_id, row.span_id) not in seen)
    return out


def _span(row: SpanRow, depth: int, origin: int) -> TraceSpan:
    return TraceSpan(
        trace_id=row.trace_id,
        span_id=row.span_id,
        parent_span_id=row.parent_span_id,
        name=row.name,
        service=row.service,
        command_id=row.command_id,
        depth=depth,
        start=_at(row.start_ns),
        start_offset_nanos=Long(row.start_ns - origin),
        duration_nanos=Long(row.end_ns - row.start_ns),
        status=row.status,
        attributes=[SpanAttribute(key=k, value=_text(v)) for k, v in sorted(row.attributes.items())],
    )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _at(ns: int) -> datetime:
    seconds, rest = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, tz=UTC) + timedelta(microseconds=rest // 1000)
