"""The HUD end to end in Chromium, across its parts: signed in with a passkey and live; Execute
refused by the server before arming whatever the page does; a click-to-trade order through
every state of its life in the blotter, in its colours; a flash crash at the venue shown at once
and every working order cancelled. Screenshots of each state go to ``tests/artifacts/``."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from decimal import ROUND_DOWN, Decimal
from typing import Any

import asyncpg
from playwright.async_api import Locator, Page, Response, expect

from tests.helpers import eventually
from tests.hud.hud import Hud, ladder_holds_venue_book
from tests.hud.stack import Venue
from tests.hud.test_order_detail import timeline_of

SYMBOL = "AAPL"
CENT = Decimal("0.01")
STAGE = """mutation($t: OrderTicketInput!) { stageOrder(ticket: $t) {
  __typename ... on Staged { stagedId } ... on Invalid { reason detail } } }"""
EXECUTE = """mutation($id: String!) { executeOrder(stagedId: $id) {
  __typename ... on NotArmed { reason detail } ... on Executed { commandId } } }"""


def graphql_operation(name: str) -> Callable[[Response], bool]:
    """Matches the answer to a GraphQL POST whose document calls ``name`` (``executeOrder``)."""

    def matches(response: Response) -> bool:
        request = response.request
        return (
            request.method == "POST"
            and request.url.endswith("/graphql")
            and name in (request.post_data or "")
        )

    return matches


async def answer_of(response: Response, field: str) -> dict[str, Any]:
    body = json.loads(await response.text())
    assert not body.get("errors"), body
    result: dict[str, Any] = body["data"][field]
    return result


async def stage_limit(page: Page, side: str, quantity: int, price: Decimal) -> str:
    """Fill the ticket by hand and press Stage; the staged id, once the server staged it."""
    await page.select_option("#ticket-side", side)
    await page.select_option("#ticket-type", "LMT")
    await page.fill("#ticket-qty", str(quantity))
    await page.fill("#ticket-limit", str(price))
    async with page.expect_response(graphql_operation("stageOrder")) as staged:
        await page.click("#stage")
    answer = await answer_of(await staged.value, "stageOrder")
    assert answer["__typename"] == "Staged", answer
    await expect(page.locator("#ticket-status")).to_have_attribute("data-state", "staged")
    staged_id: str = answer["stagedId"]
    return staged_id


async def execute(page: Page) -> dict[str, Any]:
    """Press Execute; the server's answer."""
    await expect(page.locator("#execute")).to_be_enabled()
    async with page.expect_response(graphql_operation("executeOrder")) as executed:
        await page.click("#execute")
    return await answer_of(await executed.value, "executeOrder")


def row_of(page: Page, order_id: str, state: str) -> Locator:
    """The blotter row of order ``order_id`` (a staged id while staged) once it shows ``state``.
    (The blotter shows every order of the account, other traders' too: rows are told apart by id.)"""
    return page.locator(f"#blotter tbody tr[data-order-id='{order_id}'][data-state={state}]")


async def ledgered(pool: asyncpg.Pool, agent_id: str) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM ledger_entries WHERE agent_id = $1", agent_id))


async def test_the_hud_signs_in_with_a_passkey_and_every_part_comes_up_live(hud: Hud) -> None:
    page = hud.page
    await expect(page.locator("#connection")).to_have_attribute("data-state", "open")
    await expect(page.locator("#signin-screen")).to_be_hidden()
    # Every part mounted: none reported an error.
    assert await page.locator("#module-errors").inner_text() == ""
    # The passkey the page signed in with is the virtual authenticator's, on this rp id.
    (credential,) = await hud.authenticator.credentials()
    assert credential["rpId"] == "localhost" and credential["isResidentCredential"]
    me = (await hud.gql("{ me { name authenticators { credentialId } grant { expiresAt } } }"))["data"]["me"]
    assert me["name"] == hud.trader.name and me["grant"] is None
    assert [a["credentialId"].rstrip("=") for a in me["authenticators"]] == [
        credential["credentialId"].replace("+", "-").replace("/", "_").rstrip("=")
    ]
    # The ladder draws the venue's book.
    await page.wait_for_function("() => window.hud.ladder && window.hud.ladder.rows().length > 0")
    await hud.shot("signed-in")


async def test_execute_before_arming_is_refused_by_the_server_whether_forced_or_crafted(
    hud: Hud, venue: Venue, ledger_pool: asyncpg.Pool
) -> None:
    page = hud.page
    bid, _ = await venue.quote(SYMBOL)
    far = (bid * Decimal("0.8")).quantize(CENT, ROUND_DOWN)
    working_before = await venue.open_orders()

    await stage_limit(page, "BUY", 1, far)
    execute_button = page.locator("#execute")
    await expect(execute_button).to_be_disabled()
    await expect(execute_button).to_have_attribute("data-reason", "not-armed")
    await expect(page.locator("#execute-reason")).not_to_be_empty()
    await hud.shot("unarmed-staged")

    # A script (or a person with the devtools) enables the button and clicks: the request goes
    # out, and the server refuses it.
    async with page.expect_response(graphql_operation("executeOrder")) as forced:
        await execute_button.evaluate("(button) => { button.disabled = false; button.click(); }")
    refused = await answer_of(await forced.value, "executeOrder")
    assert refused["__typename"] == "NotArmed", refused
    await expect(page.locator("#interlock-status")).to_have_attribute("data-state", "NotArmed")

    # A request crafted by a script on the page, with the page's own cookie and origin.
    ticket = {"account": hud.trader.account, "symbol": SYMBOL, "side": "BUY", "orderType": "LMT",
              "quantity": 1, "limitPrice": str(far)}  # fmt: skip
    staged = (await hud.gql(STAGE, {"t": ticket}))["data"]["stageOrder"]
    assert staged["__typename"] == "Staged", staged
    crafted = (await hud.gql(EXECUTE, {"id": staged["stagedId"]}))["data"]["executeOrder"]
    assert crafted["__typename"] == "NotArmed", crafted
    await hud.shot("unarmed-refused")

    # Nothing was signed, ledgered or sent.
    assert await ledgered(ledger_pool, hud.trader.agent_id) == 0
    assert await venue.open_orders() == working_before


async def test_a_click_to_trade_order_goes_staged_pending_working_filled_in_its_colours(
    hud: Hud, venue: Venue
) -> None:
    page = hud.page
    # Colours are read as drawn, not mid-pulse.
    await page.emulate_media(reduced_motion="reduce")
    assert await hud.arm(symbols=[SYMBOL], max_qty=10, max_notional="5000") == "Grant"
    await expect(page.locator("#execute")).to_have_attribute("data-reason", "nothing-staged")
    await page.fill("#ticket-qty", "1")
    bid, _ = await venue.quote(SYMBOL)
    # Ten ticks under the bid: it rests (Working) until the market is moved through it.
    price = bid - 10 * CENT
    await hud.record_states()
    # The venue held still: no row can change between press and release (a click on a row that
    # changed under the button is rightly ignored).
    async with venue.frozen():
        await ladder_holds_venue_book(page, venue, SYMBOL)
        async with page.expect_response(graphql_operation("stageOrder")) as staged:
            await click_ladder(page, price, "bid")
    staged_id = (await answer_of(await staged.value, "stageOrder"))["stagedId"]
    await expect(page.locator("#ticket-status")).to_have_attribute("data-state", "staged")
    await expect(page.locator("#order-hash")).not_to_be_empty()
    await hud.shot("staged")

    executed = await execute(page)
    assert executed["__typename"] == "Executed", executed
    order_id = executed["commandId"]
    await row_of(page, order_id, "working").wait_for()
    await hud.shot("working")

    await venue.move(SYMBOL, "-1.5")
    await row_of(page, order_id, "filled").wait_for(timeout=20_000)
    await hud.shot("filled")
    # Its timeline: the hot path's stages to the broker's socket write, the acknowledgement, the fill.
    stages = ["sentry", "sizer", "risk_gate", "ledger.append", "broker.place"]
    drawn = await timeline_of(hud, order_id, ["hotpath.intake", *stages, "broker.ack", "broker.fill"])
    names = [s["name"] for s in drawn]
    assert [n for n in names if n in stages] == stages, names
    await hud.shot("timeline")
    await page.keyboard.press("Escape")

    seen = [s for s in await hud.recorded_states() if s["id"] in (staged_id, order_id)]
    assert all(str(price) in s["row"] for s in seen), seen
    states = [s["state"] for s in seen]
    assert collapse(states) == ["staged", "pending", "working", "filled"], seen
    colours = {}
    for s in seen:
        expected = await hud.colour_of(f"--st-{s['state']}")
        assert expected in (s["color"], s["background"]), s
        colours[s["state"]] = expected
    assert len(set(colours.values())) == 4, colours


async def test_a_flash_crash_shows_the_breaker_banner_and_cancels_every_working_order(
    hud: Hud, venue: Venue
) -> None:
    page = hud.page
    await page.emulate_media(reduced_motion="reduce")
    assert await hud.arm(symbols=[SYMBOL], max_qty=10, max_notional="5000") == "Grant"
    bid, _ = await venue.quote(SYMBOL)
    # 20 % under the bid: below the whole crash, so they never fill.
    prices = [(bid * Decimal("0.8")).quantize(CENT, ROUND_DOWN) - i * CENT for i in range(2)]
    orders = []
    for price in prices:
        await stage_limit(page, "BUY", 1, price)
        executed = await execute(page)
        assert executed["__typename"] == "Executed", executed
        orders.append(executed["commandId"])
    for order_id in orders:
        await row_of(page, order_id, "working").wait_for()
    await expect(page.locator("#breaker-banner")).to_be_hidden()

    await venue.flash_crash(SYMBOL, 15, 300)
    banner = page.locator("#breaker-banner")
    await expect(banner).to_be_visible(timeout=15_000)
    for order_id in orders:
        await row_of(page, order_id, "cancelled").wait_for()
    await hud.shot("breaker")

    trip = (await hud.gql("{ breaker { state trip { symbol drop cancelledOrders cancelMillis } } }"))["data"]
    assert trip["breaker"]["state"] == "HALTED"
    trip = trip["breaker"]["trip"]
    assert trip["symbol"] == SYMBOL and trip["cancelledOrders"] >= len(prices)
    text = await banner.inner_text()
    assert SYMBOL in text
    # The drop as a trader reads it: a percentage to a tenth or a hundredth, not 28 digits.
    shown = re.search(r"(\d+(?:\.(\d*))?)\s?%", text)
    assert shown and len(shown.group(2) or "") <= 2, text
    assert abs(Decimal(shown.group(1)) - Decimal(trip["drop"]) * 100) <= Decimal("0.05"), text
    assert re.search(rf"\b{trip['cancelledOrders']}\b", text) and re.search(
        rf"\b{trip['cancelMillis']}\b", text
    ), text
    await expect(page.locator("#breaker-state")).to_have_attribute("data-state", "HALTED")
    cancelled = await hud.colour_of("--st-cancelled")
    for order_id in orders:
        state_cell = row_of(page, order_id, "cancelled").locator("td.state")
        drawn = await state_cell.evaluate(
            "(td) => [getComputedStyle(td).color, getComputedStyle(td).backgroundColor]"
        )
        assert cancelled in drawn, drawn
    await eventually(lambda: _none_working(venue), timeout=10.0)


async def _none_working(venue: Venue) -> bool:
    return await venue.open_orders() == 0


def collapse(states: list[str]) -> list[str]:
    """Consecutive repeats as one: the states in the order they were shown."""
    return [s for i, s in enumerate(states) if i == 0 or states[i - 1] != s]


async def click_ladder(page: Page, price: Decimal, side: str) -> None:
    """Click the ladder's ``side`` cell at ``price`` where it is drawn: the pointer first rests on
    the ladder (auto-centre pauses, so the row stays under it), then clicks its centre."""
    where = """([price, side]) => window.hud.ladder && window.hud.ladder.cellCenter(price, side)"""
    first = await page.wait_for_function(where, arg=[str(price), side])
    point = await first.json_value()
    await page.mouse.move(point["x"], point["y"])
    point = await page.evaluate(where, [str(price), side])
    assert point is not None, f"{price} is not on the ladder"
    await page.mouse.click(point["x"], point["y"])
