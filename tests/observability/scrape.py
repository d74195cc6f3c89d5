"""Reading a process's ``/metrics`` the way Prometheus does: over HTTP, parsed by
``prometheus_client``'s own parsers (the classic text format, or OpenMetrics with exemplars)."""

from __future__ import annotations

import httpx
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families

OPENMETRICS = "application/openmetrics-text; version=1.0.0"


async def scrape(url: str, accept: str | None = None) -> str:
    """The body of ``GET url``; fails unless it answers 200 in a Prometheus content type."""
    headers = {"Accept": accept} if accept else {}
    async with httpx.AsyncClient(timeout=5.0) as client:
        response = await client.get(url, headers=headers)
    assert response.status_code == 200, response.text
    expected = "application/openmetrics-text" if accept == OPENMETRICS else "text/plain; version=0.0.4"
    assert response.headers["content-type"].startswith(expected), response.headers["content-type"]
    return response.text


def families(text: str) -> dict[str, Metric]:
    """Every family of a classic-text scrape, by name (the parser raises on a malformed line)."""
    return {f.name: f for f in text_string_to_metric_families(text)}


def openmetrics(text: str) -> dict[str, Metric]:
    return {f.name: f for f in openmetrics_families(text)}


def value(found: dict[str, Metric], family: str, sample: str, **labels: str) -> float:
    """The sum of ``sample``'s values in ``family`` whose labels include ``labels`` (0 if none)."""
    metric = found.get(family)
    if metric is None:
        return 0.0
    return sum(
        s.value
        for s in metric.samples
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())
    )
