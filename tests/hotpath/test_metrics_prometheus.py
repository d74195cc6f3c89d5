"""The hot path's ``/metrics`` on its control port: Prometheus text that parses, whose
signal-to-broker histogram counts exactly the orders written to the broker meanwhile; the JSON
view moved to ``/metrics.json``."""

from __future__ import annotations

import httpx

from tests.hotpath.live_floor import LiveFloor
from tests.observability.scrape import OPENMETRICS, families, openmetrics, scrape, value

LATENCY = "floor_hotpath_signal_to_broker_seconds"
ACK = "floor_broker_ack_latency_seconds"
SENT = "floor_orders_sent"
ORDERS = 3


async def test_signal_to_broker_histogram_counts_each_order_written_to_the_broker(live: LiveFloor) -> None:
    url = f"{live.hotpath.control_url}/metrics"
    before = families(await scrape(url))

    for _ in range(ORDERS):
        await live.resting_buy(1)  # returns once the broker acknowledged it

    after = families(await scrape(url))
    count = f"{LATENCY}_count"
    assert value(after, LATENCY, count) - value(before, LATENCY, count) == ORDERS
    assert value(after, SENT, f"{SENT}_total") - value(before, SENT, f"{SENT}_total") == ORDERS
    assert value(after, ACK, f"{ACK}_count") - value(before, ACK, f"{ACK}_count") >= ORDERS
    for name in ("floor_hotpath_intake_to_write_seconds", "floor_hotpath_ledger_append_seconds"):
        assert value(after, name, f"{name}_count") >= ORDERS
    # Every bucket of the latency is cumulative and ends at the count.
    assert value(after, LATENCY, f"{LATENCY}_bucket", le="+Inf") == value(after, LATENCY, count)
    assert LATENCY in openmetrics(await scrape(url, OPENMETRICS))

    async with httpx.AsyncClient(timeout=5.0) as client:
        as_json = (await client.get(f"{url}.json")).json()
    assert sum(p["count"] for p in as_json["floor.hotpath.signal_to_broker"]) == value(after, LATENCY, count)
