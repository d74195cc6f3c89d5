"""A trailing stop survives a crash of the hot path: killed with SIGKILL and started again, the
process trails the stop still working at the venue on from its last level (modified in place),
and never loosens it."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from decimal import Decimal

import asyncpg
import pytest

from brokers.base import OpenOrder
from brokers.ibkr import IbkrBroker, IbkrConfig
from tests.helpers import eventually
from tests.hotpath.conftest import HotPathProcess
from tests.hotpath.live_floor import LiveFloor
from tests.hotpath.test_trailing_flow import moves_of, working_trail

_client_ids = itertools.count(2150)  # apart from every other suite's ids

SYMBOL = "MSFT"
TRAIL = Decimal("3.00")
"""Wide enough that the market's noise and the test's small fall never trigger the stop."""


@pytest.fixture
async def venue_view(live: LiveFloor) -> AsyncIterator[IbkrBroker]:
    """A second API client of the paper gateway, to read the venue's working orders (every
    client's) as the broker reports them."""
    config = IbkrConfig.from_settings(live.hotpath.settings, client_id=next(_client_ids))
    view = IbkrBroker(config)
    await view.connect()
    yield view
    await view.close()


async def venue_order(view: IbkrBroker, order_ref: str) -> OpenOrder | None:
    return next((o for o in await view.open_orders() if o.order_ref == order_ref), None)


async def persisted_stop(pool: asyncpg.Pool, command_id: str) -> Decimal | None:
    stop: Decimal | None = await pool.fetchval(
        "SELECT stop FROM stop_levels WHERE command_id = $1", command_id
    )
    return stop


# Its last step waits for the venue's random walk to hold a fall short of the stop, which the walk
# can carry through the stop instead; make test keeps the re-attach rules
# (test_trailing_restore.py) and make chaos the restart under load (scenario 7b).
@pytest.mark.long
async def test_a_trailing_stop_trails_on_from_its_last_level_after_the_hot_path_is_killed(
    live: LiveFloor, venue_view: IbkrBroker
) -> None:
    hotpath, paper = live.hotpath, live.paper
    # MSFT: the flow test's moves of AAPL may still be under way.
    command_id = (await working_trail(live, SYMBOL, TRAIL)).command_id
    sent = await eventually(lambda: venue_order(venue_view, command_id), timeout=10.0)
    assert sent.stop_price is not None

    # The price rises: the stop follows, and its level reaches the database.
    await paper.acontrol("POST", f"/symbols/{SYMBOL}/move", {"pct": 3, "ms": 300})
    await eventually(lambda: _risen(hotpath, command_id, sent.stop_price + 1), timeout=20.0)
    last = await eventually(lambda: _settled(hotpath, venue_view, live.pool, command_id), timeout=10.0)

    at_crash: list[Decimal] = []

    async def lagging_row() -> None:
        # Where the stop stands at the venue while no hot path can move it.
        order = await venue_order(venue_view, command_id)
        assert order is not None and order.stop_price is not None and order.stop_price >= last
        at_crash.append(order.stop_price)
        # The last moves reached the broker but not the database before the crash: the row still
        # says the initial stop. The broker's stop, the tighter, is the one to trail on from.
        await live.pool.execute(
            "UPDATE stop_levels SET stop = $2, best_price = NULL, moves = 0 WHERE command_id = $1",
            command_id,
            sent.stop_price,
        )

    await hotpath.restart(lagging_row, kill=True)
    [level] = at_crash
    reattached = await eventually(lambda: _reattached(live.pool, command_id), timeout=10.0)
    assert (reattached["source"], reattached["stop"]) == ("broker", str(level)), reattached

    # The price rises further: the restarted process moves the same order on, from its last level.
    await paper.acontrol("POST", f"/symbols/{SYMBOL}/move", {"pct": 2, "ms": 300})
    try:
        after = await eventually(lambda: _risen(hotpath, command_id, level + 1), timeout=20.0)
    except AssertionError as exc:
        raise AssertionError(
            f"the stop was not trailed after the restart: venue={await venue_order(venue_view, command_id)}"
        ) from exc
    assert Decimal(after[0]["old_stop"]) == level, "it resumed from its last level, not its initial stop"
    # Settled where the floor last moved it, at the venue (the same order) and in the database.
    top = await eventually(lambda: _settled(hotpath, venue_view, live.pool, command_id), timeout=10.0)
    moved = await venue_order(venue_view, command_id)
    assert moved is not None and (moved.perm_id, moved.order_id) == (sent.perm_id, sent.order_id)

    # A fall short of the stop: the stop stays where it is, at the venue and in the floor.
    await paper.acontrol("POST", f"/symbols/{SYMBOL}/move", {"pct": -0.3, "ms": 100})
    fallen = await eventually(lambda: _bid_below(live, top + TRAIL - Decimal("0.40")), timeout=10.0)
    stops = [Decimal(m["new_stop"]) for m in await moves_of(hotpath, command_id)]
    still = await venue_order(venue_view, command_id)
    assert still is not None and still.stop_price is not None and fallen > still.stop_price >= top
    assert stops == sorted(stops), "a trailing stop never moves back"


async def _risen(hotpath: HotPathProcess, command_id: str, to: Decimal) -> list[dict[str, str]] | None:
    """This process's moves of the stop once it stands at ``to`` or higher."""
    moves = await moves_of(hotpath, command_id)
    return moves if moves and Decimal(moves[-1]["new_stop"]) >= to else None


async def _settled(
    hotpath: HotPathProcess, view: IbkrBroker, pool: asyncpg.Pool, command_id: str
) -> Decimal | None:
    """The stop once its last move stands at the venue and in the database alike."""
    moves = await moves_of(hotpath, command_id)
    last = Decimal(moves[-1]["new_stop"])
    at_venue = await venue_order(view, command_id)
    if at_venue is None or at_venue.stop_price != last or await persisted_stop(pool, command_id) != last:
        return None
    return last


async def _bid_below(live: LiveFloor, price: Decimal) -> Decimal | None:
    bid, _ = await live.quote(SYMBOL)
    return bid if bid < price else None


async def _reattached(pool: asyncpg.Pool, command_id: str) -> dict[str, object] | None:
    """The detail of the restarted hot path's ``exits.reattached`` event for the order."""
    detail = await pool.fetchval(
        "SELECT detail FROM ops_events WHERE kind = 'exits.reattached' AND detail->>'command_id' = $1",
        command_id,
    )
    return None if detail is None else dict(json.loads(detail))
