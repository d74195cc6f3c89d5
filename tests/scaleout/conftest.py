"""The scale-out suites' own API process (a package's, stopped after it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from config.settings import FloorSettings
from floor.supervisor import Supervisor
from tests.fixtures.hotpath import floor_api


@pytest.fixture(scope="package")
def api_url(
    floor_settings: FloorSettings, supervisor: Supervisor, postgres_url: str, kafka_bootstrap: str
) -> Iterator[str]:
    """The floor's API process for this package's tests (:func:`tests.fixtures.hotpath.floor_api`)."""
    with floor_api(floor_settings, supervisor) as url:
        yield url
