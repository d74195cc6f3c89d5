"""The API process's ``GET /metrics``: Prometheus text that parses, with the subscription hub's
gauges read at the scrape."""

from __future__ import annotations

from tests.api.conftest import GraphQLApi
from tests.observability.scrape import OPENMETRICS, families, openmetrics, scrape, value


async def test_the_api_serves_its_metrics_as_prometheus_text(graphql_api: GraphQLApi) -> None:
    found = families(await scrape(f"{graphql_api.url}/metrics"))

    assert found["floor_api_subscriptions"].type == "gauge"
    assert value(found, "floor_api_subscriptions", "floor_api_subscriptions") >= 0
    assert found["floor_api_subscriptions_dropped"].type == "counter"
    assert "floor_api_subscriptions_dropped" in openmetrics(
        await scrape(f"{graphql_api.url}/metrics", OPENMETRICS)
    )
