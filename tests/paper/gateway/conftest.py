"""Helpers for the gateway suites: ib_async connections and raw protocol sockets."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager

import pytest
from ib_async import IB, Stock, Trade

from paper.tws.codec import FrameDecoder, encode_frame, encode_hello
from tests.helpers import eventually

HOST = "127.0.0.1"
DONE = {"Filled", "Cancelled", "ApiCancelled", "Inactive"}


@asynccontextmanager
async def connected(port: int, client_id: int, *, throttle: bool = True) -> AsyncIterator[IB]:
    ib = IB()
    ib.RaiseRequestErrors = False
    await ib.connectAsync(HOST, port, clientId=client_id, timeout=5)
    if not throttle:
        ib.client.MaxRequests = 0
    try:
        yield ib
    finally:
        ib.disconnect()


async def stock(ib: IB, symbol: str = "AAPL") -> Stock:
    contract = Stock(symbol, "SMART", "USD")
    await ib.qualifyContractsAsync(contract)
    assert contract.conId, f"{symbol} did not qualify"
    return contract


async def status_of(trade: Trade, statuses: set[str], within: float = 10.0) -> str:
    """Wait until the trade reaches one of ``statuses``; fail if it ends in another."""

    def reached() -> bool:
        status = trade.orderStatus.status
        if status in DONE and status not in statuses:
            raise AssertionError(f"order ended {status}, wanted {statuses}: {trade.log[-3:]}")
        return status in statuses

    await eventually(reached, timeout=within)
    return trade.orderStatus.status


async def quote(ib: IB, contract: Stock) -> tuple[float, float]:
    """Current bid and ask from a one-off snapshot."""
    ticker = ib.reqMktData(contract, snapshot=False)
    try:
        await eventually(lambda: ticker.bid == ticker.bid and ticker.ask == ticker.ask and ticker.bid > 0)
        return ticker.bid, ticker.ask
    finally:
        ib.cancelMktData(contract)


class RawClient:
    """A hand-driven TWS connection for what ib_async will not send."""

    def __init__(self, port: int, source: str | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if source is not None:
            self.sock.bind((source, 0))
        self.sock.settimeout(5.0)
        self.sock.connect((HOST, port))
        self.decoder = FrameDecoder()
        self.frames: list[list[str]] = []

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_fields(self, *fields: object) -> None:
        self.send(encode_frame(str(f) for f in fields))

    def handshake(self, client_id: int, versions: tuple[int, int] = (157, 178)) -> int:
        self.send(encode_hello(*versions))
        reply = self.read_until(lambda f: len(f) == 2)
        self.send_fields(71, 2, client_id, "")
        self.read_until(lambda f: f[0] == "9")
        return int(reply[0])

    def read_until(self, match: object, limit: int = 10_000) -> list[str]:
        """Read frames until one satisfies ``match`` (a callable); return it."""
        assert callable(match)
        for _ in range(limit):
            for index, frame in enumerate(self.frames):
                if match(frame):
                    del self.frames[index]
                    return frame
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("gateway closed the connection")
            self.frames += self.decoder.feed(data)
        raise AssertionError("no matching frame")

    def closed_by_peer(self) -> bool:
        """True once the gateway has closed this connection (reads until EOF or reset)."""
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
                self.frames += self.decoder.feed(data)
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False

    def close(self) -> None:
        self.sock.close()


RawFactory = Callable[..., RawClient]


@pytest.fixture
def raw_factory() -> Iterator[RawFactory]:
    clients: list[RawClient] = []

    def make(port: int, source: str | None = None) -> RawClient:
        client = RawClient(port, source)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()

