"""The enrolment page in a real browser: Chromium with a virtual authenticator (CDP) opens the
link `floor traders add` prints and registers a passkey through the GraphQL ceremonies."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from playwright.async_api import Page, async_playwright

from api import webauthn_results as r
from api.service import api_spec
from config.ports import free_port
from config.settings import FloorSettings
from floor.supervisor import Supervisor, stop_process_group
from tests.fixtures.identity import new_trader

CHROMIUM = shutil.which("chromium")

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (make chromium)")


@pytest.fixture(scope="module")
def page_origin(
    floor_settings: FloorSettings, supervisor: Supervisor, postgres_url: str, kafka_bootstrap: str
) -> Iterator[str]:
    """An API process whose WebAuthn origin is the address the browser opens: localhost (an IP
    address is never a valid rp id) on its own port."""
    port = free_port()
    settings = floor_settings.model_copy(update={"api_port": port})
    origin = f"http://localhost:{port}"
    spec = api_spec(settings, env={"FLOOR_WEBAUTHN_ORIGIN": origin})
    service = supervisor.start(dataclasses.replace(spec, name="api-enrol-page"))
    try:
        yield origin
    finally:
        if service in supervisor.running:
            supervisor.running.remove(service)
        stop_process_group(service.pid)


@pytest.fixture
async def browser_page() -> AsyncIterator[Page]:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            context = await browser.new_context()
            page = await context.new_page()
            cdp = await context.new_cdp_session(page)
            await cdp.send("WebAuthn.enable")
            await cdp.send(
                "WebAuthn.addVirtualAuthenticator",
                {
                    "options": {
                        "protocol": "ctap2",
                        "transport": "internal",
                        "hasResidentKey": True,
                        "hasUserVerification": True,
                        "isUserVerified": True,
                    }
                },
            )
            yield page
        finally:
            await browser.close()


async def _register(page: Page, link: str) -> tuple[str, str]:
    await page.goto("about:blank")  # a fresh load, not a same-page jump to the fragment
    await page.goto(link)
    assert "#token=" not in page.url  # taken out of the address bar
    await page.click("#register")
    status = page.locator("#status:not([data-state=working]):not([data-state=idle])")
    await status.wait_for()
    return (await status.get_attribute("data-state") or ""), await status.inner_text()


async def test_enrolment_page_registers_a_passkey_once(
    page_origin: str, browser_page: Page, cli_pool: asyncpg.Pool
) -> None:
    trader = await new_trader(cli_pool)
    link = f"{page_origin}/enrol#token={trader.enrolment_token}"
    state, text = await _register(browser_page, link)
    assert state == "done", text
    assert "device-bound passkey" in text
    stored = await cli_pool.fetch(
        "SELECT sign_count, backup_eligible FROM webauthn_credentials WHERE trader = $1", trader.name
    )
    assert len(stored) == 1

    state, text = await _register(browser_page, link)
    assert state == "refused" and r.ENROLMENT_INVALID in text


async def test_enrolment_page_sends_frame_ancestors_none_and_no_referrer(
    page_origin: str, browser_page: Page
) -> None:
    response = await browser_page.goto(f"{page_origin}/enrol")
    assert response is not None and response.status == 200
    headers = await response.all_headers()
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["referrer-policy"] == "no-referrer"
    assert await browser_page.locator("#status").get_attribute("data-state") == "refused"
