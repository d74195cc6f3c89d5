"""The hot path's ``/metrics`` on its control port: Prometheus text that parses, whose
signal-to-broker histogram counts exactly the orders written to the broker meanwhile, with
exemplars naming their traces (OpenMetrics); the JSON view moved to ``/metrics.json``."""

from __future__ import annotations

from decimal import Decimal

import httpx

from ledger.spans import spans_for_command
from tests.helpers import eventually
from tests.hotpath.live_floor import LiveFloor
from tests.observability.scrape import OPENMETRICS, families, openmetrics, scrape, value
from trading.order_events import EventKind

LATENCY = "floor_hotpath_signal_to_broker_seconds"
ACK = "floor_broker_ack_latency_seconds"
SENT = "floor_orders_sent"
RECEIVED = "floor_commands_received"
REFUSED = "floor_commands_refused"
ORDERS = 3


async def test_signal_to_broker_histogram_counts_each_order_written_to_the_broker(live: LiveFloor) -> None:
    url = f"{live.hotpath.control_url}/metrics"
    before = families(await scrape(url))

    sent = [await live.resting_buy(1) for _ in range(ORDERS)]  # each returns once acknowledged
    unknown = await live.submit(live.enter(symbol="NOPE", limit=Decimal(10), stop=Decimal(5)))
    refused = await live.event(unknown.command.command_id, EventKind.REJECTED)

    # OpenMetrics first: a bucket's exemplar is the newest measurement since the last scrape.
    after = openmetrics(await scrape(url, OPENMETRICS))
    count = f"{LATENCY}_count"
    assert value(after, LATENCY, count) - value(before, LATENCY, count) == ORDERS
    assert value(after, SENT, f"{SENT}_total") - value(before, SENT, f"{SENT}_total") == ORDERS
    # At least: a hot path just started may still be refusing records other suites left on the
    # shared topic (the histogram above counts only what reached the broker).
    for outcome, grew in (("accepted", ORDERS), ("refused", 1)):
        total = value(after, RECEIVED, f"{RECEIVED}_total", outcome=outcome)
        assert total - value(before, RECEIVED, f"{RECEIVED}_total", outcome=outcome) >= grew
    refusals = value(after, REFUSED, f"{REFUSED}_total", reason=str(refused.reason))
    assert refusals - value(before, REFUSED, f"{REFUSED}_total", reason=str(refused.reason)) >= 1
    assert value(after, ACK, f"{ACK}_count") - value(before, ACK, f"{ACK}_count") >= ORDERS
    for name in ("floor_hotpath_intake_to_write_seconds", "floor_hotpath_ledger_append_seconds"):
        assert value(after, name, f"{name}_count") >= ORDERS
    # Every bucket of the latency is cumulative and ends at the count.
    assert value(after, LATENCY, f"{LATENCY}_bucket", le="+Inf") == value(after, LATENCY, count)
    # The latency's exemplars link to the traces of the orders just sent.
    exemplars = {s.exemplar.labels["trace_id"] for s in after[LATENCY].samples if s.exemplar is not None}
    assert exemplars
    traces: set[str] = set()
    for env in sent:
        spans = await eventually(lambda c=env.command.command_id: spans_for_command(live.pool, c))
        traces |= {span.trace_id for span in spans}
    assert exemplars <= traces
    assert LATENCY in families(await scrape(url))  # and the classic text parses

    async with httpx.AsyncClient(timeout=5.0) as client:
        as_json = (await client.get(f"{url}.json")).json()
    assert sum(p["count"] for p in as_json["floor.hotpath.signal_to_broker"]) == value(after, LATENCY, count)
