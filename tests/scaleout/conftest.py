"""The scale-out suites' own API process (a package's, stopped after it)."""

from __future__ import annotations

import pytest

from tests.fixtures.hotpath import package_api_url

api_url = pytest.fixture(scope="package", name="api_url")(package_api_url)
"""The floor's API process for this package's tests (:func:`tests.fixtures.hotpath.package_api_url`)."""
