"""The depth ladder in a real browser against the whole floor: it draws the venue's book and
follows it, a click on a row hands the ticket a limit order at that row's price (and a click on
a row that changed under the button is ignored), and a sequence gap or a silent feed switches
click-to-trade off, visibly, until the book is live again."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from tests.hud.browser import new_page
from tests.hud.hud import Hud, ladder_holds_venue_book
from tests.hud.stack import DEPTH_ROWS, Venue

SYMBOL = "AAPL"
TICK = Decimal("0.01")

TICK_SIZE = """query($s: String!) { book(symbol: $s, depth: 1) { tickSize } }"""


async def rows_of(page: Page) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = await page.evaluate("window.hud.ladder.rows()")
    return rows


async def live_ladder(hud: Hud) -> None:
    """Waits until the ladder has drawn a book with both sides and click-to-trade is on."""
    await hud.page.wait_for_function(
        """() => window.hud.ladder && window.hud.ladder.feed() && window.hud.ladder.feed().ok
             && window.hud.ladder.rows().some((r) => r.bid) && window.hud.ladder.rows().some((r) => r.ask)""",
        timeout=15_000,
    )


RECORD_SOCKETS = """
window.sockets = [];
window.held = null; // while an array: the subscribe messages the page sends wait in it
window.WebSocket = class extends window.WebSocket {
  constructor(...args) {
    super(...args);
    window.sockets.push(this);
  }
  send(data) {
    if (window.held && JSON.parse(data).type === 'subscribe') window.held.push(() => super.send(data));
    else super.send(data);
  }
};
"""


WATCH_CLICKS = """() => {
  window.clicks = [];
  let replay = true; // the store hands a listener the newest value at once: not a new click
  window.hud.store.on('ladder-click', (click) => replay || window.clicks.push(click));
  replay = false;
}"""


async def clicks(page: Page) -> list[dict[str, str]]:
    """The ladder clicks published since :data:`WATCH_CLICKS` ran."""
    published: list[dict[str, str]] = await page.evaluate("window.clicks")
    return published


async def best(page: Page, side: str) -> str:
    """The price of the best bid (``bid``) or ask (``ask``) row drawn."""
    rows = [r for r in await rows_of(page) if r[side]]
    return str((rows[-1] if side == "ask" else rows[0])["price"])


@pytest.fixture
async def frozen(venue: Venue) -> AsyncIterator[Venue]:
    """The venue's market clock paused: no order flow, the book holds still."""
    async with venue.frozen():
        yield venue


async def test_the_ladder_draws_one_row_per_tick_and_follows_the_venues_book(hud: Hud) -> None:
    await live_ladder(hud)
    rows = await rows_of(hud.page)
    prices = [Decimal(r["price"]) for r in rows]
    assert len(rows) >= 30, "the pane is tall enough for 30 rows"
    assert all(a - b == TICK for a, b in zip(prices, prices[1:], strict=False)), "one row per tick, top down"
    # The touch sits in the middle third: the ladder is centred on the mid.
    bid_row = next(i for i, r in enumerate(rows) if r["bid"])
    assert len(rows) / 3 <= bid_row <= 2 * len(rows) / 3
    # Cumulative depth adds up from the touch outwards.
    bids = [r for r in rows if r["bid"]]
    running = 0
    for r in bids:
        running += r["bid"]
        assert r["bidCum"] == running
    await hud.shot("ladder")

    first = await hud.page.evaluate("window.hud.ladder.sequence()")
    await hud.page.wait_for_function(
        "(first) => window.hud.ladder.sequence() > first", arg=first, timeout=10_000
    )


async def test_the_ladders_rows_match_the_venues_book_at_a_sampled_moment(hud: Hud, frozen: Venue) -> None:
    await live_ladder(hud)
    page = hud.page
    # The venue holds still from here; its own book (the control API's, not the floor's copy)
    # is what the ladder must show once everything in flight has arrived.
    bids, asks = await ladder_holds_venue_book(page, frozen, SYMBOL)
    last = (await frozen.symbol(SYMBOL))["last"]
    rows = await rows_of(page)
    shown = {Decimal(r["price"]) for r in rows}
    drawn = {Decimal(r["price"]): (r["bid"], r["ask"]) for r in rows if r["bid"] or r["ask"]}
    # Every level of the venue's that reaches the floor (its best DEPTH_ROWS a side) and falls
    # on screen is drawn at its size, and nothing else is.
    published = {price: (size, 0) for price, size in bids[:DEPTH_ROWS]}
    published |= {price: (0, size) for price, size in asks[:DEPTH_ROWS]}
    assert drawn == {price: sizes for price, sizes in published.items() if price in shown}
    assert len(drawn) >= 10, "the touch and at least the nine levels beyond it on both sides are on screen"
    touch = (next(r for r in rows if r["bid"]), [r for r in rows if r["ask"]][-1])
    assert (Decimal(touch[0]["price"]), Decimal(touch[1]["price"])) == (bids[0][0], asks[0][0])
    assert (await hud.gql(TICK_SIZE, {"s": SYMBOL}))["data"]["book"]["tickSize"] == "0.01"
    # The last trade is marked on its row (the trades feed: volume at each price this session).
    await page.wait_for_function(
        "(last) => window.hud.ladder.rows().some((r) => r.last && Number(r.price) === Number(last))",
        arg=last,
        timeout=5_000,
    )
    assert any(r["volume"] > 0 for r in await rows_of(page))
    await hud.shot("sampled")

    # No message for the stale period: click-to-trade goes off, with the reason shown.
    banner = page.locator("#stale-banner")
    await page.locator("#stale-banner[data-reason=stale]").wait_for(state="visible", timeout=10_000)
    assert "no book update" in await banner.inner_text()
    await hud.shot("stale")


async def test_a_click_on_a_bid_row_hands_the_ticket_a_buy_limit_at_that_price(
    hud: Hud, frozen: Venue
) -> None:
    await live_ladder(hud)
    page = hud.page
    # No row can change between press and release (the HUD would rightly ignore the click).
    await ladder_holds_venue_book(page, frozen, SYMBOL)
    price = str(Decimal(await best(page, "bid")) - 2 * TICK)  # a row below the touch
    cell = await page.evaluate("(p) => window.hud.ladder.cellCenter(p, 'bid')", price)
    await page.mouse.click(cell["x"], cell["y"])
    click = await page.evaluate("window.hud.store.latest('ladder-click')")
    assert click == {"symbol": SYMBOL, "side": "BUY", "price": price}
    # The ticket stages a buy limit at that price (staged: nothing is sent before Execute).
    await page.locator("#ticket-status[data-state=staged]").wait_for()
    assert await page.locator("#ticket-side").input_value() == "BUY"
    assert await page.locator("#ticket-limit").input_value() == price
    assert await page.locator("#ticket-type").input_value() == "LMT"
    await hud.shot("click-staged")

    price = str(Decimal(await best(page, "ask")) + 3 * TICK)
    cell = await page.evaluate("(p) => window.hud.ladder.cellCenter(p, 'ask')", price)
    await page.mouse.click(cell["x"], cell["y"])
    click = await page.evaluate("window.hud.store.latest('ladder-click')")
    assert click == {"symbol": SYMBOL, "side": "SELL", "price": price}
    assert price in await page.locator("#ladder-note").inner_text()


async def test_a_click_is_ignored_when_the_row_changed_between_press_and_release(hud: Hud) -> None:
    await live_ladder(hud)
    page = hud.page
    price = await best(page, "bid")
    cell = await page.evaluate("(p) => window.hud.ladder.cellCenter(p, 'bid')", price)
    await page.evaluate(WATCH_CLICKS)
    await page.mouse.move(cell["x"], cell["y"])
    await page.mouse.down()
    assert (await page.evaluate("window.hud.ladder.pressed()"))["price"] == price
    # The order flow changes the touch many times a second: wait until it changed this row.
    await page.wait_for_function(
        "() => { const p = window.hud.ladder.pressed(); return p.now !== p.version; }", timeout=10_000
    )
    await page.mouse.up()
    assert await clicks(page) == []
    assert "changed while the button was down" in await page.locator("#ladder-note").inner_text()


async def test_an_injected_sequence_gap_turns_click_to_trade_off_until_the_resync(
    hud: Hud, venue: Venue
) -> None:
    await hud.page.add_init_script(RECORD_SOCKETS)  # so the test can hold the resubscription
    await hud.open()
    await live_ladder(hud)
    page = hud.page
    price = await best(page, "bid")
    await page.evaluate(WATCH_CLICKS)
    await page.evaluate("window.held = []")
    # In one task: a delta that does not follow the book, then a click on a bid row, before the
    # page can read the resync's snapshot off the socket.
    during = await page.evaluate(
        """([price]) => {
          const seq = window.hud.ladder.sequence();
          window.hud.ladder.inject({__typename: 'BookDelta', sequence: seq + 7, previousSequence: seq + 6,
                                    bids: [{price, size: 1}], asks: []});
          const banner = document.getElementById('stale-banner');
          const at = window.hud.ladder.cellCenter(price, 'bid');
          const canvas = document.getElementById('ladder');
          for (const type of ['pointerdown', 'pointerup']) {
            const init = {clientX: at.x, clientY: at.y, button: 0, bubbles: true};
            canvas.dispatchEvent(new PointerEvent(type, init));
          }
          return {hidden: banner.hidden, reason: banner.dataset.reason, text: banner.textContent,
                  feed: window.hud.store.latest('feed'), clicks: window.clicks.length,
                  note: document.getElementById('ladder-note').textContent,
                  gaps: window.hud.latency.stats().gaps};
        }""",
        [price],
    )
    assert not during["hidden"] and during["reason"] == "gap", json.dumps(during)
    assert "sequence gap" in during["text"]
    assert during["feed"]["ok"] is False and during["feed"]["reason"] == "gap"
    assert during["clicks"] == 0 and "click-to-trade is off" in during["note"]
    assert during["gaps"] >= 1
    # Until the new subscription's snapshot is in, the banner stays, whatever deltas still come.
    await page.wait_for_function("() => window.held.length > 0", timeout=5_000)
    banner = page.locator("#stale-banner")
    assert await banner.get_attribute("data-reason") == "gap" and await banner.is_visible()
    await hud.shot("gap")
    await page.evaluate("() => { const held = window.held; window.held = null; held.forEach((go) => go()); }")

    # The ladder subscribes again, gets a snapshot, and click-to-trade is back.
    await page.locator("#stale-banner").wait_for(state="hidden", timeout=10_000)
    await live_ladder(hud)
    async with venue.frozen():  # the best bid cannot change between press and release
        await ladder_holds_venue_book(page, venue, SYMBOL)
        await live_ladder(hud)
        price = await best(page, "bid")
        cell = await page.evaluate("(p) => window.hud.ladder.cellCenter(p, 'bid')", price)
        await page.mouse.click(cell["x"], cell["y"])
    assert await clicks(page) == [{"symbol": SYMBOL, "side": "BUY", "price": price}]


async def test_our_working_orders_sit_on_their_rows_in_their_state_colour(hud: Hud) -> None:
    await live_ladder(hud)
    page = hud.page
    bid = Decimal(await best(page, "bid"))
    below, above = str(bid - 4 * TICK), str(bid + 40 * TICK)
    orders = [
        {"id": "o-1", "symbol": SYMBOL, "side": "BUY", "quantity": 300, "filledQuantity": 100,
         "limitPrice": below, "state": "partially-filled"},
        {"id": "o-2", "symbol": SYMBOL, "side": "SELL", "quantity": 50, "filledQuantity": 0,
         "limitPrice": above, "state": "working"},
        {"id": "o-3", "symbol": SYMBOL, "side": "BUY", "quantity": 10, "filledQuantity": 10,
         "limitPrice": below, "state": "filled"},
        {"id": "o-4", "symbol": "MSFT", "side": "BUY", "quantity": 10, "filledQuantity": 0,
         "limitPrice": below, "state": "working"},
    ]  # fmt: skip
    await page.evaluate(
        "(orders) => window.hud.store.publish('orders', new Map(orders.map((o) => [o.id, o])))", orders
    )
    await page.wait_for_function(
        "(below) => window.hud.ladder.rows().some((r) => r.price === below && r.own.length)",
        arg=below,
        timeout=5_000,
    )
    own = {r["price"]: r["own"] for r in await rows_of(page) if r["own"]}
    assert own[below] == [{"id": "o-1", "side": "BUY", "state": "partially-filled", "quantity": 200}]
    # A SELL 40 ticks above the bid is off screen until the trader scrolls there.
    assert above not in own
    await hud.shot("own-orders")


async def test_the_latency_overlay_shows_message_to_paint_and_painting_off_measures_the_handler(
    hud: Hud,
) -> None:
    await live_ladder(hud)
    page = hud.page
    overlay = page.locator("#latency-overlay")
    assert await overlay.is_hidden()
    await page.click("#latency-toggle")
    await overlay.wait_for(state="visible")
    await page.evaluate("window.hud.latency.reset()")
    # Ten books: on the embedded broker the hot path publishes at most ten a second, and the
    # zero-intelligence venue changes the book less often than that.
    await page.wait_for_function("() => window.hud.latency.stats().count >= 10", timeout=20_000)
    stats = await page.evaluate("window.hud.latency.stats()")
    assert stats["mode"] == "paint" and 0 < stats["p50"] <= stats["p99"] <= stats["max"] < 1000
    assert "message → paint" in await overlay.inner_text()
    await hud.shot("latency")

    await page.evaluate("window.hud.paint(false); window.hud.latency.reset()")
    sequence = await page.evaluate("window.hud.ladder.sequence()")
    await page.wait_for_function("() => window.hud.latency.stats().count >= 10", timeout=20_000)
    assert await page.evaluate("window.hud.latency.stats().mode") == "handler"
    assert await page.evaluate("window.hud.ladder.sequence()") == sequence, "nothing painted"
    await page.evaluate("window.hud.paint(true)")
    await page.keyboard.press("l")
    await overlay.wait_for(state="hidden")


BOOK_LOGIC = """async () => {
  const { grid, toTicks, fromTicks, midString } = await import('/hud/ticks.js');
  const { Book } = await import('/hud/book.js');
  const cent = grid('0.01');
  const nickel = grid('0.05');
  const off = (f) => { try { f(); return false; } catch (e) { return e.message; } };
  const book = new Book('AAPL');
  const level = (price, size) => ({ price, size });
  const out = {
    ticks: [toTicks('187.25', cent), toTicks('187.2', cent), toTicks('187.250', cent),
            toTicks('1.05', nickel)],
    offGrid: [off(() => toTicks('187.255', cent)), off(() => toTicks('1.07', nickel)),
              off(() => toTicks('1e3', cent))],
    prices: [fromTicks(18725, cent), fromTicks(5, cent), fromTicks(21, nickel)],
    mids: [midString(18724, 18726, cent), midString(18724, 18725, cent)],
    beforeSnapshot: book.delta({ sequence: 2, previousSequence: 1, bids: [], asks: [] }).result,
  };
  book.snapshot({ sequence: 10, tickSize: '0.01', bids: [level('187.24', 300), level('187.23', 200)],
                  asks: [level('187.26', 100), level('187.27', 400)] });
  out.touch = book.touch();
  out.mid = book.mid();
  out.spread = book.spreadTicks();
  out.cum = [...book.cumulative().bids.entries(), ...book.cumulative().asks.entries()];
  const versionBefore = book.rowVersion(18723);
  out.linked = book.delta({ sequence: 12, previousSequence: 10,
                            bids: [level('187.24', 0), level('187.23', 250)],
                            asks: [level('187.25', 50)] }).result;
  out.afterDelta = { touch: book.touch(), sequence: book.sequence, bids: [...book.bids.entries()] };
  out.rowChanged = [versionBefore, book.rowVersion(18723), book.rowVersion(18727)];
  out.gap = book.delta({ sequence: 14, previousSequence: 13, bids: [], asks: [] });
  out.stillOut = book.delta({ sequence: 15, previousSequence: 14, bids: [], asks: [] }).result;
  out.synced = book.synced;
  out.resynced = book.snapshot({ sequence: 20, bids: [level('187.20', 5)], asks: [] }).result;
  out.oneSided = { synced: book.synced, mid: book.mid(), centre: book.centreTicks() };
  out.badSize = book.delta({ sequence: 21, previousSequence: 20,
                             bids: [level('187.20', -1)], asks: [] }).result;
  out.badPrice = book.snapshot({ sequence: 22, bids: [level('187.205', 5)], asks: [] });
  return out;
}"""


async def test_the_book_keys_prices_in_whole_ticks_and_applies_only_deltas_that_follow_it(
    hud_browser: Browser, hud_origin: str
) -> None:
    context, page = await new_page(hud_browser)
    try:
        await page.goto(hud_origin)
        out = await page.evaluate(BOOK_LOGIC)
    finally:
        await context.close()
    assert out["ticks"] == [18725, 18720, 18725, 21]
    assert all(out["offGrid"]), out["offGrid"]
    assert "not on the 0.01 grid" in out["offGrid"][0]
    assert out["prices"] == ["187.25", "0.05", "1.05"]
    assert out["mids"] == ["187.25", "187.245"]
    assert out["beforeSnapshot"] == "gap"
    assert out["touch"] == {"bid": "187.24", "ask": "187.26"}
    assert (out["mid"], out["spread"]) == ("187.25", 2)
    assert out["cum"] == [[18724, 300], [18723, 500], [18726, 100], [18727, 500]]
    assert out["linked"] == "applied"
    assert out["afterDelta"] == {
        "touch": {"bid": "187.23", "ask": "187.25"},
        "sequence": 12,
        "bids": [[18723, 250]],
    }
    assert out["rowChanged"] == [10, 12, 10]
    assert out["gap"]["result"] == "gap" and "at 12" in out["gap"]["detail"]
    assert out["stillOut"] == "gap" and out["synced"] is False, "out of sync until a snapshot"
    assert out["resynced"] == "applied"
    assert out["oneSided"] == {"synced": True, "mid": None, "centre": 18720}
    assert out["badSize"] == "invalid"
    assert out["badPrice"]["result"] == "invalid" and "187.205" in out["badPrice"]["detail"]


async def test_prices_hold_still_under_the_pointer_and_the_ladder_recentres_when_asked(
    hud: Hud, venue: Venue
) -> None:
    await live_ladder(hud)
    page = hud.page
    box = await page.locator("#ladder").bounding_box()
    assert box is not None
    await page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    top = (await rows_of(page))[0]["price"]
    bid = Decimal(await best(page, "bid"))

    await venue.move(SYMBOL, "0.5", ms=0)  # ~115 ticks up: the book leaves the screen
    await page.wait_for_function(
        "(bid) => Number(window.hud.store.latest('touch').bid) > bid + 0.5",
        arg=float(bid),
        timeout=10_000,
    )
    await page.evaluate("new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")
    assert (await rows_of(page))[0]["price"] == top, "auto-centre waits while the pointer is on the ladder"

    await page.mouse.move(2, box["y"] + 5)  # off the ladder: it catches up with the market
    await live_ladder(hud)
    rows = await rows_of(page)
    assert Decimal(rows[0]["price"]) > Decimal(top)
    bid_row = next(i for i, r in enumerate(rows) if r["bid"])
    assert len(rows) / 3 <= bid_row <= 2 * len(rows) / 3

    # Scrolled away with the wheel, C brings the mid back to the middle.
    await page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    await page.mouse.wheel(0, 16 * 40)
    await page.wait_for_function(
        "(top) => Number(window.hud.ladder.rows()[0].price) < Number(top) - 0.3",
        arg=rows[0]["price"],
        timeout=5_000,
    )
    await page.keyboard.press("c")
    await page.wait_for_function(
        """() => { const rows = window.hud.ladder.rows();
          const i = rows.findIndex((r) => r.bid);
          return i >= rows.length / 3 && i <= 2 * rows.length / 3; }""",
        timeout=5_000,
    )

    # A high-DPI screen: the canvas's backing store follows the device pixels, so text is crisp.
    await hud.cdp.send(
        "Emulation.setDeviceMetricsOverride",
        {"width": 1600, "height": 900, "deviceScaleFactor": 2, "mobile": False},
    )
    await page.wait_for_function(
        """() => { const c = document.getElementById('ladder'); const r = c.getBoundingClientRect();
          return c.width === Math.round(r.width * 2) && c.height === Math.round(r.height * 2); }""",
        timeout=5_000,
    )
    await live_ladder(hud)
    await hud.shot("hidpi")
    await hud.cdp.send("Emulation.clearDeviceMetricsOverride")


async def test_a_lost_connection_turns_click_to_trade_off_until_a_fresh_book_arrives(hud: Hud) -> None:
    await hud.page.add_init_script(RECORD_SOCKETS)  # the page's sockets, so the test can drop one
    await hud.open()
    await live_ladder(hud)
    page = hud.page
    await page.evaluate(
        """() => {
          window.feeds = [];
          window.hud.store.on('feed', (feed) => window.feeds.push(feed));
          const banner = document.getElementById('stale-banner');
          window.banners = [];
          new MutationObserver(() => window.banners.push([banner.hidden, banner.dataset.reason,
                                                          banner.textContent]))
            .observe(banner, {attributes: true, childList: true});
          for (const socket of window.sockets) socket.close(3000, 'dropped by the test');
        }"""
    )
    # graphql-ws reconnects and subscribes again: the first message is a fresh snapshot.
    await page.wait_for_function(
        "() => window.feeds.some((f) => f.reason === 'disconnected') && window.feeds.at(-1).ok",
        timeout=15_000,
    )
    reasons = [f["reason"] for f in await page.evaluate("window.feeds")]
    assert reasons[0] is None and reasons[-1] is None and "disconnected" in reasons, reasons
    banners = await page.evaluate("window.banners")
    shown = [b for b in banners if not b[0]]
    assert shown and shown[0][1] == "disconnected" and "connection to the floor is down" in shown[0][2]
    assert banners[-1][0] is True, "hidden again once the fresh book is in"
    # Ok again only with a snapshot after the drop: the book held before it is not traded on.
    await live_ladder(hud)


PAGE_LOGIC = """async () => {
  const { Book } = await import('/hud/book.js');
  const { mid, remarked } = await import('/hud/decimal.js');
  const { midString, grid } = await import('/hud/ticks.js');
  const { percent } = await import('/hud/prices.js');
  const latency = await import('/hud/latency.js');
  const clock = await import('/hud/clock.js');
  const level = (price, size) => ({ price, size });
  const out = {};

  // A snapshot that fails on its own grid leaves the book it found: grid, levels, prices.
  const book = new Book('AAPL');
  book.snapshot({ sequence: 1, tickSize: '0.01', bids: [level('187.24', 3)], asks: [level('187.26', 4)] });
  out.failed = book.snapshot({ sequence: 2, tickSize: '0.05', bids: [level('187.24', 3)], asks: [] }).result;
  out.kept = { tick: book.grid.tickSize, price: book.price(18724), bids: [...book.bids.entries()] };

  // Rows that left the book are remembered for a while, not for ever.
  const busy = new Book('AAPL');
  busy.snapshot({ sequence: 1, bids: [level('100.00', 1)], asks: [level('200.00', 1)] });
  for (let i = 0; i < 20000; i++) {
    const cents = 10001 + i;
    const price = `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`;
    busy.delta({ sequence: 2 * i + 2, previousSequence: 2 * i + 1, bids: [], asks: [level(price, 1)] });
    busy.delta({ sequence: 2 * i + 3, previousSequence: 2 * i + 2, bids: [], asks: [level(price, 0)] });
  }
  out.changedAt = busy.changedAt.size;
  out.lastGone = busy.rowVersion(busy.ticks('300.00'));

  // One decimal arithmetic for the ladder's mid and the positions' mark.
  const cent = grid('0.01');
  out.mids = [mid('187.24', '187.26'), mid('187.24', '187.25'), midString(18724, 18726, cent),
              midString(18724, 18725, cent), mid('0.0001', '0.0002')];
  out.remarked = remarked('-1.50', -200, '229.805', '195.3');
  out.percent = [percent('0.052'), percent('0.1024837965'), percent('-0.1'), percent('1', 0)];

  // The overlay's figures are the recent samples, not the whole run (which the bench reads).
  latency.reset();
  for (let i = 0; i < 20000; i++) latency.sample(1);
  for (let i = 0; i < 9000; i++) latency.sample(5);
  out.latency = { p50: latency.stats().p50, count: latency.stats().count, run: latency.allSamples().length };
  latency.reset();

  // The server's clock from Date headers (whole seconds, maybe a second old) narrows below one.
  const answer = (date) => ({ headers: { get: () => new Date(date).toUTCString() } });
  const base = Math.floor(Date.now() / 1000) * 1000 + 3_600_000; // a server an hour ahead
  const t0 = performance.now();
  clock.noteServerDate(answer(base), t0, t0);
  clock.noteServerDate(answer(base + 1000), t0 + 400, t0 + 400);
  clock.noteServerDate(answer(base + 1000), t0 + 1500, t0 + 1500); // a header a second old
  const o = clock.clockOffset();
  out.clock = { uncertainty: o.uncertaintyMs, ahead: Math.round(o.offsetMs / 1000) };
  return out;
}"""


async def test_the_pages_book_decimals_clock_and_latency_logic(hud_browser: Browser, hud_origin: str) -> None:
    context, page = await new_page(hud_browser)
    try:
        await page.goto(hud_origin)
        out = await page.evaluate(PAGE_LOGIC)
    finally:
        await context.close()
    assert out["failed"] == "invalid"
    assert out["kept"] == {"tick": "0.01", "price": "187.24", "bids": [[18724, 3]]}
    assert out["changedAt"] <= 4096 and out["lastGone"] == 40001
    assert out["mids"] == ["187.25", "187.245", "187.25", "187.245", "0.00015"]
    assert out["remarked"] == str(Decimal("-1.50") + -200 * (Decimal("195.3") - Decimal("229.805")))
    assert out["percent"] == ["5.2", "10.2", "-10", "100"]
    assert out["latency"] == {"p50": 5, "count": 8192, "run": 29000}
    assert round(out["clock"]["uncertainty"]) == 450  # [+600, +1500] ms after the first header
    assert 3599 <= out["clock"]["ahead"] <= 3601


async def test_a_click_beyond_the_touch_on_the_wrong_side_is_refused(hud: Hud) -> None:
    await live_ladder(hud)
    page = hud.page
    await page.evaluate(WATCH_CLICKS)
    # A bid-column click at a price above the ask would be a marketable buy, not a resting bid.
    price = str(Decimal(await best(page, "ask")) + 3 * TICK)
    cell = await page.evaluate("(p) => window.hud.ladder.cellCenter(p, 'bid')", price)
    await page.mouse.click(cell["x"], cell["y"])
    await expect(page.locator("#ladder-note")).to_contain_text("would cross the ask: use the ticket")
    price = str(Decimal(await best(page, "bid")) - 3 * TICK)
    cell = await page.evaluate("(p) => window.hud.ladder.cellCenter(p, 'ask')", price)
    await page.mouse.click(cell["x"], cell["y"])
    await expect(page.locator("#ladder-note")).to_contain_text("would cross the bid: use the ticket")
    assert await clicks(page) == []


async def test_the_ladder_follows_the_symbol_the_ticket_names(hud: Hud, venue: Venue) -> None:
    await live_ladder(hud)
    page = hud.page
    await page.fill("#ticket-symbol", "MSFT")
    await page.locator("#ticket-symbol").press("Tab")  # committed: the change event
    await page.wait_for_function(
        """() => window.hud.ladder.symbol() === 'MSFT' && window.hud.ladder.feed().symbol === 'MSFT'
             && window.hud.ladder.feed().ok && window.hud.ladder.rows().some((r) => r.bid)""",
        timeout=15_000,
    )
    touch = await page.evaluate("() => window.hud.store.latest('touch')")
    assert touch["symbol"] == "MSFT" and touch["tickSize"] == "0.01"
    bid, ask = await venue.quote("MSFT")
    assert bid - 1 <= Decimal(touch["bid"]) <= ask + 1  # MSFT's book, not AAPL's
    assert await page.locator("#symbol-label").inner_text() == "MSFT"


async def test_a_click_on_a_book_gone_silent_is_refused_even_before_the_feed_check_notices(hud: Hud) -> None:
    await live_ladder(hud)
    page = hud.page
    await page.evaluate(WATCH_CLICKS)
    price = str(Decimal(await best(page, "bid")) - 3 * TICK)
    cell = await page.evaluate("(p) => window.hud.ladder.cellCenter(p, 'bid')", price)
    # The page is busy past the stale limit (no message handled, no periodic check ran), then the
    # trader's press and release land in that same task: only a check at pointer-up sees it.
    note = await page.evaluate(
        """([x, y]) => {
             const canvas = document.getElementById('ladder');
             const until = performance.now() + 5600;
             while (performance.now() < until) { /* a long task */ }
             const at = { clientX: x, clientY: y, button: 0, bubbles: true, pointerId: 1 };
             canvas.dispatchEvent(new PointerEvent('pointerdown', at));
             canvas.dispatchEvent(new PointerEvent('pointerup', at));
             return document.getElementById('ladder-note').textContent;
           }""",
        [cell["x"], cell["y"]],
    )
    assert "click-to-trade is off (stale)" in note
    assert await clicks(page) == []
