"""The order detail in Chromium: a click on a blotter row opens the order's timeline, the spans of
its trace as a waterfall (indented under their parents, bars at their offsets and as long as they
lasted), the same spans ``orderTrace`` answers; a span's attributes on a click; spans stored
later appear on a refresh. The screenshot ``tests/artifacts/hud-...-order-detail.png`` shows it.
(``make test`` opens the real trace of the order ``tests/hud/test_flows.py`` trades, through
:func:`timeline_of`; this test, of the layout in detail, runs under ``make test-long``.)

The order and its spans are stored the way the hot path and the processes' span exporters store
them, on the HUD's account, the order already ended (it moves no position and no open count)."""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from playwright.async_api import expect

from ledger.append import Decision, append_command
from ledger.order_events import record_order_event
from ledger.spans import SpanRow, insert_spans
from tests.api.test_graphql_order_trace import span
from tests.factories import enter_command, new_agent, order_event
from tests.fixtures.hotpath import register
from tests.hud.hud import Hud
from tests.hud.stack import VENUE_ACCOUNT
from trading.order_events import EventKind

TRACE = """query($id: String!) { orderTrace(commandId: $id) {
  spans { spanId name depth startOffsetNanos durationNanos } durationNanos } }"""


def order_trace(command_id: str) -> list[SpanRow]:
    """A command's life as its spans: the door, Kafka, the hot path's stages up to the broker's
        socket write, the acknowledgement, the cancel, and the lifecycle workflow (its own trace) with
    four database queries."""
    trace, workflow_trace = secrets.token_hex(16), secrets.token_hex(16)
    c = {"command_id": command_id}
    door = span(trace, "POST /v1/commands", 0, 1400, service="api", **c)
    produce = span(trace, "agent.commands send", 1100, 250, parent=door.span_id, service="api")
    intake = span(trace, "hotpath.intake", 3200, 1150, parent=produce.span_id, **c)
    stages = [
        span(trace, name, start, took, parent=intake.span_id, **c)
        for name, start, took in (
            ("hotpath.sentry", 3210, 120),
            ("hotpath.sizer", 3340, 15),
            ("hotpath.risk_gate", 3360, 20),
            ("hotpath.ledger_append", 3390, 700),
            ("hotpath.broker_call", 4100, 45),
        )
    ]
    ack = span(trace, "broker.acknowledged", 6800, 0, parent=intake.span_id, **c)
    cancel = span(trace, "broker.cancelled", 19000, 0, parent=intake.span_id, **c)
    lifecycle = span(
        workflow_trace, "RunWorkflow:OrderLifecycle", 7200, 12500, service="temporal-worker", **c
    )
    queries = [
        span(
            workflow_trace, "SELECT", 7300 + 100 * n, 50, parent=lifecycle.span_id, service="temporal-worker"
        )
        for n in range(4)
    ]
    return [door, produce, intake, *stages, ack, cancel, lifecycle, *queries]


async def timeline_of(hud: Hud, order_id: str, names: list[str]) -> list[dict[str, Any]]:
    """Open order ``order_id``'s detail from its blotter row and wait until its waterfall shows a
    span of each of ``names``; the spans as drawn."""
    page = hud.page
    await page.locator(f"#blotter tbody tr[data-order-id='{order_id}'] td.sym").click()
    await expect(page.locator("#order-detail")).to_be_visible()
    waterfall = page.locator("#trace-waterfall .span-name")
    for name in names:
        # Spans reach the store within a second; the panel asks again every 2 s.
        await expect(waterfall.get_by_text(name, exact=True).first).to_be_visible(timeout=10_000)
    drawn: list[dict[str, Any]] = await page.evaluate("() => window.hud.orderDetail.spans()")
    return drawn


@pytest.mark.long
async def test_a_blotter_row_opens_the_orders_timeline_as_a_waterfall(
    hud: Hud, ledger_pool: asyncpg.Pool
) -> None:
    page = hud.page
    agent = new_agent("timeline-" + secrets.token_hex(4), accounts=frozenset({VENUE_ACCOUNT}))
    await register(ledger_pool, agent)
    command = enter_command(agent.agent_id, account=VENUE_ACCOUNT, symbol="AAPL")
    await append_command(ledger_pool, agent.sign(command), decision=Decision.ACCEPTED)
    fields: dict[str, Any] = dict(
        account=VENUE_ACCOUNT,
        symbol="AAPL",
        agent_id=agent.agent_id,
        quantity=3,
        limit_price=Decimal("189.50"),
    )
    for n, kind in enumerate((EventKind.ACCEPTED, EventKind.SUBMITTED, EventKind.CANCELLED)):
        await record_order_event(ledger_pool, order_event(command.command_id, n, kind, **fields))
    await insert_spans(ledger_pool, order_trace(command.command_id))
    await hud.open()

    row = page.locator(f"#blotter tbody tr[data-order-id='{command.command_id}']")
    await row.locator("td.sym").click()
    await expect(page.locator("#order-detail")).to_be_visible()
    expected = (await hud.gql(TRACE, {"id": command.command_id}))["data"]["orderTrace"]
    # The lifecycle's four queries are one row until clicked.
    await expect(page.locator("#trace-waterfall .span-row")).to_have_count(len(expected["spans"]) - 3)
    grouped = await page.evaluate("() => window.hud.orderDetail.spans()")
    assert (grouped[-1]["name"], grouped[-1]["group"], grouped[-1]["duration"]) == (
        "SELECT × 4",
        4,
        "Σ 200 µs",
    )
    await page.locator("#trace-waterfall .span-row.group").click()
    await expect(page.locator("#trace-waterfall .span-row")).to_have_count(len(expected["spans"]))

    drawn = await page.evaluate("() => window.hud.orderDetail.spans()")
    assert [(s["spanId"], s["depth"]) for s in drawn] == [
        (s["spanId"], s["depth"]) for s in expected["spans"]
    ]
    names = [s["name"] for s in drawn]
    assert names[:3] == ["POST /v1/commands", "agent.commands send", "hotpath.intake"]
    assert (
        names.index("hotpath.broker_call")
        < names.index("broker.acknowledged")
        < names.index("broker.cancelled")
    )
    total = expected["durationNanos"]
    assert total == 19_700_000  # the lifecycle's end
    intake = drawn[2]
    assert (intake["duration"], intake["depth"]) == ("1.15 ms", 2)
    assert float(intake["left"].rstrip("%")) == pytest.approx(100 * 3_200_000 / total, abs=1e-3)
    assert float(intake["width"].rstrip("%")) == pytest.approx(100 * 1_150_000 / total, abs=1e-3)
    assert "AAPL" in await page.locator("#order-detail-terms").inner_text()
    assert "Cancelled" in await page.locator("#order-detail-terms").inner_text()
    # The bars are drawn where the numbers say: the intake's bar starts right of the door's.
    door_box = await page.locator("#trace-waterfall .span-row").nth(0).locator(".span-bar").bounding_box()
    intake_box = await page.locator("#trace-waterfall .span-row").nth(2).locator(".span-bar").bounding_box()
    assert door_box and intake_box and intake_box["x"] > door_box["x"] + door_box["width"]

    ledger_row = page.locator("#trace-waterfall .span-row", has_text="hotpath.ledger_append")
    await ledger_row.click()
    attributes = page.locator("#trace-waterfall .span-attrs")
    await expect(attributes).to_contain_text(command.command_id)
    await hud.shot("order-detail")

    # A fill's span stored after the panel opened shows on the next ask.
    late = span(secrets.token_hex(16), "broker.fill", 15000, 0, command_id=command.command_id)
    await insert_spans(ledger_pool, [late])
    await page.click("#order-detail-refresh")
    await expect(page.locator("#trace-waterfall .span-row")).to_have_count(len(expected["spans"]) + 1)

    await page.keyboard.press("Escape")
    await expect(page.locator("#order-detail")).to_be_hidden()
