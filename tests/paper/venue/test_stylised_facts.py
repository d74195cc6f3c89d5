"""The agent order flow's stylised facts, each inside a generous band around published ranges.

Two hours of AAPL's market, in process, shared by the module (about three seconds). The bands
are wide on purpose: they catch a model that lost a fact (no heavy tails, no clustering, no
adverse selection, an empty touch), not a calibration that drifted a little. The zero-
intelligence model fails the heavy-tail and clustering bands (excess kurtosis of 10 s returns
about 0.1-0.7, autocorrelation of |10 s returns| at most about 0.04), which is what they are for.
``python -m bench.venue_facts`` prints the same facts beside their sources; a simulated day of
every symbol, with its volatility against the symbol's setting, is a ``long`` test.
"""

from __future__ import annotations

import math
import statistics

import pytest

from paper.venue import stylised as st
from paper.venue.observation import Observation, observe
from paper.venue.symbols import DEFAULT_SYMBOLS, SymbolConfig

AAPL = DEFAULT_SYMBOLS[0]


@pytest.fixture(scope="module")
def market() -> Observation:
    return observe(AAPL, flow="agents", seconds=2 * 3600, seed=7)


def test_the_spread_is_often_one_tick_and_a_few_ticks_on_average(market: Observation) -> None:
    assert st.spread_distribution(market)[1] > 0.2
    assert 1.0 <= st.mean_spread(market) <= 4.0


def test_depth_is_spread_over_the_levels_behind_the_touch(market: Observation) -> None:
    profile = st.depth_profile(market)
    assert profile[0] >= market.order_size, "the touch holds at least a model order on average"
    assert all(level > 0.3 * profile[0] for level in profile[:5])


def test_a_resting_order_fills_less_often_the_further_it_rests_and_the_later_it_queued(
    market: Observation,
) -> None:
    by_distance = [p for p, _ in st.fill_probability_by_distance(market, within_s=10).values()]
    assert 0.5 < by_distance[0] < 1.0
    assert by_distance[0] > by_distance[-1] + 0.1
    by_queue = [p for p, n in st.fill_probability_by_queue(market, within_s=10).values() if n >= 30]
    assert by_queue[0] > by_queue[-1]


def test_passive_fills_are_adversely_selected(market: Observation) -> None:
    for horizon in (10, 60):
        _, passive = st.trade_markouts(market, horizon)
        assert passive.mean_bps < -2 * passive.stderr_bps < 0, horizon
    # After one second the half spread a maker earned is already gone (zero intelligence keeps
    # about +0.25 bps of it on AAPL: nothing moves the price after a market order there).
    _, passive = st.trade_markouts(market, 1)
    assert passive.mean_bps < 0.05
    # The mid moves with the taker, and further as time passes.
    assert 0 < st.price_response(market, 1).mean_bps < st.price_response(market, 10).mean_bps


def test_short_horizon_returns_are_heavy_tailed(market: Observation) -> None:
    assert st.excess_kurtosis(st.returns(market, 1)) > 1.0
    assert st.excess_kurtosis(st.returns(market, 10)) > 1.0
    assert st.excess_kurtosis(st.returns(market, 60)) > 0.5


def test_volatility_clusters(market: Observation) -> None:
    lags = st.abs_return_autocorrelation(market, 10, range(1, 6))
    assert statistics.fmean(lags.values()) > 0.05


def test_trade_signs_are_positively_autocorrelated_with_long_memory(market: Observation) -> None:
    signs = st.trade_sign_autocorrelation(market.trades, (1, 10, 20))
    assert 0.05 < signs[1] < 0.8
    assert signs[10] > 0.02
    assert signs[20] > 0


@pytest.mark.long
@pytest.mark.parametrize("cfg", DEFAULT_SYMBOLS, ids=lambda c: c.contract.symbol)
def test_a_simulated_day_of_each_symbol_keeps_its_facts_and_its_volatility(cfg: SymbolConfig) -> None:
    day = observe(cfg, flow="agents", seconds=int(6.5 * 3600), seed=7)
    five_minutes = st.returns(day, 300)
    annual = statistics.pstdev(five_minutes) * math.sqrt(252 * 78)
    assert 0.6 * cfg.flow.volatility < annual < 1.6 * cfg.flow.volatility
    assert st.spread_distribution(day).get(cfg.flow.spread_ticks, 0.0) > 0.2
    for horizon in (10, 60):
        _, passive = st.trade_markouts(day, horizon)
        assert passive.mean_bps < -2 * passive.stderr_bps < 0, horizon
    assert st.excess_kurtosis(st.returns(day, 60)) > 0.5
    assert statistics.fmean(st.abs_return_autocorrelation(day, 10, range(1, 6)).values()) > 0.05
    signs = st.trade_sign_autocorrelation(day.trades, (1, 20))
    assert 0.05 < signs[1] < 0.8 and signs[20] > 0
