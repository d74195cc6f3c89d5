"""The HUD's files as the API serves them: the page and its modules from this origin only under a
strict Content-Security-Policy, the graphql-ws client from web/node_modules, and nothing outside
the served folders, whatever the path says."""

from __future__ import annotations

import httpx
import pytest

from api.web_pages import HUD_DIR
from tests.api.conftest import GraphQLApi


async def _get(api: GraphQLApi, path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=api.url, timeout=10.0) as client:
        return await client.get(path)


async def test_the_hud_page_is_served_with_a_strict_policy_that_keeps_frames_out(
    graphql_api: GraphQLApi,
) -> None:
    response = await _get(graphql_api, "/")
    assert response.status_code == 200
    assert 'src="/hud/app.js"' in response.text
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert len(response.headers.get_list("content-security-policy")) == 1
    assert response.headers["cache-control"] == "no-store"


async def test_every_module_the_page_imports_is_served_as_javascript(graphql_api: GraphQLApi) -> None:
    for module in sorted(p.name for p in HUD_DIR.glob("*.js")):
        response = await _get(graphql_api, f"/hud/{module}")
        assert response.status_code == 200, module
        assert response.headers["content-type"].startswith("text/javascript"), module
    client = await _get(graphql_api, "/vendor/graphql-ws/client.js")
    assert client.status_code == 200, "run make install: web/node_modules holds graphql-ws"
    assert "createClient" in client.text
    (relative,) = {line.split("'")[1] for line in client.text.splitlines() if line.startswith("import ")}
    assert (await _get(graphql_api, f"/vendor/graphql-ws/{relative.removeprefix('./')}")).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/hud/..%2F..%2Fpyproject.toml",
        "/hud/index.html",  # the page lives at /, not as a module
        "/hud/.hidden.js",
        "/vendor/graphql-ws/..%2Fpackage.json",
        "/vendor/graphql-ws/index.cjs",
        "/vendor/graphql/index.js",  # only the packages the HUD uses
    ],
)
async def test_nothing_outside_the_served_files_can_be_named(graphql_api: GraphQLApi, path: str) -> None:
    assert (await _get(graphql_api, path)).status_code == 404
