"""The HUD in a real browser: Debian's Chromium, headless with the floor's flags, a CDP virtual
authenticator standing in for a platform passkey (user verification included), and a trader
enrolled and signed in through the pages themselves, as a person would.

Plain functions and classes, no pytest fixtures: ``tests/hud/conftest.py`` builds its fixtures
from them and ``bench.hud_render`` drives the same browser the same way."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, BrowserContext, CDPSession, ConsoleMessage, Page, Playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
"""No sandbox (containers), no GPU (software paint is what the tests measure), and nothing that
phones home during a run."""
VIEWPORT = {"width": 1600, "height": 900}
"""A trading desk's screen: the ladder, the ticket and the blotter side by side."""
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
"""Screenshots a person looks at after a run (git-ignored)."""

VIRTUAL_AUTHENTICATOR: dict[str, Any] = {
    "protocol": "ctap2",
    "ctap2Version": "ctap2_1",
    "transport": "internal",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
    "automaticPresenceSimulation": True,
}
"""A platform authenticator (Touch ID, Windows Hello) whose user always verifies and touches."""


async def launch(playwright: Playwright) -> Browser:
    return await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=list(CHROMIUM_ARGS))


async def new_page(browser: Browser) -> tuple[BrowserContext, Page]:
    """A fresh context (no cookies, no storage) and its one page."""
    context = await browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    return context, await context.new_page()


@dataclass
class Authenticator:
    """A CDP virtual authenticator attached to one page's context."""

    cdp: CDPSession
    id: str

    async def set_user_verified(self, verified: bool) -> None:
        """From now on the authenticator reports (or not) that the user verified (fingerprint, PIN)."""
        await self.cdp.send(
            "WebAuthn.setUserVerified", {"authenticatorId": self.id, "isUserVerified": verified}
        )

    async def credentials(self) -> list[dict[str, Any]]:
        """The passkeys it holds (``credentialId``, ``signCount``, ``rpId``, ...)."""
        answer = await self.cdp.send("WebAuthn.getCredentials", {"authenticatorId": self.id})
        credentials: list[dict[str, Any]] = answer["credentials"]
        return credentials


async def add_authenticator(context: BrowserContext, page: Page, **options: Any) -> Authenticator:
    """Enable WebAuthn's virtual authenticators on ``page`` and add one (:data:`VIRTUAL_AUTHENTICATOR`
    with ``options`` over it)."""
    cdp = await context.new_cdp_session(page)
    await cdp.send("WebAuthn.enable", {"enableUI": False})
    answer = await cdp.send(
        "WebAuthn.addVirtualAuthenticator", {"options": {**VIRTUAL_AUTHENTICATOR, **options}}
    )
    return Authenticator(cdp, answer["authenticatorId"])


async def enrol(page: Page, origin: str, enrolment_token: str) -> tuple[str, str]:
    """Open the enrolment link and register a passkey; the page's status (``done``, ``refused``,
    ``error``) and its text."""
    await page.goto("about:blank")  # a fresh load, not a same-page jump to the fragment
    await page.goto(f"{origin}/enrol#token={enrolment_token}")
    await page.click("#register")
    status = page.locator("#status:not([data-state=working]):not([data-state=idle])")
    await status.wait_for()
    return (await status.get_attribute("data-state") or ""), await status.inner_text()


async def sign_in(page: Page, origin: str, path: str = "/") -> None:
    """Open the HUD at ``path`` and sign in with the passkey; returns once every part of the desk
    has mounted (``body[data-ready=true]``), so a click reaches a handler."""
    await page.goto(f"{origin}{path}")
    await page.click("#signin")
    await page.locator("body[data-ready=true]").wait_for()


# Chromium reports the browser's own refusals (a 4xx resource) as console errors too; these are
# the ones a page cannot avoid and that say nothing about the HUD's code.
_BENIGN = (re.compile(r"favicon\.ico"),)


@dataclass
class PageErrors:
    """What went wrong inside the page: uncaught exceptions and unhandled rejections
    (``uncaught``), and everything logged with ``console.error`` (``console``)."""

    uncaught: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        page.on("pageerror", lambda error: self.uncaught.append(f"{error.name}: {error.message}"))
        page.on("console", self._console)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            location = message.location.get("url", "")
            self.console.append(f"{message.text} ({location})" if location else message.text)

    def allow(self, pattern: str) -> None:
        """A console error the test provokes on purpose (a refused request, say)."""
        self.allowed.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        def expected(text: str, patterns: Iterable[re.Pattern[str]]) -> bool:
            return any(p.search(text) for p in patterns)

        return self.uncaught + [c for c in self.console if not expected(c, (*_BENIGN, *self.allowed))]


def artifact_path(test_name: str, name: str) -> Path:
    """``tests/artifacts/hud-<test>-<name>.png``, the test's parameters made file-safe."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{test_name}-{name}").strip("-")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / f"hud-{safe}.png"
