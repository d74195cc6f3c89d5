"""Stylised facts of an :class:`~paper.venue.observation.Observation`: pure statistics.

Each function takes what the observation recorded and returns plain numbers; the calibration
report (``python -m bench.venue_facts``) prints them beside published ranges and the tests
hold them inside generous bands. Returns are log returns of the mid; markouts are in basis
points of the price, positive when the fill was good for its owner.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from paper.venue.observation import DEPTH_LEVELS, PROBE_DISTANCES, SECOND, Observation, Probe, Trade

MARKOUT_HORIZONS_S = (1, 10, 60)
RETURN_HORIZONS_S = (1, 10, 60, 300)
SIGN_LAGS = (1, 2, 5, 10, 20, 50, 100)
QUEUE_BUCKETS = ((0, 2), (2, 5), (5, 1 << 62))
"""Queue ahead of a probe at the touch, in model orders (``FlowParams.order_size`` shares)."""


@dataclass(frozen=True)
class Markout:
    """Mean markout in bps of the fill price (and its standard error) over ``n`` fills."""

    mean_bps: float
    stderr_bps: float
    n: int


def spread_distribution(obs: Observation) -> dict[int, float]:
    """Share of the samples at each spread, in ticks."""
    counts = Counter(obs.spreads)
    total = sum(counts.values()) or 1
    return {spread: n / total for spread, n in sorted(counts.items())}


def mean_spread(obs: Observation) -> float:
    return statistics.fmean(obs.spreads) if obs.spreads else math.nan


def depth_profile(obs: Observation) -> list[float]:
    """Mean shares at 0 .. DEPTH_LEVELS - 1 ticks from the best price, both sides averaged."""
    n = max(1, len(obs.spreads))
    bids, asks = obs.depth_sums
    return [(bids[k] + asks[k]) / (2 * n) for k in range(DEPTH_LEVELS)]


def fill_probability_by_distance(
    obs: Observation, within_s: int | None = None
) -> dict[int, tuple[float, int]]:
    """Per distance from the touch (ticks): share of probes filled within ``within_s`` seconds
    (default: their whole life), and n."""
    return {
        d: _filled_share([p for p in obs.probes if p.distance == d], within_s) for d in PROBE_DISTANCES
    }


def fill_probability_by_queue(
    obs: Observation, within_s: int | None = None
) -> dict[tuple[int, int], tuple[float, int]]:
    """For probes joining the touch: share filled within ``within_s`` seconds (default: their
    whole life) by queue ahead (in model orders), and n."""
    size = obs.order_size
    touch = [p for p in obs.probes if p.distance == 0]
    return {
        (lo, hi): _filled_share([p for p in touch if lo * size <= p.queue_ahead < hi * size], within_s)
        for lo, hi in QUEUE_BUCKETS
    }


def _filled_share(probes: Sequence[Probe], within_s: int | None) -> tuple[float, int]:
    if not probes:
        return math.nan, 0
    limit = None if within_s is None else within_s * SECOND
    filled = sum(p.fill_ns is not None and (limit is None or p.fill_ns - p.t_ns <= limit) for p in probes)
    return filled / len(probes), len(probes)


def _mid_at(mids: Sequence[float], t_ns: int) -> float | None:
    """The mid sampled at the first whole second at or after ``t_ns`` (None past the end)."""
    k = -(-t_ns // SECOND)
    return mids[k] if k < len(mids) else None


def _markout(samples: list[float]) -> Markout:
    if not samples:
        return Markout(math.nan, math.nan, 0)
    err = statistics.stdev(samples) / math.sqrt(len(samples)) if len(samples) > 1 else math.nan
    return Markout(statistics.fmean(samples), err, len(samples))


def _taker_moves(obs: Observation, horizon_s: int, before_mid: bool) -> Markout:
    """``sign * (mid later - reference) / reference`` over the model's trades, in bps; the
    reference is the trade's price, or the mid just before it."""
    samples: list[float] = []
    for t in obs.trades:
        if t.sign == 0:
            continue
        later = _mid_at(obs.mids, t.t_ns + horizon_s * SECOND)
        if later is not None:
            base = t.mid_before if before_mid else t.price
            samples.append(t.sign * (later - base) / base * 1e4)
    return _markout(samples)


def trade_markouts(obs: Observation, horizon_s: int) -> tuple[Markout, Markout]:
    """(aggressive, passive) markouts of the model's trades after ``horizon_s`` seconds: the
    taker's ``sign * (mid later - price)`` and the maker's, its negative."""
    taker = _taker_moves(obs, horizon_s, before_mid=False)
    return taker, Markout(-taker.mean_bps, taker.stderr_bps, taker.n)


def price_response(obs: Observation, horizon_s: int) -> Markout:
    """How far the mid moves with the taker within ``horizon_s`` seconds, from the mid just
    before its trade, in bps (Bouchaud et al.'s response function ``R``): zero if trades carry
    no information and have no impact, positive when they do."""
    return _taker_moves(obs, horizon_s, before_mid=True)


def probe_markout(obs: Observation, horizon_s: int, distance: int | None = None) -> Markout:
    """Markout of our probes' passive fills after ``horizon_s`` seconds (those placed
    ``distance`` ticks behind the touch only, if given)."""
    samples: list[float] = []
    for p in obs.probes:
        if p.fill_ns is None or p.fill_price is None or distance not in (None, p.distance):
            continue
        later = _mid_at(obs.mids, p.fill_ns + horizon_s * SECOND)
        if later is not None:
            sign = 1 if p.buy else -1
            samples.append(sign * (later - p.fill_price) / p.fill_price * 1e4)
    return _markout(samples)


def returns(obs: Observation, horizon_s: int) -> list[float]:
    """Non-overlapping log returns of the mid over ``horizon_s`` seconds."""
    mids = obs.mids[::horizon_s]
    return [math.log(b / a) for a, b in zip(mids, mids[1:], strict=False) if a > 0 and b > 0]


def excess_kurtosis(xs: Sequence[float]) -> float:
    """Sample excess kurtosis (0 for a normal law); NaN for fewer than four values or none
    that differ."""
    n = len(xs)
    if n < 4:
        return math.nan
    mean = statistics.fmean(xs)
    m2 = statistics.fmean((x - mean) ** 2 for x in xs)
    if m2 == 0:
        return math.nan
    m4 = statistics.fmean((x - mean) ** 4 for x in xs)
    return m4 / (m2 * m2) - 3.0


def autocorrelation(xs: Sequence[float], lag: int) -> float:
    """Sample autocorrelation at ``lag``; NaN if too short or constant."""
    n = len(xs)
    if n <= lag + 1:
        return math.nan
    mean = statistics.fmean(xs)
    var = sum((x - mean) ** 2 for x in xs)
    if var == 0:
        return math.nan
    return sum((xs[i] - mean) * (xs[i + lag] - mean) for i in range(n - lag)) / var


def abs_return_autocorrelation(obs: Observation, horizon_s: int, lags: Sequence[int]) -> dict[int, float]:
    """Volatility clustering: autocorrelation of |returns| at ``horizon_s`` by lag."""
    absolute = [abs(r) for r in returns(obs, horizon_s)]
    return {lag: autocorrelation(absolute, lag) for lag in lags}


def trade_sign_autocorrelation(trades: Sequence[Trade], lags: Sequence[int] = SIGN_LAGS) -> dict[int, float]:
    """Autocorrelation of the aggressors' signs (+1 buy, -1 sell), trade by trade."""
    signs = [float(t.sign) for t in trades if t.sign]
    return {lag: autocorrelation(signs, lag) for lag in lags}
