"""The trader's desk in a real browser: the order ticket, the biometric interlock (arming with
limits, the countdown, expiry, step-up), the blotter and positions, the breaker banner, hotkeys
and the passkeys panel, against the whole floor and a CDP virtual authenticator.

Grants in this module last :data:`GRANT_S` seconds, so a test sees one expire; a test that arms
acts within that time."""

from __future__ import annotations

import re
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from playwright.async_api import Locator, Page, Route, expect

from tests.helpers import eventually
from tests.hud.browser import add_authenticator
from tests.hud.hud import Hud
from tests.hud.stack import Venue

GRANT_S = 10
CENT = Decimal("0.01")
WEB = Path(__file__).resolve().parents[2] / "web" / "hud"
FEED = """([ok, reason]) =>
  window.hud.store.publish('feed', {symbol: 'AAPL', ok, reason, since: new Date().toISOString()})"""
"""What the ladder publishes when AAPL's book goes out of sync (or back)."""


@pytest.fixture(scope="module")
def hud_api_env() -> dict[str, str]:
    return {"FLOOR_ARMING_TTL_S": str(GRANT_S)}


@pytest.fixture(autouse=True)
async def _desk_mounted(hud: Hud) -> None:
    """Every part of the desk listening: the settings panel mounts last (a click before a part
    mounted would do nothing). The ladder and its latency overlay are another part of the HUD;
    where they are not in this tree the page reports them missing, which these tests ignore."""
    for part in ("ladder", "latency"):
        if not (WEB / f"{part}.js").exists():
            hud.errors.allow(
                rf"{part}\.js|Failed to load resource.*404|Failed to fetch dynamically imported module"
            )
    await hud.page.locator("#passkeys").wait_for(state="attached")


async def _resting_limit(venue: Venue) -> str:
    """A BUY limit at 80 % of AAPL's bid: it rests at the venue."""
    bid, _ = await venue.quote("AAPL")
    return str((bid * Decimal("0.8")).quantize(CENT, ROUND_DOWN))


async def _stage(
    page: Page, *, qty: int = 1, limit: str, side: str = "BUY", symbol: str = "AAPL"
) -> dict[str, Any]:
    """Fill the ticket and press Stage; the Staged result the ticket published."""
    await page.fill("#ticket-symbol", symbol)
    await page.select_option("#ticket-side", side)
    await page.fill("#ticket-qty", str(qty))
    await page.select_option("#ticket-type", "LMT")
    await page.fill("#ticket-limit", limit)
    await page.click("#stage")
    await expect(page.locator("#ticket-status")).to_have_attribute(
        "data-state", re.compile("staged|invalid|error")
    )
    staged: dict[str, Any] = await page.evaluate("() => window.hud.store.latest('staged')")
    return staged


async def _execute(page: Page, staged: dict[str, Any]) -> tuple[str, Locator]:
    """Press Execute for the staged order; the order's id and its blotter row once Executed."""
    answered = await page.evaluate("() => window.hud.interlock.results().length")
    await page.click("#execute")
    await page.wait_for_function("(n) => window.hud.interlock.results().length > n", arg=answered)
    await expect(page.locator("#interlock-status")).to_have_attribute("data-state", "Executed")
    executed = await page.evaluate("() => window.hud.store.latest('executed')")
    assert executed["stagedId"] == staged["stagedId"]
    return executed["commandId"], page.locator(f"#blotter tr[data-order-id='{executed['commandId']}']")


async def _execute_reason(page: Page) -> str:
    return await page.locator("#execute").get_attribute("data-reason") or ""


async def _order(hud: Hud, order_id: str) -> dict[str, Any]:
    body = await hud.gql(
        """query($id: ID!) { order(id: $id) { id state quantity
             ledgerEntry { authorization { ceremony orderHash credentialId } } } }""",
        {"id": order_id},
    )
    order: dict[str, Any] = body["data"]["order"]
    return order


async def test_execute_is_disabled_with_the_reason_until_armed_then_sends_the_staged_order(
    hud: Hud, venue: Venue
) -> None:
    page = hud.page
    execute = page.locator("#execute")
    await expect(execute).to_be_disabled()
    assert await _execute_reason(page) == "not-armed"
    await expect(page.locator("#execute-reason")).to_contain_text("Arm")
    await expect(page.locator("#grant-countdown")).to_be_hidden()

    limit = await _resting_limit(venue)
    staged = await _stage(page, qty=3, limit=limit)
    assert staged["quantity"] == 3 and staged["limitPrice"] == limit
    await expect(page.locator("#order-hash")).to_have_text(staged["orderHashPrefix"])
    row = page.locator(f"#blotter tbody tr[data-order-id='{staged['stagedId']}']")
    await expect(row).to_have_attribute("data-state", "staged")
    await expect(row).to_contain_text(limit)
    await expect(execute).to_be_disabled()  # staged, still not armed
    assert await _execute_reason(page) == "not-armed"
    await hud.shot("staged-unarmed")

    assert await hud.arm(symbols=["AAPL"], max_qty=10, max_notional="100000") == "Grant"
    await expect(page.locator("#grant-countdown")).to_have_text(re.compile(r"^00:(0\d|10)$"))
    await expect(execute).to_be_enabled()
    await expect(page.locator("#execute-reason")).to_have_attribute("data-reason", "ready")
    grant = await page.evaluate("() => window.hud.store.latest('grant')")
    assert grant["symbols"] == ["AAPL"] and grant["maxQuantity"] == 10 and grant["maxNotional"] == "100000"
    await hud.shot("armed")

    order_id, order_row = await _execute(page, staged)
    await expect(row).to_have_count(0)  # the staged row became the order
    await expect(order_row).to_have_attribute("data-state", "working", timeout=15_000)
    assert await _execute_reason(page) == "nothing-staged"
    order = await _order(hud, order_id)
    assert order["ledgerEntry"]["authorization"]["ceremony"] == "arming"
    await hud.shot("executed-working")

    # The order the ladder draws from: the blotter's rows, published.
    orders = await page.evaluate("() => [...window.hud.store.latest('orders').values()]")
    await expect(order_row).to_have_attribute("data-mine", "true")
    await expect(order_row.locator("td.by")).to_have_text("meDEV")
    # The blotter marks which kind of passkey authorised it: the virtual one is device-bound.
    await expect(order_row).to_have_attribute("data-credential", "device-bound")
    mine = next(o for o in orders if o["id"] == order_id)
    assert mine["state"] == "working" and mine["limitPrice"] == limit and mine["quantity"] == 3


async def test_at_the_grants_expiry_execute_disables_again(hud: Hud, venue: Venue) -> None:
    page = hud.page
    await _stage(page, limit=await _resting_limit(venue))
    assert await hud.arm() == "Grant"
    await expect(page.locator("#execute")).to_be_enabled()
    # The countdown runs down to its last seconds while Execute is still on: one check of both
    # at once, every frame, over a 3 s window (an exact text is up for 1 s and a poll can miss it).
    await page.wait_for_function(
        """() => { const c = document.getElementById('grant-countdown');
          const [m, s] = c.textContent.split(':').map(Number), execute = document.getElementById('execute');
          return !c.hidden && m === 0 && s >= 1 && s <= 3 && !execute.disabled; }""",
        polling="raf",
        timeout=(GRANT_S + 2) * 1000,
    )
    await hud.shot("about-to-expire")
    await expect(page.locator("#execute")).to_be_disabled(timeout=4000)
    await expect(page.locator("#grant-countdown")).to_be_hidden()
    assert await _execute_reason(page) == "not-armed"
    await expect(page.locator("#execute-reason")).to_contain_text("expired")

    async def server_expired() -> bool:  # the page stops a margin early; the server follows
        return (await hud.gql("query { me { grant { expiresAt } } }"))["data"]["me"]["grant"] is None

    await eventually(server_expired, timeout=5)
    await hud.shot("expired")


async def test_beyond_the_grant_it_asks_a_step_up_showing_the_order_hash_and_executes_only_after_it(
    hud: Hud, venue: Venue
) -> None:
    page = hud.page
    assert await hud.arm(symbols=["AAPL"], max_qty=1) == "Grant"
    staged = await _stage(page, qty=5, limit=await _resting_limit(venue))
    # Every (data-step-up, text) #order-hash shows, as the trader saw them.
    await page.evaluate(
        """() => {
          const h = document.getElementById('order-hash');
          window.__hashes = [];
          new MutationObserver(() => window.__hashes.push([h.dataset.stepUp, h.textContent]))
            .observe(h, { attributes: true, childList: true, characterData: true, subtree: true });
        }"""
    )

    # The trader does not confirm (no fingerprint): nothing is sent.
    await hud.authenticator.set_user_verified(False)
    await page.click("#execute")
    await expect(page.locator("#interlock-status")).to_have_attribute(
        "data-state", re.compile("WebAuthnRefused|Invalid")
    )
    hashes = await page.evaluate("() => window.__hashes")
    assert ["true", staged["orderHashPrefix"]] in hashes
    results = await page.evaluate("() => window.hud.interlock.results()")
    assert results[-2:][0] == "StepUpRequired"
    assert "Executed" not in results
    await expect(page.locator(f"#blotter tr[data-order-id='{staged['stagedId']}']")).to_have_attribute(
        "data-state", "staged"
    )
    await hud.shot("step-up-refused")

    await hud.authenticator.set_user_verified(True)
    await page.click("#execute")
    await expect(page.locator("#interlock-status")).to_have_attribute("data-state", "Executed")
    results = await page.evaluate("() => window.hud.interlock.results()")
    assert results[-2:] == ["StepUpRequired", "Executed"]
    executed = await page.evaluate("() => window.hud.store.latest('executed')")
    order = await _order(hud, executed["commandId"])
    authorization = order["ledgerEntry"]["authorization"]
    assert authorization["ceremony"] == "step_up"
    assert authorization["orderHash"].startswith(staged["orderHashPrefix"])
    await hud.shot("step-up-executed")


async def test_a_trader_who_confirms_every_order_gets_a_step_up_for_each_execute(
    hud: Hud, venue: Venue, postgres_url: str
) -> None:
    # The trader's own setting (floor traders add --step-up-every-order), read by the desk at Execute.
    db = await asyncpg.connect(postgres_url)
    try:
        await db.execute("UPDATE traders SET step_up_every_order = true WHERE name = $1", hud.trader.name)
    finally:
        await db.close()
    page = hud.page
    assert await hud.arm() == "Grant"
    await _stage(page, qty=1, limit=await _resting_limit(venue))
    await page.click("#execute")
    await expect(page.locator("#interlock-status")).to_have_attribute("data-state", "Executed")
    assert (await page.evaluate("() => window.hud.interlock.results()"))[-2:] == [
        "StepUpRequired",
        "Executed",
    ]


async def test_with_user_verification_off_arming_fails_with_the_reason_shown(hud: Hud) -> None:
    page = hud.page
    await hud.authenticator.set_user_verified(False)
    assert await hud.arm(symbols=["AAPL"]) == "WebAuthnRefused"
    await expect(page.locator("#arm-error")).to_contain_text("Not armed")
    await expect(page.locator("#interlock-status")).to_contain_text("Not armed")
    await hud.shot("arming-refused")
    await page.keyboard.press("Escape")
    await expect(page.locator("#arming-dialog")).not_to_have_attribute("open", "")
    await expect(page.locator("#execute")).to_be_disabled()
    assert await _execute_reason(page) == "not-armed"
    me = await hud.gql("query { me { grant { expiresAt } } }")
    assert me["data"]["me"]["grant"] is None


async def test_a_ticket_the_floor_refuses_shows_why_next_to_the_field(hud: Hud) -> None:
    page = hud.page
    await _stage(page, limit="100.00", symbol="ZZZZ")
    await expect(page.locator("#ticket-status")).to_have_attribute("data-state", "invalid")
    await expect(page.locator(".field-error[data-for=ticket-symbol]")).to_contain_text("the floor trades")
    await expect(page.locator("#ticket-symbol")).to_have_attribute("aria-invalid", "true")
    assert await page.evaluate("() => window.hud.store.latest('staged')") is None
    # The quantity is checked before anything is sent: Int would not even parse.
    await page.fill("#ticket-symbol", "AAPL")
    await page.fill("#ticket-qty", "1.5")
    await page.click("#stage")
    await expect(page.locator(".field-error[data-for=ticket-qty]")).to_contain_text("whole number")
    await hud.shot("ticket-invalid")


async def test_the_ticket_shows_the_floors_kelly_size_and_max_trade_size(hud: Hud, venue: Venue) -> None:
    page = hud.page
    bid, ask = await venue.quote("AAPL")
    await page.fill("#ticket-limit", str(ask))
    await page.fill("#ticket-stoploss", str((bid * Decimal("0.98")).quantize(CENT, ROUND_DOWN)))
    await expect(page.locator("#ticket-max")).to_have_text(re.compile(r"^Max \d+$"))
    await page.fill("#ticket-edge", "0.6")
    suggestion = page.locator("#ticket-suggestion")
    await expect(suggestion).to_have_text(re.compile(r"^Kelly \d+$"))
    await expect(suggestion).to_have_attribute("data-state", "ready")
    quantity = await suggestion.get_attribute("data-quantity")
    if quantity and int(quantity) > 0:
        await suggestion.click()
        await expect(page.locator("#ticket-qty")).to_have_value(quantity)
    await page.fill("#ticket-edge", "1.5")
    await expect(page.locator("#ticket-edge")).to_have_attribute("aria-invalid", "true")
    await expect(page.locator(".field-error[data-for=ticket-edge]")).to_contain_text("between 0 and 1")
    await hud.shot("ticket-kelly")


async def test_hotkeys_stage_at_the_touch_step_the_limit_and_cancel_all_never_while_typing(
    hud: Hud, venue: Venue
) -> None:
    page = hud.page
    await page.keyboard.press("?")
    help_overlay = page.locator("#help-overlay")
    await expect(help_overlay).to_be_visible()
    for key in ("B", "S", "X", "↑", "↓"):
        await expect(help_overlay.locator("kbd", has_text=key).first).to_be_visible()
    await hud.shot("help")
    await page.keyboard.press("Escape")
    await expect(help_overlay).to_be_hidden()

    # Typing in a field is typing: "b" in the symbol field stages nothing.
    await page.fill("#ticket-symbol", "")
    await page.type("#ticket-symbol", "b")
    assert await page.evaluate("() => window.hud.store.latest('staged')") is None
    await page.fill("#ticket-symbol", "AAPL")

    # Arrows step the ticket's limit by one tick, as integers (no 0.1 + 0.2 drift).
    await page.fill("#ticket-limit", "100.10")
    await page.locator("#ticket-limit").blur()
    await page.keyboard.press("ArrowUp")
    await expect(page.locator("#ticket-limit")).to_have_value("100.11")
    await page.keyboard.press("ArrowDown")
    await page.keyboard.press("ArrowDown")
    await expect(page.locator("#ticket-limit")).to_have_value("100.09")

    # B stages a buy limit at the ask (the ladder's touch; published here if it has none).
    bid, ask = await venue.quote("AAPL")
    if not await page.evaluate("() => Boolean(window.hud.ladder)"):
        await page.evaluate(
            "([bid, ask]) => window.hud.store.publish('touch', {symbol: 'AAPL', bid, ask, sequence: 1})",
            [str(bid), str(ask)],
        )
    await page.fill("#ticket-qty", "2")
    await page.locator("#ticket-qty").blur()
    touch = await page.evaluate("() => window.hud.store.latest('touch')")
    await page.keyboard.press("b")
    await expect(page.locator("#ticket-status")).to_have_attribute("data-state", "staged")
    staged = await page.evaluate("() => window.hud.store.latest('staged')")
    assert staged["side"] == "BUY" and staged["quantity"] == 2 and staged["orderType"] == "LMT"
    later = await page.evaluate("() => window.hud.store.latest('touch')")
    assert staged["limitPrice"] in {touch["ask"], later["ask"]}

    # X cancels every open order, no arming: a resting order goes Cancelled.
    resting = await _stage(page, qty=1, limit=await _resting_limit(venue))
    assert await hud.arm() == "Grant"
    _, row = await _execute(page, resting)
    await expect(row).to_have_attribute("data-state", "working", timeout=15_000)
    await page.locator("body").click(position={"x": 5, "y": 5})  # focus out of any field
    await page.keyboard.press("x")
    await expect(row).to_have_attribute("data-state", "cancelled", timeout=15_000)
    await expect(row.locator("td.state")).to_have_css("color", await hud.colour_of("--st-cancelled"))
    await hud.shot("cancelled-all")


async def test_the_breaker_banner_shows_a_halt_and_rearming_needs_an_armed_session(hud: Hud) -> None:
    page = hud.page
    await expect(page.locator("#breaker-state")).to_have_attribute("data-state", "ACTIVE")
    tripped = await hud.gql("mutation { tripBreaker { __typename } }")
    assert tripped["data"]["tripBreaker"]["__typename"] == "BreakerCommandSent"
    banner = page.locator("#breaker-banner")
    await expect(banner).to_be_visible(timeout=10_000)
    await expect(banner).to_contain_text("HALTED")
    await expect(page.locator("#breaker-state")).to_have_attribute("data-state", "HALTED")
    await page.fill("#ticket-limit", "1.00")
    await page.click("#stage")
    assert await _execute_reason(page) == "halted"
    await hud.shot("halted")

    await page.click("#rearm")
    await expect(page.locator("#rearm-status")).to_contain_text("Arm first")
    assert await hud.arm() == "Grant"
    await page.click("#rearm")
    await expect(banner).to_be_hidden(timeout=10_000)
    await expect(page.locator("#breaker-state")).to_have_attribute("data-state", "ACTIVE")


async def test_settings_lists_passkeys_and_adds_one_the_existing_passkey_confirmed(
    hud: Hud, venue: Venue
) -> None:
    page = hud.page
    await page.click("#settings-toggle")
    passkeys = page.locator("#passkeys li[data-credential-id]")
    await expect(passkeys).to_have_count(1)
    await expect(passkeys.first).to_have_attribute("data-synced", "false")
    await expect(passkeys.first).to_contain_text("device-bound")

    # The existing passkey must confirm with user verification: without it, nothing is added.
    await hud.authenticator.set_user_verified(False)
    await page.click("#add-passkey")
    await expect(page.locator("#settings-status")).to_have_attribute("data-state", "refused")
    await expect(passkeys).to_have_count(1)
    await hud.authenticator.set_user_verified(True)

    # A second device: a synced (backed-up) passkey. The existing authenticator confirms, then is
    # put away (once the server opened the registration) so the browser registers on the new one.
    async def swap_after_confirmation(route: Route) -> None:
        response = await route.fetch()
        if "confirmAddPasskey" in (route.request.post_data or ""):
            await hud.cdp.send(
                "WebAuthn.removeVirtualAuthenticator", {"authenticatorId": hud.authenticator_id}
            )
            await add_authenticator(hud.context, page, defaultBackupEligibility=True, defaultBackupState=True)
        await route.fulfill(response=response)

    await page.route("**/graphql", swap_after_confirmation)
    await page.click("#add-passkey")
    await expect(page.locator("#settings-status")).to_have_attribute("data-state", "done")
    await expect(passkeys).to_have_count(2)
    await expect(page.locator("#passkeys li[data-synced=true]")).to_contain_text("synced passkey")
    await expect(page.locator("#passkeys li[data-synced=false]")).to_have_count(1)
    await hud.shot("passkeys")

    await page.unroute("**/graphql")
    # Armed with the synced passkey, an order's row says so.
    await page.keyboard.press("Escape")
    assert await hud.arm(symbols=["AAPL"]) == "Grant"
    _, row = await _execute(page, await _stage(page, limit=await _resting_limit(venue)))
    await expect(row).to_have_attribute("data-credential", "synced")
    await expect(row.locator(".badge.synced")).to_have_text("SYNC")
    await hud.shot("synced-order")


async def test_a_state_change_pulses_its_row_unless_the_trader_asks_for_reduced_motion(hud: Hud) -> None:
    page = hud.page
    animation = (
        "(id) => getComputedStyle(document.querySelector(`#blotter tr[data-order-id='${id}']`)).animationName"
    )
    staged = await _stage(page, limit="1.00")
    row = page.locator(f"#blotter tr[data-order-id='{staged['stagedId']}']")
    await expect(row).to_have_class(re.compile(r"\bpulse\b"))
    assert await page.evaluate(animation, staged["stagedId"]) == "pulse"
    await expect(row).not_to_have_class(re.compile(r"\bpulse\b"))  # a short pulse, then still

    await page.emulate_media(reduced_motion="reduce")
    staged = await _stage(page, limit="1.01")
    row = page.locator(f"#blotter tr[data-order-id='{staged['stagedId']}']")
    await expect(row).to_have_class(re.compile(r"\bpulse\b"))
    assert await page.evaluate(animation, staged["stagedId"]) == "none"


async def test_a_filled_order_goes_filled_in_the_blotter_and_shows_in_positions(
    hud: Hud, venue: Venue
) -> None:
    page = hud.page
    _, ask = await venue.quote("AAPL")
    marketable = str((ask * Decimal("1.01")).quantize(CENT, ROUND_DOWN))
    staged = await _stage(page, qty=2, limit=marketable)
    assert await hud.arm(symbols=["AAPL"]) == "Grant"
    _, row = await _execute(page, staged)
    await expect(row).to_have_attribute("data-state", "filled", timeout=15_000)
    await expect(row.locator("td.state")).to_have_css("color", await hud.colour_of("--st-filled"))
    await expect(row).not_to_contain_text("Cancel")  # nothing left to cancel
    position = page.locator(f"#positions tbody tr[data-symbol=AAPL][data-account='{hud.trader.account}']")
    await expect(position).to_be_visible(timeout=10_000)
    assert int(await position.get_attribute("data-quantity") or "0") != 0
    await expect(position.locator("td").nth(3)).to_have_text(re.compile(r"^\d+\.\d+$"))  # average cost
    await hud.shot("filled-position")

    # Between fills the row follows the ladder's mid: the floor's P&L moved by qty x (mid - mark).
    await venue.move("AAPL", "-1.0")
    await expect(position).to_have_attribute("data-mark", "live", timeout=10_000)
    query = "query($a: String) { positions(account: $a) { symbol quantity unrealizedPnl mark } }"

    async def remarked_exactly() -> bool:
        floor = next(
            p
            for p in (await hud.gql(query, {"a": hud.trader.account}))["data"]["positions"]
            if p["symbol"] == "AAPL"
        )
        shown = await position.evaluate("tr => [...tr.cells].map(td => td.textContent)")
        mark, pnl = Decimal(shown[4]), Decimal(shown[5])
        moved = Decimal(floor["unrealizedPnl"]) + floor["quantity"] * (mark - Decimal(floor["mark"]))
        return mark != Decimal(floor["mark"]) and pnl == moved and (mark * 1000) % 5 == 0

    await eventually(remarked_exactly, timeout=10)

    # A book out of sync is no mark: the row goes back to the floor's, and live again after.
    await page.evaluate(FEED, [False, "gap"])
    await expect(position).to_have_attribute("data-mark", "floor")
    await expect(position.locator("td").nth(4)).to_have_attribute("title", "the mid at the last fill")
    await page.evaluate(FEED, [True, None])
    await expect(position).to_have_attribute("data-mark", "live")


async def test_a_ladder_click_stages_the_tickets_quantity_never_executes_and_a_stale_book_holds_execute(
    hud: Hud, venue: Venue
) -> None:
    page = hud.page
    assert await hud.arm(symbols=["AAPL"]) == "Grant"
    await page.fill("#ticket-qty", "7")
    _, ask = await venue.quote("AAPL")
    price = str(ask + Decimal("5.00"))  # a sell far above the market: it would rest, were it sent
    await page.evaluate(
        "(price) => window.hud.store.publish('ladder-click', {symbol: 'AAPL', side: 'SELL', price})", price
    )
    await expect(page.locator("#ticket-status")).to_have_attribute("data-state", "staged")
    staged = await page.evaluate("() => window.hud.store.latest('staged')")
    assert (staged["side"], staged["orderType"], staged["quantity"], staged["limitPrice"]) == (
        "SELL",
        "LMT",
        7,
        price,
    )
    assert "Executed" not in await page.evaluate("() => window.hud.interlock.results()")
    await expect(page.locator("#execute")).to_be_enabled()

    # The book went out of sync: Execute waits, and so does "sell at the bid".
    await page.evaluate(FEED, [False, "gap"])
    await expect(page.locator("#execute")).to_be_disabled()
    assert await _execute_reason(page) == "stale"
    await page.locator("body").click(position={"x": 5, "y": 5})
    await page.keyboard.press("s")
    await expect(page.locator("#ticket-status")).to_contain_text("out of sync (gap)")
    assert (await page.evaluate("() => window.hud.store.latest('staged')"))["stagedId"] == staged["stagedId"]
    await hud.shot("stale")
    await page.evaluate(FEED, [True, None])
    await expect(page.locator("#execute")).to_be_enabled()

    # Disarm: Execute is refused from now on, and the server holds no grant.
    await page.click("#disarm")
    await expect(page.locator("#interlock-status")).to_have_attribute("data-state", "Disarmed")
    await expect(page.locator("#execute")).to_be_disabled()
    await expect(page.locator("#grant-countdown")).to_be_hidden()
    assert (await hud.gql("query { me { grant { expiresAt } } }"))["data"]["me"]["grant"] is None


async def test_a_reload_lists_the_sessions_staged_order_but_execute_sends_it_only_once_picked(
    hud: Hud,
) -> None:
    page = hud.page
    staged = await _stage(page, qty=4, limit="1.00")
    await hud.open()
    await page.locator("#passkeys").wait_for(state="attached")
    row = page.locator(f"#blotter tr[data-order-id='{staged['stagedId']}']")
    await expect(row).to_have_attribute("data-state", "staged")
    # Listed, not the Execute target: an order staged long ago may be far from the market.
    assert await page.evaluate("() => window.hud.store.latest('staged')") is None
    await row.locator("button.select").click()
    await expect(page.locator("#order-hash")).to_have_text(staged["orderHashPrefix"])
    assert await _execute_reason(page) == "not-armed"
    # Discarding it sends nothing and leaves nothing for Execute, here or in any other tab.
    await row.locator("button.cancel").click()
    await expect(row).to_have_count(0)
    assert await page.evaluate("() => window.hud.store.latest('staged')") is None
    listed = await hud.gql("query { stagedOrders { stagedId } }")
    assert staged["stagedId"] not in {s["stagedId"] for s in listed["data"]["stagedOrders"]}
    await hud.open()
    await page.locator("#passkeys").wait_for(state="attached")
    assert await page.evaluate("() => window.hud.blotter.loaded()")
    await expect(page.locator(f"#blotter tr[data-order-id='{staged['stagedId']}']")).to_have_count(0)


async def test_a_rows_cancel_takes_that_order_alone_through_cancel_pending(hud: Hud, venue: Venue) -> None:
    page = hud.page
    await hud.record_states()
    assert await hud.arm(symbols=["AAPL"]) == "Grant"
    first_id, first = await _execute(page, await _stage(page, qty=1, limit=await _resting_limit(venue)))
    second_id, second = await _execute(page, await _stage(page, qty=2, limit=await _resting_limit(venue)))
    await expect(first).to_have_attribute("data-state", "working", timeout=15_000)
    await expect(second).to_have_attribute("data-state", "working", timeout=15_000)

    await first.locator("button.cancel").click()
    await expect(first).to_have_attribute("data-state", "cancelled", timeout=15_000)
    states = [s["state"] for s in await hud.recorded_states(first_id)]
    assert states[-2:] == ["cancel-pending", "cancelled"], states
    pending = next(s for s in await hud.recorded_states(first_id) if s["state"] == "cancel-pending")
    assert pending["color"] == await hud.colour_of("--st-cancel-pending")
    await expect(second).to_have_attribute("data-state", "working")
    assert [s["state"] for s in await hud.recorded_states(second_id)][-1] == "working"


async def test_a_ladder_click_while_a_stage_is_in_flight_leaves_the_ticket_on_the_staged_order(
    hud: Hud, venue: Venue
) -> None:
    page = hud.page
    await page.fill("#ticket-qty", "3")
    _, ask = await venue.quote("AAPL")
    first = str(ask + Decimal("5.00"))
    second = str(ask - Decimal("5.00"))
    # Two clicks in one task: the second arrives while the first one's stage is in flight.
    await page.evaluate(
        """([first, second]) => {
             window.hud.store.publish('ladder-click', {symbol: 'AAPL', side: 'SELL', price: first});
             window.hud.store.publish('ladder-click', {symbol: 'AAPL', side: 'BUY', price: second});
           }""",
        [first, second],
    )
    await expect(page.locator("#ticket-status")).to_have_attribute("data-state", "staged")
    staged = await page.evaluate("() => window.hud.store.latest('staged')")
    assert (staged["side"], staged["limitPrice"]) == ("SELL", first)
    # The ticket still says what Execute would send, and says the second click was not taken.
    assert await page.locator("#ticket-side").input_value() == "SELL"
    assert await page.locator("#ticket-limit").input_value() == first
    await expect(page.locator("#ticket-status")).to_contain_text(f"BUY {second} was not taken")
    # Next to Execute: the staged order's terms, not only its hash.
    await expect(page.locator("#order-terms")).to_have_text(f"SELL 3 AAPL LMT {first}")
    await expect(page.locator("#order-hash")).to_have_text(staged["orderHashPrefix"])


async def test_execute_stops_a_margin_before_the_grants_expiry_by_the_servers_clock(
    hud: Hud, venue: Venue
) -> None:
    page = hud.page
    await _stage(page, limit=await _resting_limit(venue))
    assert await hud.arm() == "Grant"
    await expect(page.locator("#execute")).to_be_enabled()
    expires = (await page.evaluate("() => window.hud.store.latest('grant')"))["expiresAt"]
    # Checked every frame: the time left to the expiry at the moment Execute turned off.
    left = await page.wait_for_function(
        """(expires) => document.getElementById('execute').disabled
             && { left: Date.parse(expires) - Date.now() }""",
        arg=expires,
        polling="raf",
        timeout=(GRANT_S + 3) * 1000,
    )
    left_ms = (await left.json_value())["left"]
    # Same host, so the page's clock is the server's: off before the expiry, by the margin plus
    # what the Date headers (whole seconds, cached up to one) leave of the offset's uncertainty.
    assert 0 < left_ms <= 3200, left_ms
    assert await _execute_reason(page) == "not-armed"
    await expect(page.locator("#execute-reason")).to_contain_text("1 s before the server's expiry")


async def test_execute_needs_a_live_book_of_the_staged_orders_own_symbol(hud: Hud, venue: Venue) -> None:
    page = hud.page
    staged = await _stage(page, limit=await _resting_limit(venue))
    assert staged["symbol"] == "AAPL"
    assert await hud.arm(symbols=["AAPL"]) == "Grant"
    await page.evaluate(FEED, [True, None])
    await expect(page.locator("#execute")).to_be_enabled()
    # The ladder follows another symbol: nothing vouches for AAPL's book.
    await page.evaluate(
        "() => window.hud.store.publish('feed', {symbol: 'MSFT', ok: true, reason: null, since: ''})"
    )
    await expect(page.locator("#execute")).to_be_disabled()
    assert await _execute_reason(page) == "stale"
    await expect(page.locator("#execute-reason")).to_contain_text("No live book for AAPL")
    await page.evaluate(FEED, [True, None])
    await expect(page.locator("#execute")).to_be_enabled()


async def test_a_held_key_fires_its_hotkey_once(hud: Hud) -> None:
    page = hud.page
    press = """(repeat) => document.body.dispatchEvent(
                 new KeyboardEvent('keydown', {key: '?', repeat, bubbles: true}))"""
    await page.evaluate(press, True)  # the auto-repeat of a key held down
    await expect(page.locator("#help-overlay")).to_be_hidden()
    await page.evaluate(press, False)
    await expect(page.locator("#help-overlay")).to_be_visible()


async def test_the_tickets_arrows_step_on_the_books_tick_size(hud: Hud) -> None:
    page = hud.page
    await page.fill("#ticket-symbol", "AAPL")
    await page.fill("#ticket-limit", "100.10")
    await page.locator("#ticket-limit").blur()
    # The book names a nickel grid (the ladder publishes its snapshot's tickSize with the touch);
    # published and pressed in one task, so no book message of the live ladder comes between.
    await page.evaluate(
        """() => {
             window.hud.store.publish('touch', {symbol: 'AAPL', bid: '100.00', ask: '100.05',
                                                sequence: 0, tickSize: '0.05'});
             document.body.dispatchEvent(new KeyboardEvent('keydown', {key: 'ArrowUp', bubbles: true}));
           }"""
    )
    await expect(page.locator("#ticket-limit")).to_have_value("100.15")
