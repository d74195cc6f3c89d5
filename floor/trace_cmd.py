"""``floor trace COMMAND_ID``: a command's trace from the span store, as a tree with durations.

Every span of every trace that holds a span of the command (the door's request, the hot path's
intake and stages, the broker's acknowledgement and fills, the workflows' spans), each under its
parent, with its offset from the trace's start and its duration. A span whose parent is not in
the store (exported by a process whose spans did not arrive, or pruned) is shown at the top.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Annotated, Any

import asyncpg
import typer
from rich.console import Console
from rich.markup import escape
from rich.tree import Tree

from config.settings import FloorSettings
from ledger.spans import SpanRow, spans_for_command
from observability.tracing import ATTR_ACCOUNT, ATTR_COMMAND_ID, ATTR_SYMBOL

console = Console()
NOT_FOUND_ADVICE = (
    "no spans for {command_id}: check the command id (`floor order` lists them); spans reach the "
    "store within a second of ending and are pruned after FLOOR_SPAN_RETENTION_HOURS; a process "
    "run with OTEL_SDK_DISABLED=true makes none"
)
_SHOWN_ATTRIBUTES = (
    "floor.outcome",
    "floor.order_id",
    "floor.fill_qty",
    "floor.fill_price",
    "floor.filled_qty",
    "http.route",
    "http.response.status_code",
    "http.status_code",
    "messaging.destination.name",
)
"""Attributes worth a glance in the tree (the command's own id, account and symbol are in its
title); ``--attributes`` prints every one."""


def duration_text(ns: int) -> str:
    if ns < 1_000_000:
        return f"{ns / 1000:.0f} µs"
    if ns < 1_000_000_000:
        return f"{ns / 1_000_000:.2f} ms"
    return f"{ns / 1_000_000_000:.3f} s"


def _label(span: SpanRow, trace_start_ns: int, all_attributes: bool) -> str:
    status = " [red]error[/]" if span.status == "error" else ""
    offset = duration_text(span.start_ns - trace_start_ns)
    # Names and values are data (a span name may hold brackets): escaped, never markup.
    name, service = escape(span.name), escape(span.service)
    label = (
        f"[bold]{name}[/] [dim]{service}[/] {duration_text(span.duration_ns)} [dim]at +{offset}[/]{status}"
    )
    own = (ATTR_COMMAND_ID, ATTR_ACCOUNT, ATTR_SYMBOL)
    shown = {
        k: v
        for k, v in span.attributes.items()
        if (all_attributes and k not in own) or k in _SHOWN_ATTRIBUTES
    }
    if shown:
        label += " [dim]" + escape(" ".join(f"{k}={v}" for k, v in sorted(shown.items()))) + "[/]"
    return label


def span_tree(command_id: str, spans: Sequence[SpanRow], *, all_attributes: bool = False) -> Tree:
    """The spans (as :func:`~ledger.spans.spans_for_command` orders them) under their parents."""
    account = next((s.attributes.get(ATTR_ACCOUNT) for s in spans if ATTR_ACCOUNT in s.attributes), None)
    symbol = next((s.attributes.get(ATTR_SYMBOL) for s in spans if ATTR_SYMBOL in s.attributes), None)
    start = min(s.start_ns for s in spans)
    end = max(s.end_ns for s in spans)
    traces = sorted({s.trace_id for s in spans})
    title = f"[bold]{escape(command_id)}[/]"
    if account or symbol:
        title += escape(f" {account or ''} {symbol or ''}".rstrip())
    title += f" [dim]trace {', '.join(traces)}[/] {duration_text(end - start)}"
    root = Tree(title)
    known = {(s.trace_id, s.span_id) for s in spans}
    children: dict[tuple[str, str], list[SpanRow]] = {}
    tops: list[SpanRow] = []
    for span in spans:
        parent = span.parent_span_id
        if parent is not None and (span.trace_id, parent) in known:
            children.setdefault((span.trace_id, parent), []).append(span)
        else:
            tops.append(span)

    def add(node: Tree, span: SpanRow, depth: int) -> None:
        branch = node.add(_label(span, start, all_attributes))
        if depth > 64:  # a cycle only a forged row could make
            return
        for child in children.get((span.trace_id, span.span_id), []):
            add(branch, child, depth + 1)

    for span in tops:
        add(root, span, 0)
    return root


async def load_spans(dsn: str, command_id: str) -> list[SpanRow]:
    conn = await asyncpg.connect(dsn)
    try:
        return await spans_for_command(conn, command_id)
    finally:
        await conn.close()


def trace(
    command_id: Annotated[str, typer.Argument(help="The command's id (its signed command_id).")],
    attributes: Annotated[
        bool, typer.Option("--attributes", help="Print every span attribute, not only the telling ones.")
    ] = False,
) -> None:
    """Print a command's trace from the span store: every span under its parent, with its
    duration and offset from the start (door, hot path stages, broker, workflows)."""
    settings = FloorSettings()
    try:
        spans = asyncio.run(load_spans(settings.role_url("cli"), command_id))
    except (OSError, asyncpg.PostgresError) as exc:
        console.print(
            f"[red]the span store could not be read ({type(exc).__name__}: {exc})[/]: check that the"
            " floor's Postgres is running (`floor status`) and that migrations are applied (`floor up`)"
        )
        raise typer.Exit(2) from None
    if not spans:
        console.print(f"[yellow]{NOT_FOUND_ADVICE.format(command_id=command_id)}[/]")
        raise typer.Exit(1)
    console.print(span_tree(command_id, spans, all_attributes=attributes))


def render(command_id: str, spans: Sequence[SpanRow], width: int = 200, **kwargs: Any) -> str:
    """The tree as plain text (for tests and logs)."""
    out = Console(width=width, record=True, color_system=None, force_terminal=False)
    with out.capture() as captured:
        out.print(span_tree(command_id, spans, **kwargs))
    return captured.get()
