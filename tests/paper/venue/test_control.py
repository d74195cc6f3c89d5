"""The control API and ``floor paper`` commands against a real venue process."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from click.testing import Result
from typer.testing import CliRunner

from floor.paper_cmd import PaperControlError, app
from paper.venue.client import VenueClient
from paper.venue.control_token import authorization
from paper.venue.events import DropClients, FreezeGateway, KillGateway, TickEvent, VenueEvent, VenueReset
from paper.venue.messages import ExecutionFilter, OrderAck, OrderSpec, PlaceOrder
from tests.helpers import eventually
from tests.paper.venue.conftest import VenueProcess

runner = CliRunner()


def floor_paper(venue_process: VenueProcess, *args: str) -> Result:
    """``floor paper ARGS --url <this venue>``, reading the token from the venue's var dir."""
    return runner.invoke(app, [*args, "--url", venue_process.control_url], env=venue_process.cli_env)


def mid(tick_bid: Decimal | None, tick_ask: Decimal | None) -> Decimal | None:
    if tick_bid is None or tick_ask is None:
        return None  # one side swept empty for a moment
    return (tick_bid + tick_ask) / 2


async def test_flash_crash_moves_the_mid_by_at_least_the_percentage_and_emits_ticks(
    venue: VenueClient, venue_process: VenueProcess
) -> None:
    ticks: list[TickEvent] = []
    venue.add_listener(
        lambda e: ticks.append(e) if isinstance(e, TickEvent) and e.tick.symbol == "JPM" else None
    )
    before = await venue.subscribe_ticks("JPM")
    start = mid(before.bid, before.ask)
    assert start is not None
    result = floor_paper(venue_process, "flash-crash", "JPM", "10", "--ms", "150")
    assert result.exit_code == 0, result.output
    target = start * Decimal("0.90")
    mids = lambda: [m for t in ticks if (m := mid(t.tick.bid, t.tick.ask)) is not None]  # noqa: E731
    await eventually(lambda: any(m <= target for m in mids()), timeout=10)
    assert len(ticks) >= 2, "the fall is visible tick by tick"
    # Resting bids are swept step by step on the way down, so trades print far below the start.
    assert min(t.tick.last for t in ticks if t.tick.last is not None) <= start * Decimal("0.92")


async def test_reset_clears_orders_and_positions_but_not_order_ids(
    venue: VenueClient, venue_process: VenueProcess
) -> None:
    events: list[VenueEvent] = []
    venue.add_listener(events.append)
    order_id = await venue.next_valid_id(5)
    tick = await venue.subscribe_ticks("AAPL")
    assert tick.ask is not None
    await venue.place_order(PlaceOrder(5, order_id, OrderSpec("BUY", 10, "MKT"), symbol="AAPL"))
    await venue.place_order(
        PlaceOrder(5, order_id + 1, OrderSpec("BUY", 10, "LMT", lmt_price=tick.ask - 5), symbol="AAPL")
    )
    assert await venue.positions() and await venue.open_orders()
    result = floor_paper(venue_process, "reset", "--seed", "99")
    assert result.exit_code == 0, result.output
    await eventually(lambda: any(isinstance(e, VenueReset) and e.seed == 99 for e in events))
    assert await venue.open_orders() == ()
    assert await venue.positions() == ()
    assert await venue.executions(ExecutionFilter()) == ()
    assert await venue.next_valid_id(5) == order_id + 2
    assert venue_process.control("GET", "/status")["seed"] == 99


async def test_gateway_controls_reach_only_the_named_gateway(
    venue: VenueClient, venue_process: VenueProcess
) -> None:
    other = await VenueClient.connect(venue_process.host, venue_process.port, "gw-other")
    mine: list[VenueEvent] = []
    theirs: list[VenueEvent] = []
    venue.add_listener(mine.append)
    other.add_listener(theirs.append)
    try:
        assert "gw-other" in venue_process.control("GET", "/status")["gateways"]  # type: ignore[operator]
        for args in (["drop", "gw-test"], ["freeze", "gw-test", "2.5"], ["kill", "gw-test"]):
            result = floor_paper(venue_process, *args)
            assert result.exit_code == 0, result.output
        expected = [DropClients("gw-test"), FreezeGateway("gw-test", 2.5), KillGateway("gw-test")]
        await eventually(
            lambda: [e for e in mine if type(e) in (DropClients, FreezeGateway, KillGateway)] == expected
        )
        await other.current_time_ns()  # everything sent before this reply has arrived
        assert not [e for e in theirs if type(e) in (DropClients, FreezeGateway, KillGateway)]
        missing = floor_paper(venue_process, "kill", "no-such-gateway")
        assert missing.exit_code == 1 and "not found" in missing.output
    finally:
        await other.close()


def test_bad_control_requests_get_400_or_404_and_change_nothing(venue_process: VenueProcess) -> None:
    before = venue_process.control("GET", "/status")
    url = venue_process.control_url
    auth = authorization(venue_process.token)
    cases = [
        ("POST", "/symbols/AAPL/flash-crash", {"pct": 150}, 400),
        ("POST", "/symbols/AAPL/flash-crash", {"pct": "abc"}, 400),
        ("POST", "/symbols/AAPL/move", {"pct": -10, "ms": -1}, 400),
        ("POST", "/symbols/ZZZZ/move", {"pct": 5}, 404),
        ("POST", "/gateways/x/freeze", {"seconds": "long"}, 400),
        ("POST", "/reset", {"seed": "seven"}, 400),
        ("POST", "/clock", {"advance_ms": -5}, 400),
        ("POST", "/rate", {"rate": -1}, 400),
        ("POST", "/orders/cancel", {"order_ref": ""}, 400),
        ("GET", "/symbols/AAPL/move", None, 400),
        ("POST", "/symbols/AAPL/tape", {}, 400),
        ("GET", "/symbols/ZZZZ/tape", None, 404),
        ("POST", "/symbols/AAPL/depth", {}, 400),
        ("GET", "/symbols/ZZZZ/depth", None, 404),
        ("POST", "/nowhere", {}, 404),
    ]
    for method, path, body, status in cases:
        response = httpx.request(method, url + path, json=body, headers=auth, timeout=5)
        assert response.status_code == status, (path, body, response.text)
        assert "error" in response.json()
    response = httpx.post(
        url + "/reset", content=b"{not json", headers={**auth, "Content-Type": "application/json"}, timeout=5
    )
    assert response.status_code == 400
    padding = {f"X-Padding-{i}": "x" for i in range(100)}
    response = httpx.post(url + "/reset", json={"seed": 4321}, headers={**auth, **padding}, timeout=5)
    assert response.status_code == 400 and "too many headers" in response.text
    after = venue_process.control("GET", "/status")
    assert after["seed"] == before["seed"] and after["epoch"] == before["epoch"]
    with pytest.raises(PaperControlError):
        from floor.paper_cmd import control_request

        control_request("http://127.0.0.1:9", "GET", "/status", token=venue_process.token)


# Every request here would change the venue if it were served.
STATE_CHANGES = [
    ("/symbols/JPM/flash-crash", {"pct": 50, "ms": 0}),
    ("/symbols/JPM/move", {"pct": -50, "ms": 0}),
    ("/reset", {"seed": 4321}),
    ("/clock", {"paused": True, "time_scale": 50}),
    ("/rate", {"rate": 0}),
    ("/gateways/gw-test/kill", {}),
    ("/session/close", {}),
]


def refused_ways(token: str) -> list[tuple[str, dict[str, str], int]]:
    """(how, headers, expected status) for requests the control API must not serve."""
    json_type = {"Content-Type": "application/json"}
    right = authorization(token)
    return [
        ("without a token", json_type, 401),
        ("with a wrong token", {**json_type, **authorization("x" * len(token))}, 401),
        ("with the token in another scheme", {**json_type, "Authorization": f"Basic {token}"}, 401),
        ("with an Origin header", {**json_type, **right, "Origin": "http://127.0.0.1:8000"}, 403),
        ("as text/plain", {**right, "Content-Type": "text/plain"}, 415),
        ("as a form", {**right, "Content-Type": "application/x-www-form-urlencoded"}, 415),
        ("without a Content-Type", right, 415),
        # What a web page can send without asking first: no token, text/plain, its Origin.
        ("as a page's no-cors fetch", {"Content-Type": "text/plain", "Origin": "null"}, 403),
    ]


async def test_control_requests_without_the_token_from_a_page_or_not_json_are_refused_and_change_nothing(
    venue: VenueClient, venue_process: VenueProcess
) -> None:
    controls: list[VenueEvent] = []
    venue.add_listener(
        lambda e: controls.append(e) if isinstance(e, DropClients | FreezeGateway | KillGateway) else None
    )
    tick = await venue.subscribe_ticks("JPM")
    assert tick.bid is not None
    day_order = await venue.next_valid_id(6)
    resting = OrderSpec("BUY", 10, "LMT", lmt_price=(tick.bid * Decimal("0.8")).quantize(Decimal("0.01")))
    assert isinstance(await venue.place_order(PlaceOrder(6, day_order, resting, symbol="JPM")), OrderAck)
    before = venue_process.control("GET", "/status")
    async with httpx.AsyncClient(base_url=venue_process.control_url, timeout=5) as http:
        for how, headers, status in refused_ways(venue_process.token):
            for path, body in STATE_CHANGES:
                response = await http.post(path, content=json.dumps(body).encode(), headers=headers)
                assert response.status_code == status, (how, path, response.text)
                assert "error" in response.json()
    after = venue_process.control("GET", "/status")
    for key in ("seed", "epoch", "paused", "time_scale", "gateways"):
        assert after[key] == before[key], key
    jpm = next(s for s in after["symbols"] if s["symbol"] == "JPM")  # type: ignore[attr-defined]
    assert Decimal(jpm["mid"]) > tick.bid * Decimal("0.8"), "no crash, no move"
    assert all(s["event_rate"] > 0 for s in after["symbols"])  # type: ignore[attr-defined]
    assert [o.order_id for o in await venue.open_orders(6)] == [day_order], "the session did not close"
    await venue.current_time_ns()  # every event sent before this reply has arrived
    assert controls == [], "no gateway was told to do anything"


@pytest.mark.parametrize(
    "path", ["/status", "/symbols/AAPL/tape", "/symbols/AAPL/depth", "/orders", "/executions"]
)
def test_reading_the_status_or_a_tape_needs_the_token_too(venue_process: VenueProcess, path: str) -> None:
    url = venue_process.control_url + path
    for how, headers, status in refused_ways(venue_process.token):
        if how != "without a Content-Type":  # a GET has no body to declare
            response = httpx.get(url, headers=headers, timeout=5)
            assert response.status_code == status, (how, response.text)
    assert httpx.get(url, headers=authorization(venue_process.token), timeout=5).status_code == 200


def test_floor_paper_without_the_venues_token_file_says_where_it_looked(
    venue_process: VenueProcess, tmp_path: Path
) -> None:
    args = ["flash-crash", "JPM", "10", "--url", venue_process.control_url]
    result = runner.invoke(app, args, env={"FLOOR_VAR_DIR": str(tmp_path)})
    assert result.exit_code == 1
    assert "no control token" in result.output and str(tmp_path / "paper" / "control.token") in result.output


async def test_the_depth_route_reads_the_whole_book_a_depth_subscriber_gets(
    venue: VenueClient, venue_process: VenueProcess
) -> None:
    venue_process.control("POST", "/clock", {"paused": True})  # the book holds still
    try:
        book = await venue.subscribe_depth("MSFT")
        depth = venue_process.control("GET", "/symbols/MSFT/depth")
        assert venue_process.control("GET", "/symbols/MSFT/depth") == depth, "read-only"
    finally:
        await venue.unsubscribe_depth("MSFT")
        venue_process.control("POST", "/clock", {"paused": False})
    assert depth["symbol"] == "MSFT" and depth["seq"] == book.seq and depth["time_ns"] == book.time_ns
    bids = [(Decimal(lv["price"]), lv["size"]) for lv in depth["bids"]]  # type: ignore[attr-defined]
    asks = [(Decimal(lv["price"]), lv["size"]) for lv in depth["asks"]]  # type: ignore[attr-defined]
    assert bids == [(lv.price, lv.size) for lv in book.bids]
    assert asks == [(lv.price, lv.size) for lv in book.asks]
    assert len(bids) >= 10 and len(asks) >= 10, "every level, not only the touch"
    assert bids[0][0] < asks[0][0] and bids == sorted(bids, reverse=True) and asks == sorted(asks)


async def test_paused_clock_steps_exactly_and_replays_a_seed_with_identical_fills(
    venue: VenueClient, venue_process: VenueProcess
) -> None:
    t0 = 1_800_000_000_000_000_000

    async def session() -> list[tuple[object, ...]]:
        venue_process.control("POST", "/reset", {"seed": 1234, "paused": True, "time_ns": t0})
        assert await venue.current_time_ns() == t0
        tick = await venue.subscribe_ticks("AMZN")
        assert tick.bid is not None and tick.ask is not None
        first = await venue.next_valid_id(8)
        orders = [
            OrderSpec("BUY", 300, "MKT"),
            OrderSpec("SELL", 100, "LMT", lmt_price=tick.ask),
            OrderSpec("SELL", 150, "TRAIL", aux_price=Decimal("0.03")),
            OrderSpec("BUY", 200, "LMT", lmt_price=tick.bid),
        ]
        for i, spec in enumerate(orders):
            assert isinstance(
                await venue.place_order(PlaceOrder(8, first + i, spec, symbol="AMZN")), OrderAck
            )
        result = floor_paper(venue_process, "clock", "--advance-ms", "30000")
        assert result.exit_code == 0, result.output
        assert await venue.current_time_ns() == t0 + 30_000_000_000
        reports = await venue.executions(ExecutionFilter(symbol="AMZN"))
        return [
            (
                r.execution.side,
                r.execution.shares,
                r.execution.price,
                r.execution.time_ns,
                r.commission.commission,
            )
            for r in reports
        ]

    try:
        first = await session()
        second = await session()
    finally:
        venue_process.control("POST", "/clock", {"paused": False})
    assert len(first) >= 3
    assert first == second


async def test_time_scale_speeds_up_the_market_clock(venue: VenueClient, venue_process: VenueProcess) -> None:
    venue_process.control("POST", "/clock", {"time_scale": 20})
    try:
        start = await venue.current_time_ns()
        wall = asyncio.get_running_loop().time()

        async def two_market_seconds_passed() -> bool:
            return await venue.current_time_ns() - start >= 2_000_000_000

        await eventually(two_market_seconds_passed, timeout=5)  # type: ignore[arg-type]
        assert asyncio.get_running_loop().time() - wall < 1.5
    finally:
        venue_process.control("POST", "/clock", {"time_scale": 1})
    status = floor_paper(venue_process, "status")
    assert status.exit_code == 0 and "AAPL" in status.output and "gw-test" in status.output


async def test_the_orders_and_executions_routes_list_every_order_once_with_its_ref_and_fills(
    venue: VenueClient, venue_process: VenueProcess
) -> None:
    tick = await venue.subscribe_ticks("MSFT")
    assert tick.ask is not None and tick.bid is not None
    first = await venue.next_valid_id(9)
    taker = OrderSpec("BUY", 3, "LMT", lmt_price=tick.ask + 1, order_ref="ref-taker")
    resting = OrderSpec("BUY", 2, "LMT", lmt_price=(tick.bid * Decimal("0.8")).quantize(Decimal("0.01")),
                        order_ref="ref-resting")  # fmt: skip
    for i, spec in enumerate((taker, resting)):
        assert isinstance(await venue.place_order(PlaceOrder(9, first + i, spec, symbol="MSFT")), OrderAck)
    await venue.current_time_ns()  # both applied

    orders = {o["order_ref"]: o for o in venue_process.control("GET", "/orders")["orders"]}
    assert (orders["ref-taker"]["status"], orders["ref-taker"]["filled"]) == ("Filled", 3)
    assert (orders["ref-resting"]["status"], orders["ref-resting"]["filled"]) == ("Submitted", 0)
    assert orders["ref-resting"]["lmt_price"] == str(resting.lmt_price)
    fills = [
        e for e in venue_process.control("GET", "/executions")["executions"] if e["order_ref"] == "ref-taker"
    ]
    assert sum(e["shares"] for e in fills) == 3
    assert len({e["exec_id"] for e in fills}) == len(fills)
    assert all(e["perm_id"] == orders["ref-taker"]["perm_id"] for e in fills)
    await venue.cancel_order(9, first + 1)


async def test_an_order_cancelled_through_the_control_api_ends_for_its_client_as_an_operators_cancel(
    venue: VenueClient, venue_process: VenueProcess
) -> None:
    tick = await venue.subscribe_ticks("MSFT")
    assert tick.bid is not None
    first = await venue.next_valid_id(9)
    resting = OrderSpec("BUY", 2, "LMT", lmt_price=(tick.bid * Decimal("0.8")).quantize(Decimal("0.01")),
                        order_ref="ref-operator")  # fmt: skip
    assert isinstance(await venue.place_order(PlaceOrder(9, first, resting, symbol="MSFT")), OrderAck)
    await venue.current_time_ns()

    answer = venue_process.control("POST", "/orders/cancel", {"order_ref": "ref-operator"})
    orders = {o["order_ref"]: o for o in venue_process.control("GET", "/orders")["orders"]}
    assert answer["cancelled"] == [orders["ref-operator"]["perm_id"]]
    assert orders["ref-operator"]["status"] == "Cancelled"
    assert venue_process.control("POST", "/orders/cancel", {"order_ref": "ref-operator"})["cancelled"] == []
