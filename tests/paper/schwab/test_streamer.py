"""The streamer through schwab-py's unchanged StreamClient: quotes, books, account activity."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from schwab.client import AsyncClient
from schwab.orders.equities import equity_buy_market
from schwab.streaming import StreamClient, UnexpectedResponseCode
from schwab.utils import Utils
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.fixtures.schwab import SchwabApi
from tests.helpers import eventually
from tests.paper.schwab.conftest import schwab_client

WAIT_S = 10.0


class Received:
    """What the stream's handlers got, per service, with an event to await the next one."""

    def __init__(self) -> None:
        self.messages: dict[str, list[dict[str, Any]]] = {}
        self._changed = asyncio.Event()

    def handler(self, service: str) -> Any:
        def on_message(message: dict[str, Any]) -> None:
            self.messages.setdefault(service, []).append(message)
            self._changed.set()

        return on_message

    def rows(self, service: str) -> list[dict[str, Any]]:
        return [row for m in self.messages.get(service, []) for row in m["content"]]

    async def until(self, predicate: Any, stream: StreamClient) -> Any:
        """Read the stream until ``predicate()`` is truthy; fail after WAIT_S."""
        async with asyncio.timeout(WAIT_S):
            while not (result := predicate()):
                await stream.handle_message()
            return result


@pytest.fixture
async def streaming(schwab_api: SchwabApi, tmp_path: Path) -> AsyncIterator[tuple[AsyncClient, StreamClient]]:
    client = schwab_client(schwab_api, schwab_api.new_token_file(tmp_path))
    stream = StreamClient(client)
    await stream.login()
    try:
        yield client, stream
    finally:
        await stream.logout()
        await client.close_async_session()


async def test_level_one_sends_a_full_row_then_changes_and_books_send_whole_levels(
    streaming: tuple[AsyncClient, StreamClient],
) -> None:
    _, stream = streaming
    got = Received()
    stream.add_level_one_equity_handler(got.handler("L1"))
    stream.add_nasdaq_book_handler(got.handler("BOOK"))
    await stream.level_one_equity_subs(["AAPL"])
    await stream.nasdaq_book_subs(["AAPL"])
    first = (await got.until(lambda: got.rows("L1"), stream))[0]
    assert first["key"] == "AAPL"
    assert Decimal(str(first["BID_PRICE"])) < Decimal(str(first["ASK_PRICE"]))
    assert first["BID_SIZE"] > 0 and "TOTAL_VOLUME" in first
    book = (await got.until(lambda: got.rows("BOOK"), stream))[0]
    assert book["key"] == "AAPL"
    bids, asks = book["BIDS"], book["ASKS"]
    assert bids and asks and bids[0]["BID_PRICE"] < asks[0]["ASK_PRICE"]
    assert [b["BID_PRICE"] for b in bids] == sorted((b["BID_PRICE"] for b in bids), reverse=True)
    assert bids[0]["BIDS"][0]["EXCHANGE"] == "PAPR"
    # The venue's order flow moves the quote: later rows carry only what changed.
    await got.until(lambda: len(got.rows("L1")) > 1, stream)
    assert all(set(r) - {"key", "delayed"} for r in got.rows("L1")[1:])


async def test_account_activity_reports_an_order_and_its_fill(
    streaming: tuple[AsyncClient, StreamClient], schwab_api: SchwabApi
) -> None:
    client, stream = streaming
    got = Received()
    stream.add_account_activity_handler(got.handler("ACCT"))
    await stream.account_activity_sub()
    subscribed = (await got.until(lambda: got.rows("ACCT"), stream))[0]
    assert subscribed["MESSAGE_TYPE"] == "SUBSCRIBED" and subscribed["ACCOUNT"] == schwab_api.account_number

    placed = await client.place_order(schwab_api.account_hash, equity_buy_market("JPM", 1))
    assert placed.status_code == 201, placed.text
    order_id = Utils(client, schwab_api.account_hash).extract_order_id(placed)

    def of_order(kind: str) -> list[dict[str, Any]]:
        return [
            json.loads(r["MESSAGE_DATA"])
            for r in got.rows("ACCT")
            if r["MESSAGE_TYPE"] == kind and json.loads(r["MESSAGE_DATA"])["SchwabOrderID"] == str(order_id)
        ]

    completed = (await got.until(lambda: of_order("OrderFillCompleted"), stream))[0]
    assert of_order("ExecutionCreated")
    info = completed["BaseEvent"]["OrderFillCompletedEventOrderLegQuantityInfo"]
    assert info["QuantityInfo"]["CumulativeQuantity"] == {"lo": "1000000", "signScale": 12}
    seqs = [r["seq"] for r in got.rows("ACCT")]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


async def test_a_second_login_for_the_customer_is_refused(
    streaming: tuple[AsyncClient, StreamClient], schwab_api: SchwabApi, tmp_path: Path
) -> None:
    client = schwab_client(schwab_api, schwab_api.new_token_file(tmp_path))
    second = StreamClient(client)
    try:
        with pytest.raises(UnexpectedResponseCode) as refused:
            await second.login()
        assert refused.value.response["response"][0]["content"]["code"] == 12
    finally:
        await client.close_async_session()


async def test_after_the_streamer_drops_a_new_login_resubscribes_and_gets_a_whole_book(
    private_schwab_api: SchwabApi, tmp_path: Path
) -> None:
    api = private_schwab_api
    client = schwab_client(api, api.new_token_file(tmp_path))
    stream = StreamClient(client)
    got = Received()
    stream.add_nasdaq_book_handler(got.handler("BOOK"))
    try:
        await stream.login()
        await stream.nasdaq_book_subs(["MSFT"])
        await got.until(lambda: got.rows("BOOK"), stream)
        assert (await api.stream_fault(drop=True))["dropped"] == 1
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(WAIT_S):
                while True:
                    await stream.handle_message()
        before = len(got.rows("BOOK"))
        await stream.login()  # a new socket; the handlers stay registered
        await stream.nasdaq_book_subs(["MSFT"])
        book = (await got.until(lambda: got.rows("BOOK")[before:], stream))[0]
        assert book["key"] == "MSFT" and book["BIDS"] and book["ASKS"]
    finally:
        with contextlib.suppress(Exception):
            await stream.logout()
        await client.close_async_session()


async def test_an_invalid_token_cannot_log_in(schwab_api: SchwabApi, tmp_path: Path) -> None:
    client = schwab_client(schwab_api, schwab_api.new_token_file(tmp_path))
    stream = StreamClient(client)
    try:
        await client.get_user_preferences()  # resolves the streamer's address and ids
        client.token_metadata.token["access_token"] = "not-a-token"
        with pytest.raises(UnexpectedResponseCode) as refused:
            await stream.login()
        assert refused.value.response["response"][0]["content"]["code"] == 3
    finally:
        await client.close_async_session()


async def test_the_raw_protocol_answers_bad_requests_with_schwab_codes_and_sends_heartbeats(
    private_schwab_api: SchwabApi, tmp_path: Path
) -> None:
    api = private_schwab_api
    token = json.loads(api.new_token_file(tmp_path).read_text())["token"]["access_token"]
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http:
        prefs = (await http.get(f"{api.base_url}/trader/v1/userPreference")).json()
    info = prefs["streamerInfo"][0]
    assert info["streamerSocketUrl"] == api.stream_url

    def request(rid: int, service: str, command: str, **parameters: Any) -> str:
        body = {"service": service, "requestid": str(rid), "command": command,
                "SchwabClientCustomerId": info["schwabClientCustomerId"],
                "SchwabClientCorrelId": info["schwabClientCorrelId"], "parameters": parameters}  # fmt: skip
        return json.dumps({"requests": [body]})

    async def code(ws: Any) -> int:
        async with asyncio.timeout(WAIT_S):
            while True:
                frame = json.loads(await ws.recv())
                if "response" in frame:
                    return int(frame["response"][0]["content"]["code"])

    await api.stream_fault(heartbeat_s=0.05)
    try:
        async with connect(api.stream_url) as ws:
            await ws.send(request(0, "LEVELONE_EQUITIES", "SUBS", keys="AAPL", fields="0,1"))
            assert await code(ws) == 20  # not logged in
            await ws.send(request(1, "ADMIN", "LOGIN", Authorization=token, SchwabClientChannel="N9",
                                  SchwabClientFunctionId="APIAPP"))  # fmt: skip
            assert await code(ws) == 0
            await ws.send("{not json")
            assert await code(ws) == 21
            await ws.send(request(2, "CHART_EQUITY", "SUBS", keys="AAPL", fields="0,1"))
            assert await code(ws) == 11
            await ws.send(request(3, "NYSE_BOOK", "SUBS", keys="AAPL", fields="0,1,2,3"))
            assert await code(ws) == 11
            async with asyncio.timeout(WAIT_S):
                while "notify" not in (frame := json.loads(await ws.recv())):
                    pass
            assert int(frame["notify"][0]["heartbeat"]) > 0
    finally:
        await api.stream_fault(heartbeat_s=10)


async def test_logins_refused_for_a_while_close_the_socket_then_succeed(
    private_schwab_api: SchwabApi, tmp_path: Path
) -> None:
    api = private_schwab_api
    client = schwab_client(api, api.new_token_file(tmp_path))
    stream = StreamClient(client)
    try:
        await api.stream_fault(refuse_logins_s=0.3)
        with pytest.raises(ConnectionClosed):
            await stream.login()

        async def logged_in() -> bool:
            try:
                await stream.login()
            except ConnectionClosed:
                return False
            return True

        await eventually(logged_in, timeout=WAIT_S, interval=0.1)
    finally:
        with contextlib.suppress(Exception):
            await stream.logout()
        await client.close_async_session()
