"""Losing the venue is IB's 1100 to every client; getting it back is 1101."""

from __future__ import annotations

import os
import signal

from tests.fixtures.paper import PaperStack
from tests.helpers import eventually
from tests.paper.gateway.conftest import connected


async def test_venue_loss_and_return_reach_clients_as_1100_and_1101(private_paper: PaperStack) -> None:
    async with connected(private_paper.gateway_port, 97) as ib:
        codes: list[int] = []
        ib.errorEvent += lambda req_id, code, *_: codes.append(code)
        venue = private_paper.services["venue"]
        os.kill(venue.pid, signal.SIGKILL)
        await eventually(lambda: 1100 in codes)
        assert ib.isConnected()  # the gateway stays up for its clients
        private_paper.start_venue()
        await eventually(lambda: 1101 in codes, timeout=15)
        assert codes.index(1101) > codes.index(1100)
        assert (await ib.reqCurrentTimeAsync()).year >= 2020
