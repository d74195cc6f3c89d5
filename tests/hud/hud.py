"""One signed-in HUD page and what a browser test does with it: arm through the arming dialog,
read the blotter and the state colours as the trader sees them, send GraphQL from the page
itself (its cookie, its origin), and take screenshots for a person to look at."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from playwright.async_api import BrowserContext, CDPSession, Page

from tests.hud.browser import Authenticator, PageErrors, artifact_path
from tests.hud.stack import DEPTH_ROWS, HudTrader, Levels, Venue

ARMED_OR_REFUSED = (
    "#arming-dialog:not([open]), #interlock-status[data-state=WebAuthnRefused],"
    " #interlock-status[data-state=error], #interlock-status[data-state=Invalid]"
)
"""The arming dialog closes once armed (a countdown already showing may be the grant before), or
the interlock shows why not."""

# Records every state a blotter row shows, with the colours it is drawn in at that moment, from
# inside the page (a MutationObserver sees states that last less than a poll would catch).
_RECORD_STATES = """() => {
  if (window.__hudStates) return;
  const seen = (window.__hudStates = []);
  const note = (row) => {
    const cell = row.querySelector('[data-col=state], .state') || row;
    const style = getComputedStyle(cell);
    const last = seen.filter((s) => s.id === row.dataset.orderId).at(-1);
    if (last && last.state === row.dataset.state) return;
    seen.push({ id: row.dataset.orderId, state: row.dataset.state, t: performance.now(),
                color: style.color, background: style.backgroundColor, text: cell.textContent.trim(),
                row: row.textContent });
  };
  const scan = () => document.querySelectorAll('#blotter tbody tr[data-order-id]').forEach(note);
  new MutationObserver(scan).observe(document.body,
    { subtree: true, childList: true, attributes: true, attributeFilter: ['data-state', 'data-order-id'] });
  scan();
}"""

# The colour a CSS custom property resolves to, in the form getComputedStyle reports colours.
_RESOLVE_COLOUR = """(name) => {
  const probe = document.createElement('span');
  probe.style.color = `var(${name})`;
  document.body.append(probe);
  const colour = getComputedStyle(probe).color;
  probe.remove();
  return colour;
}"""

_PAGE_GQL = """async ([query, variables]) => {
  const response = await fetch('/graphql', { method: 'POST', credentials: 'same-origin',
    headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
  return { status: response.status, body: await response.text() };
}"""


# True once the page's merged book is exactly the given one (prices compared as numbers: the
# page writes them on its tick grid, the venue as its Decimal has them; equal values either way).
_BOOK_IS = """([bids, asks]) => {
  if (!window.hud.ladder) return false;
  const held = window.hud.ladder.levels();
  const same = (got, want) => got.length === want.length && want.every(([price, size]) =>
    got.some(([p, s]) => Number(p) === Number(price) && s === size));
  return same(held.bids, bids) && same(held.asks, asks);
}"""


async def ladder_holds_venue_book(page: Page, venue: Venue, symbol: str) -> tuple[Levels, Levels]:
    """With the venue frozen: waits until the ladder's book is the venue's own (its best
    :data:`DEPTH_ROWS` levels a side, as the venue's control API reads them, not the API's copy),
    so nothing more is in flight and no row can change, and painted; returns the venue's whole
    book."""
    bids, asks = await venue.depth(symbol)
    want = [[[str(p), q] for p, q in side[:DEPTH_ROWS]] for side in (bids, asks)]
    try:
        await page.wait_for_function(_BOOK_IS, arg=want, timeout=10_000)
    except Exception as timed_out:
        held = await page.evaluate("window.hud.ladder && window.hud.ladder.levels()")
        raise AssertionError(f"the ladder's book {held} is not the venue's {want}") from timed_out
    # ... and drawn: a paint the last message asked for has run (two frames from now).
    await page.evaluate("new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")
    return bids, asks


@dataclass
class Hud:
    """A signed-in HUD: the page, its virtual authenticator, the API's origin, the trader."""

    page: Page
    context: BrowserContext
    authenticator: Authenticator
    origin: str
    trader: HudTrader
    test_name: str
    errors: PageErrors = field(default_factory=PageErrors)
    shots: list[Path] = field(default_factory=list)

    @property
    def cdp(self) -> CDPSession:
        return self.authenticator.cdp

    @property
    def authenticator_id(self) -> str:
        return self.authenticator.id

    @property
    def console_errors(self) -> list[str]:
        """Uncaught page errors and ``console.error`` lines so far, less the ones allowed."""
        return self.errors.unexpected()

    async def shot(self, name: str) -> Path:
        """A screenshot of the whole page to ``tests/artifacts/hud-<test>-<name>.png``."""
        path = artifact_path(self.test_name, name)
        await self.page.screenshot(path=str(path), full_page=True)
        self.shots.append(path)
        return path

    async def open(self, path: str = "/") -> None:
        """(Re)load the HUD at ``path`` (``/?symbol=MSFT``); the session cookie signs it in."""
        await self.page.goto(f"{self.origin}{path}")
        await self.page.locator("body[data-ready=true]").wait_for()

    async def arm(
        self,
        symbols: list[str] | None = None,
        max_qty: int | None = None,
        max_notional: Decimal | str | None = None,
    ) -> str:
        """Arm through the UI: ``#arm``, the limits in ``#arming-dialog``, ``#arm-confirm``; the
        virtual authenticator answers the ceremony. Returns ``Grant`` once the countdown shows,
        else the ``#interlock-status`` state (``WebAuthnRefused``, ``error``, ...)."""
        page = self.page
        await page.click("#arm")
        await page.locator("#arming-dialog[open]").wait_for()
        await page.fill("#arm-symbols", ",".join(symbols or []))
        await page.fill("#arm-max-qty", "" if max_qty is None else str(max_qty))
        await page.fill("#arm-max-notional", "" if max_notional is None else str(max_notional))
        await page.click("#arm-confirm")
        await page.locator(ARMED_OR_REFUSED).first.wait_for(state="attached")
        if await page.locator("#arming-dialog:not([open])").count():
            await page.locator("#grant-countdown:not([hidden])").wait_for()
            return "Grant"
        return await page.locator("#interlock-status").get_attribute("data-state") or ""

    async def gql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST a GraphQL document from inside the page, as a script on the page could: its
        origin, its session cookie. The response body as JSON (``data``/``errors``)."""
        answer = await self.page.evaluate(_PAGE_GQL, [query, variables or {}])
        assert answer["status"] == 200, answer
        body: dict[str, Any] = json.loads(answer["body"])
        return body

    async def colour_of(self, custom_property: str) -> str:
        """What ``var(--st-filled)`` (say) resolves to, as ``rgb(r, g, b)``."""
        colour: str = await self.page.evaluate(_RESOLVE_COLOUR, custom_property)
        return colour

    async def record_states(self) -> None:
        """From now on, note every state each blotter row shows (see :meth:`recorded_states`)."""
        await self.page.evaluate(_RECORD_STATES)

    async def recorded_states(self, order_id: str | None = None) -> list[dict[str, Any]]:
        """``[{id, state, t, color, background, text, row}]`` in the order the rows showed them:
        the colours and text of the row's state cell, and the row's whole text."""
        seen: list[dict[str, Any]] = await self.page.evaluate("() => window.__hudStates || []")
        return [s for s in seen if order_id is None or s["id"] == order_id]

    async def blotter(self) -> dict[str, str]:
        """Order id -> UI state of every blotter row now."""
        rows: dict[str, str] = await self.page.evaluate(
            """() => Object.fromEntries([...document.querySelectorAll('#blotter tbody tr[data-order-id]')]
                 .map((tr) => [tr.dataset.orderId, tr.dataset.state]))"""
        )
        return rows
