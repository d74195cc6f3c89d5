"""``orderTrace``: a command's spans from the span store as a tree with durations, over real
HTTP against a real API process and Postgres, shown only to callers who see the order.

Spans are stored the way every process's exporter stores them (``ledger.spans.insert_spans``),
each test with command ids and accounts of its own."""

from __future__ import annotations

import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from api.webauthn_ceremonies import Ceremonies
from ledger.api_tokens import issue_token
from ledger.append import Decision, append_command
from ledger.spans import SpanRow, insert_spans
from tests.api.conftest import GraphQLApi
from tests.factories import enter_command, new_trader
from tests.fixtures.hotpath import register
from tests.fixtures.identity import enrolled_and_signed_in
from trading.sentry import ROLE_TRADER

TRACE = """
query($id: String!) {
  orderTrace(commandId: $id) {
    commandId traceIds startedAt durationNanos truncated
    spans { traceId spanId parentSpanId name service commandId depth start startOffsetNanos durationNanos
            status attributes { key value } }
  }
}
"""
T0 = time.time_ns() // 1_000_000_000 * 1_000_000_000
"""Spans start at this whole second (now: the span store prunes by age)."""


def span(
    trace: str,
    name: str,
    start_us: int,
    duration_us: int,
    *,
    parent: str | None = None,
    command_id: str | None = None,
    service: str = "hotpath",
    status: str = "ok",
    **attributes: Any,
) -> SpanRow:
    return SpanRow(
        trace_id=trace,
        span_id=secrets.token_hex(8),
        parent_span_id=parent,
        name=name,
        service=service,
        command_id=command_id,
        start_ns=T0 + start_us * 1000,
        end_ns=T0 + (start_us + duration_us) * 1000,
        status=status,
        attributes={**({"floor.command_id": command_id} if command_id else {}), **attributes},
    )


async def ledgered_order(ledger_pool: asyncpg.Pool, account: str) -> str:
    """A command the ledger accepted on ``account``; its id."""
    trader = new_trader(accounts=frozenset({account}))
    # Registered like every key: the session's ledger is verified whole by other tests.
    await register(ledger_pool, trader, ROLE_TRADER)
    command = enter_command(trader.agent_id, account=account, symbol="MSFT")
    await append_command(ledger_pool, trader.sign(command), decision=Decision.ACCEPTED)
    return command.command_id


def signal_to_fill(command_id: str) -> tuple[list[SpanRow], list[SpanRow]]:
    """The command's trace (door, Kafka, the hot path's stages, the acknowledgement, a fill, a
    span whose parent the store no longer has) and a second trace carrying the command id
    (a workflow run in a trace of its own)."""
    trace, other = secrets.token_hex(16), secrets.token_hex(16)
    door = span(trace, "POST /v1/commands", 0, 900, command_id=command_id, service="api")
    produce = span(trace, "agent.commands send", 700, 150, parent=door.span_id, service="api")
    intake = span(trace, "hotpath.intake", 2000, 1200, parent=produce.span_id, command_id=command_id)
    sentry = span(trace, "hotpath.sentry", 2010, 110, parent=intake.span_id, command_id=command_id)
    ledger = span(trace, "hotpath.ledger_append", 2200, 400, parent=intake.span_id, command_id=command_id)
    broker = span(trace, "hotpath.broker_call", 2650, 40, parent=intake.span_id, command_id=command_id)
    ack = span(trace, "broker.acknowledged", 4000, 0, parent=intake.span_id, command_id=command_id)
    fill = span(
        trace,
        "broker.fill",
        9000,
        0,
        parent=intake.span_id,
        command_id=command_id,
        **{"floor.fill.quantity": 100, "floor.fill.price": "189.25"},
    )
    orphan = span(
        trace, "hotpath.late", 9500, 10, parent=secrets.token_hex(8), command_id=command_id, status="error"
    )
    workflow = span(
        other, "RunWorkflow:OrderLifecycle", 5000, 3000, command_id=command_id, service="temporal-worker"
    )
    activity = span(
        other, "RunActivity:record", 5100, 200, parent=workflow.span_id, service="temporal-worker"
    )
    in_tree_order = [door, produce, intake, sentry, ledger, broker, ack, fill, workflow, activity, orphan]
    # Stored in another order: the API orders them.
    return in_tree_order, [
        fill,
        activity,
        orphan,
        ack,
        broker,
        workflow,
        ledger,
        sentry,
        intake,
        produce,
        door,
    ]


async def test_an_orders_trace_is_every_span_of_its_traces_as_a_tree_with_durations(
    graphql_api: GraphQLApi, ledger_pool: asyncpg.Pool, cli_pool: asyncpg.Pool, ceremonies: Ceremonies
) -> None:
    mine = f"GT-{uuid.uuid4().hex[:8]}"
    command_id = await ledgered_order(ledger_pool, mine)
    expected, stored = signal_to_fill(command_id)
    unrelated = span(secrets.token_hex(16), "hotpath.intake", 100, 50, command_id=f"cmd-{uuid.uuid4().hex}")
    await insert_spans(ledger_pool, [*stored, unrelated])
    _, _, cookie = await enrolled_and_signed_in(ceremonies, cli_pool, accounts=(mine,))

    trace = (await graphql_api.query(TRACE, {"id": command_id}, cookie=f"floor_session={cookie}"))[
        "orderTrace"
    ]

    assert trace["commandId"] == command_id and trace["truncated"] is False
    assert trace["traceIds"] == [expected[0].trace_id, expected[8].trace_id]
    started = datetime.fromtimestamp(T0 // 1_000_000_000, UTC)
    assert trace["startedAt"] == started.isoformat()
    assert trace["durationNanos"] == 9_510_000
    assert [s["spanId"] for s in trace["spans"]] == [s.span_id for s in expected]
    assert [(s["name"], s["depth"]) for s in trace["spans"]] == [
        ("POST /v1/commands", 0),
        ("agent.commands send", 1),
        ("hotpath.intake", 2),
        ("hotpath.sentry", 3),
        ("hotpath.ledger_append", 3),
        ("hotpath.broker_call", 3),
        ("broker.acknowledged", 3),
        ("broker.fill", 3),
        ("RunWorkflow:OrderLifecycle", 0),
        ("RunActivity:record", 1),
        ("hotpath.late", 0),  # its parent is not in the store: shown as a root, its parent id kept
    ]
    intake = trace["spans"][2]
    assert (intake["startOffsetNanos"], intake["durationNanos"], intake["service"]) == (
        2_000_000,
        1_200_000,
        "hotpath",
    )
    assert intake["parentSpanId"] == expected[1].span_id and intake["commandId"] == command_id
    assert intake["start"] == (started + timedelta(milliseconds=2)).isoformat()
    fill = trace["spans"][7]
    assert {a["key"]: a["value"] for a in fill["attributes"]} == {
        "floor.command_id": command_id,
        "floor.fill.price": "189.25",
        "floor.fill.quantity": "100",
    }
    assert (trace["spans"][-1]["status"], trace["spans"][-1]["parentSpanId"]) == (
        "error",
        expected[-1].parent_span_id,
    )


async def test_a_trace_is_shown_only_to_callers_who_see_the_order(
    graphql_api: GraphQLApi, ledger_pool: asyncpg.Pool, cli_pool: asyncpg.Pool, ceremonies: Ceremonies
) -> None:
    theirs = f"GT-{uuid.uuid4().hex[:8]}"
    command_id = await ledgered_order(ledger_pool, theirs)
    _, stored = signal_to_fill(command_id)
    await insert_spans(ledger_pool, stored)
    _, _, cookie = await enrolled_and_signed_in(
        ceremonies, cli_pool, accounts=(f"GT-{uuid.uuid4().hex[:8]}",)
    )
    _, _, owner_cookie = await enrolled_and_signed_in(ceremonies, cli_pool, accounts=(theirs,))

    variables = {"id": command_id}
    assert (await graphql_api.query(TRACE, variables, cookie=f"floor_session={cookie}"))["orderTrace"] is None
    shown = (await graphql_api.query(TRACE, variables, cookie=f"floor_session={owner_cookie}"))["orderTrace"]
    assert len(shown["spans"]) == len(stored)
    assert await graphql_api.refusal(TRACE, variables) == "auth.unauthenticated"


async def test_a_command_the_ledger_does_not_hold_on_an_account_is_traced_for_ops_only(
    graphql_api: GraphQLApi, cli_pool: asyncpg.Pool, ledger_pool: asyncpg.Pool
) -> None:
    # Refused at the door (a bad signature): spans, no ledger entry, no account to see it by.
    command_id = f"cmd-{uuid.uuid4().hex}"
    refused = span(
        secrets.token_hex(16),
        "POST /v1/commands",
        0,
        300,
        command_id=command_id,
        service="api",
        status="error",
        **{"floor.outcome": "sentry.bad_signature"},
    )
    await insert_spans(ledger_pool, [refused])
    _, read = await issue_token(cli_pool, f"trace-read-{uuid.uuid4().hex[:8]}", "read")
    _, ops = await issue_token(cli_pool, f"trace-ops-{uuid.uuid4().hex[:8]}", "ops")

    assert (await graphql_api.query(TRACE, {"id": command_id}, token=read))["orderTrace"] is None
    trace = (await graphql_api.query(TRACE, {"id": command_id}, token=ops))["orderTrace"]
    assert [(s["name"], s["status"]) for s in trace["spans"]] == [("POST /v1/commands", "error")]
    unknown = {"id": f"cmd-{uuid.uuid4().hex}"}
    assert (await graphql_api.query(TRACE, unknown, token=ops))["orderTrace"] is None
