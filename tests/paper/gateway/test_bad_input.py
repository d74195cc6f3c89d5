"""Bad bytes from one client cost only that client; IB's error codes where IB has one."""

from __future__ import annotations

import struct

from paper.tws.codec import encode_frame
from tests.fixtures.paper import PaperStack
from tests.paper.gateway.conftest import RawFactory, connected


async def _others_still_served(paper: PaperStack) -> None:
    async with connected(paper.gateway_port, 79) as ib:
        assert (await ib.reqCurrentTimeAsync()).year >= 2020
    status = await paper.acontrol("GET", "/status")
    assert "primary" in status["gateways"]


async def test_garbage_instead_of_handshake_closes_only_that_client(
    paper: PaperStack, raw_factory: RawFactory
) -> None:
    client = raw_factory(paper.gateway_port)
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert client.closed_by_peer()
    await _others_still_served(paper)


async def test_garbage_after_handshake_closes_only_that_client(
    paper: PaperStack, raw_factory: RawFactory
) -> None:
    client = raw_factory(paper.gateway_port)
    client.handshake(71)
    client.send(b"\xff\xff\xff\xffgarbage")  # a length no frame can have
    assert client.closed_by_peer()
    await _others_still_served(paper)


async def test_unterminated_frame_closes_only_that_client(paper: PaperStack, raw_factory: RawFactory) -> None:
    client = raw_factory(paper.gateway_port)
    client.handshake(72)
    client.send(struct.pack(">I", 3) + b"49x")  # fields must end with NUL
    assert client.closed_by_peer()
    await _others_still_served(paper)


async def test_truncated_frame_then_hang_up_leaves_gateway_serving(
    paper: PaperStack, raw_factory: RawFactory
) -> None:
    client = raw_factory(paper.gateway_port)
    client.handshake(73)
    client.send(encode_frame(["3", "1", "265598"])[:-3])
    client.close()
    await _others_still_served(paper)


async def test_unknown_message_id_gets_505_and_close(paper: PaperStack, raw_factory: RawFactory) -> None:
    client = raw_factory(paper.gateway_port)
    client.handshake(74)
    client.send_fields(999, 1)
    error = client.read_until(lambda f: f[0] == "4" and f[3] != "2104" and f[3] not in ("2106", "2158"))
    assert error[3] == "505"
    assert client.closed_by_peer()
    await _others_still_served(paper)


async def test_out_of_range_field_gets_320_and_connection_lives(
    paper: PaperStack, raw_factory: RawFactory
) -> None:
    client = raw_factory(paper.gateway_port)
    client.handshake(75)
    # reqMktDepth with numRows -5, then a placeOrder whose quantity is not a number.
    client.send_fields(10, 5, 17, 0, "AAPL", "STK", "", "0.0", "", "", "SMART", "", "USD", "", "", -5, 0, "")
    first = client.read_until(lambda f: f[0] == "4" and f[2] == "17")
    assert first[3] == "320" and "numRows" in first[4]
    contract = (0, "AAPL", "STK", "", "0.0", "", "", "SMART", "", "USD", "", "")
    client.send_fields(3, 40, *contract, "", "", "BUY", "lots")
    second = client.read_until(lambda f: f[0] == "4" and f[2] == "40")
    assert second[3] == "320" and "totalQuantity" in second[4]
    client.send_fields(49, 1)
    assert client.read_until(lambda f: f[0] == "49")[2].isdigit()


async def test_unsupported_request_fails_that_request(paper: PaperStack, raw_factory: RawFactory) -> None:
    client = raw_factory(paper.gateway_port)
    client.handshake(76)
    contract = (0, "AAPL", "STK", "", "0.0", "", "", "SMART", "", "USD", "", "")
    client.send_fields(87, 33, *contract, 0, "TRADES", 1)  # reqHeadTimeStamp
    error = client.read_until(lambda f: f[0] == "4" and f[2] == "33")
    assert error[3] == "322"


async def test_pacing_over_50_messages_per_second_gets_error_100(
    paper: PaperStack, raw_factory: RawFactory
) -> None:
    client = raw_factory(paper.gateway_port)
    client.handshake(77)
    client.send(b"".join(encode_frame(["49", "1"]) for _ in range(80)))
    paced = client.read_until(lambda f: f[0] == "4" and f[3] == "100")
    assert "Max rate" in paced[4]
    times = [f for f in client.frames if f[0] == "49"]
    assert len(times) <= 51
    await _others_still_served(paper)


async def test_paceapi_clients_are_paced_not_refused(paper: PaperStack, raw_factory: RawFactory) -> None:
    from paper.tws.codec import encode_frame as frame_of
    from paper.tws.codec import encode_hello

    client = raw_factory(paper.gateway_port)
    client.send(encode_hello(157, 178, "+PACEAPI"))
    client.read_until(lambda f: len(f) == 2)
    client.send_fields(71, 2, 78, "")
    client.read_until(lambda f: f[0] == "9")
    client.send(b"".join(frame_of(["49", "1"]) for _ in range(80)))
    replies = [client.read_until(lambda f: f[0] == "49") for _ in range(80)]
    assert len(replies) == 80
    assert not [f for f in client.frames if f[0] == "4" and f[3] == "100"]
