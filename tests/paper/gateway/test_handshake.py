"""Connecting: version negotiation, the startup sync, client ids and trusted addresses."""

from __future__ import annotations

import asyncio
import time

import pytest
from ib_async import IB

from tests.fixtures.paper import PaperStack
from tests.helpers import eventually
from tests.paper.gateway.conftest import HOST, RawFactory, connected


async def test_ib_async_connects_and_syncs_in_milliseconds(paper: PaperStack) -> None:
    ib = IB()
    notices: list[int] = []
    ib.errorEvent += lambda req_id, code, *_: notices.append(code)
    started = time.perf_counter()
    await ib.connectAsync(HOST, paper.gateway_port, clientId=21, timeout=5)
    elapsed = time.perf_counter() - started
    try:
        assert ib.client.serverVersion() == 178
        assert ib.managedAccounts() == ["DU1234567"]
        # Every startup request was answered with its terminator: no timeout was waited out.
        assert elapsed < 0.5, f"connect took {elapsed:.3f} s"
        await eventually(lambda: {2104, 2106, 2158} <= set(notices))
        assert ib.client.getReqId() >= 1
    finally:
        ib.disconnect()


async def test_version_is_never_above_the_clients_maximum(paper: PaperStack, raw_factory: RawFactory) -> None:
    assert raw_factory(paper.gateway_port).handshake(31, (100, 176)) == 176
    assert raw_factory(paper.gateway_port).handshake(32, (157, 250)) == 178


async def test_client_too_old_is_refused(paper: PaperStack, raw_factory: RawFactory) -> None:
    client = raw_factory(paper.gateway_port)
    from paper.tws.codec import encode_hello

    client.send(encode_hello(100, 150))
    assert client.closed_by_peer()


async def test_duplicate_client_id_gets_326_and_is_closed(paper: PaperStack) -> None:
    async with connected(paper.gateway_port, 22):
        second = IB()
        codes: list[int] = []
        second.errorEvent += lambda req_id, code, *_: codes.append(code)
        with pytest.raises((ConnectionError, TimeoutError, asyncio.TimeoutError)):
            await second.connectAsync(HOST, paper.gateway_port, clientId=22, timeout=3, raiseSyncErrors=True)
        second.disconnect()
        assert 326 in codes
    # Once the first one leaves, the id is free again.
    async with connected(paper.gateway_port, 22) as ib:
        assert ib.isConnected()


async def test_same_client_id_may_use_both_gateways(paper: PaperStack) -> None:
    async with connected(paper.gateway_port, 23) as a, connected(paper.standby_port, 23) as b:
        assert a.isConnected() and b.isConnected()


async def test_untrusted_source_address_is_refused_and_logged(
    paper: PaperStack, raw_factory: RawFactory
) -> None:
    client = raw_factory(paper.gateway_port, source="127.0.0.2")
    assert client.sock.getsockname()[0] == "127.0.0.2"
    from paper.tws.codec import encode_hello

    try:
        client.send(encode_hello(157, 178))
    except OSError:
        pass
    assert client.closed_by_peer()
    log = paper.services["primary"].log_path
    await eventually(lambda: "refused API client from 127.0.0.2" in log.read_text())
    # A trusted client is still served.
    async with connected(paper.gateway_port, 24) as ib:
        assert (await ib.reqCurrentTimeAsync()).year >= 2020


async def test_current_time(paper: PaperStack) -> None:
    async with connected(paper.gateway_port, 25) as ib:
        now = await ib.reqCurrentTimeAsync()
        assert abs(now.timestamp() - time.time()) < 120


async def test_req_ids_answers_above_every_order_id_used(paper: PaperStack, raw_factory: RawFactory) -> None:
    client = raw_factory(paper.gateway_port)
    client.handshake(26)
    contract = (0, "AAPL", "STK", "", "0.0", "", "", "SMART", "", "USD", "", "")
    # A resting order with a large id (ids need not be contiguous), then reqIds.
    from tests.paper.gateway.test_codec import MKT_ORDER

    order = list(MKT_ORDER)
    order[1], order[18], order[19] = "5000", "LMT", "1.00"
    order[2:14] = [str(f) for f in contract]
    client.send_fields(*order)
    client.read_until(lambda f: f[0] == "3" and f[1] == "5000")
    client.send_fields(8, 1, 1)
    assert int(client.read_until(lambda f: f[0] == "9")[2]) == 5001
    client.send_fields(4, 1, 5000, "")
    client.read_until(lambda f: f[0] == "3" and f[1] == "5000" and f[2] == "Cancelled")
