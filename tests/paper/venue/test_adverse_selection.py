"""Our own resting orders are adversely selected on the agent model: a market that fights back.

One hour of AAPL's market per model, in process (about a second each). Every 5 s a one-share
buy joins the back of the best bid and a one-share sell the back of the best ask, through the
venue's own order entry, and works for up to a minute (:func:`paper.venue.observation.observe`).
The markout of each fill is the mid later against the fill price, side-adjusted, so the half
spread an order earns counts in its favour; negative means the price went on through it.
"""

from __future__ import annotations

import pytest

from paper.venue import stylised as st
from paper.venue.observation import Observation, observe
from paper.venue.symbols import DEFAULT_SYMBOLS

AAPL = DEFAULT_SYMBOLS[0]


def _market(flow: str) -> Observation:
    return observe(AAPL, flow=flow, seconds=3600, seed=7, probe_every_s=5)


@pytest.fixture(scope="module")
def agents() -> Observation:
    return _market("agents")


@pytest.fixture(scope="module")
def zi() -> Observation:
    return _market("zi")


def test_our_orders_joining_the_touch_are_followed_by_the_price_moving_through_them(
    agents: Observation,
) -> None:
    ten = st.probe_markout(agents, 10, distance=0)
    assert ten.n > 1000, "nearly every order at the touch fills within its minute"
    assert ten.mean_bps < -0.1
    assert ten.mean_bps < -2 * ten.stderr_bps
    sixty = st.probe_markout(agents, 60, distance=0)
    assert sixty.mean_bps < 0


def test_informed_flow_takes_our_orders_when_the_price_is_about_to_move(
    agents: Observation, zi: Observation
) -> None:
    # Zero intelligence leaves a resting order most of its half spread a second after its fill
    # (nothing moves the price after a market order); on the agent model an order at the touch
    # fills mostly when informed flow is taking the level out, and the half spread is gone.
    kind = st.probe_markout(zi, 1, distance=0)
    hard = st.probe_markout(agents, 1, distance=0)
    assert kind.mean_bps > 0.05
    assert hard.mean_bps < kind.mean_bps - 3 * max(kind.stderr_bps, hard.stderr_bps)
