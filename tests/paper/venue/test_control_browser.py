"""A web page in a real browser cannot drive the venue's control API."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from playwright.async_api import async_playwright

from paper.venue.client import VenueClient
from tests.paper.venue.conftest import VenueProcess

CHROMIUM = shutil.which("chromium")

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (make chromium)")

# What any page the trader opens can do without asking the server first: a no-cors POST with a
# text/plain body. The page cannot read the answer, but the request is sent.
NO_CORS_POSTS = """async (base) => {
    for (const [path, body] of [
        ["/reset", {seed: 4321}],
        ["/symbols/JPM/flash-crash", {pct: 50, ms: 0}],
        ["/gateways/gw-test/kill", {}],
    ]) {
        await fetch(base + path, {method: "POST", mode: "no-cors", body: JSON.stringify(body)});
    }
    return true;
}"""


@asynccontextmanager
async def local_page() -> AsyncIterator[str]:
    """An ordinary page served over HTTP from 127.0.0.1 (a local dev server, say), so that no
    rule of the browser's about public pages reaching local addresses stands in the way: only
    the venue can refuse."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (await reader.readline()).strip():
            pass
        body = b"<html><body>an ordinary page</body></html>"
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n")
        writer.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    finally:
        server.close()


async def test_a_web_pages_no_cors_post_changes_nothing_at_the_venue(
    venue: VenueClient, venue_process: VenueProcess
) -> None:
    before = venue_process.control("GET", "/status")
    async with local_page() as page_url, async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = await browser.new_page()
            await page.goto(page_url)
            # fetch() resolves once the venue has answered: each request was read and refused.
            assert await page.evaluate(NO_CORS_POSTS, venue_process.control_url)
        finally:
            await browser.close()
    after = venue_process.control("GET", "/status")
    assert (after["seed"], after["epoch"]) == (before["seed"], before["epoch"])
    assert after["gateways"] == before["gateways"] == ["gw-test"]
