"""Losing the venue is IB's 1100 to every client; getting it back is 1102 with market data
renewed by the gateway (or 1101 when it could not be)."""

from __future__ import annotations

import os
import signal

import pytest
from ib_async import IB

from paper.venue.client import VenueClient
from tests.fixtures.paper import PaperStack
from tests.helpers import eventually
from tests.paper.gateway.conftest import connected, stock


async def test_venue_loss_and_return_reach_clients_as_1100_and_1102(private_paper: PaperStack) -> None:
    async with connected(private_paper.gateway_port, 97) as ib:
        contract = await stock(ib)
        ticker = ib.reqMktDepth(contract, numRows=5)
        await eventually(lambda: ticker.domBids and ticker.domAsks)
        codes: list[int] = []
        ib.errorEvent += lambda req_id, code, *_: codes.append(code)
        os.kill(private_paper.services["venue"].pid, signal.SIGKILL)
        await eventually(lambda: 1100 in codes)
        assert ib.isConnected()  # the gateway stays up for its clients
        # A new client cannot be given a next order id without the venue: it is refused.
        late = IB()
        late_codes: list[int] = []
        late.errorEvent += lambda req_id, code, *_: late_codes.append(code)
        with pytest.raises((ConnectionError, TimeoutError)):
            # ib_async waits out its timeout even after the gateway hangs up, as with TWS.
            await late.connectAsync("127.0.0.1", private_paper.gateway_port, clientId=98, timeout=1)
        late.disconnect()
        assert 1100 in late_codes
        private_paper.start_venue()
        await eventually(lambda: 1102 in codes, timeout=15)
        assert codes.index(1102) > codes.index(1100)
        assert 317 in codes  # the depth book was reset and re-sent from the new connection
        # The renewed subscription shows the (restarted) venue's book.
        observer = await VenueClient.connect("127.0.0.1", private_paper.venue_port, "observer")
        try:
            await private_paper.acontrol("POST", "/clock", {"paused": True})
            book = await observer.subscribe_depth("AAPL")
            bids = [(float(lv.price), float(lv.size)) for lv in book.bids[:5]]
            await eventually(lambda: [(lv.price, lv.size) for lv in ticker.domBids] == bids)
        finally:
            await private_paper.acontrol("POST", "/clock", {"paused": False})
            await observer.close()
        assert (await ib.reqCurrentTimeAsync()).year >= 2020
