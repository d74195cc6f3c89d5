"""Calibration of the paper venue's order flow: its stylised facts beside published ranges.

``python -m bench.venue_facts [--flow agents|zi] [--quick] [--hours 6.5] [--symbols AAPL,MSFT]``

Runs the venue in process (no sockets; market time only, so a simulated trading day takes
seconds) for each symbol alone and prints, per symbol: the spread distribution, the depth
profile by distance from the touch, the fill probability of a resting order by distance and by
queue position (small probe orders of ours, working for up to a minute), the markouts of
passive and aggressive fills at 1 s, 10 s and 60 s and the price response to a trade, the
returns' excess kurtosis at several horizons, volatility clustering and trade-sign
autocorrelation, each beside a published reference range and its source. The same goes to an
HTML page with plots under ``<var>/reports/`` (``FLOOR_VAR_DIR``).

``--quick``: one hour of market time for AAPL and MSFT. Same seed, same figures.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from pathlib import Path

from bench.venue_facts_page import write_page
from config.settings import FloorSettings
from paper.venue import stylised as st
from paper.venue.flow_models import DEFAULT_FLOW, FLOW_MODELS
from paper.venue.observation import Observation, observe
from paper.venue.symbols import DEFAULT_SYMBOLS

TRADING_DAY_S = 6.5 * 3600


@dataclass(frozen=True)
class Reference:
    """A published range for one fact, and where it comes from."""

    text: str
    source: str


REFERENCES = {
    "spread": Reference(
        "large-tick stocks: a one-tick spread most of the time, the mean spread 1-2 ticks",
        'Bouchaud, Bonart, Donier & Gould (2018), "Trades, Quotes and Prices", on large-tick stocks',
    ),
    "depth": Reference(
        "mean depth is of the order of the touch's for several ticks, with a hump a few ticks away",
        'Bouchaud, Mezard & Potters (2002), "Statistical properties of stock order books"',
    ),
    "fill": Reference(
        "fill probability falls with distance from the touch and with queue position",
        'Lo, MacKinlay & Zhang (2002), "Econometric models of limit-order executions"; '
        'Moallemi & Yuan (2017), "A model for queue position valuation in a limit order book"',
    ),
    "markout": Reference(
        "passive fills: negative markout once the price has moved (adverse selection); "
        "the response to a trade R(t) > 0 and growing with t",
        'Glosten & Milgrom (1985); Bouchaud et al. (2018), "Trades, Quotes and Prices", '
        "on the response function and adverse selection",
    ),
    "tails": Reference(
        "excess kurtosis > 0 at intraday horizons (about 3 to tens for single stocks), "
        "falling towards 0 as the horizon grows",
        'Cont (2001), "Empirical properties of asset returns: stylized facts and statistical issues"',
    ),
    "clustering": Reference(
        "autocorrelation of absolute returns positive (about 0.1-0.3 at short lags), slowly decaying",
        "Cont (2001), same",
    ),
    "linear": Reference(
        "autocorrelation of returns about 0 beyond a few minutes (slightly negative at the shortest)",
        "Cont (2001), same",
    ),
    "signs": Reference(
        "trade signs: positive, long memory C(lag) ~ lag^-gamma with gamma about 0.5; "
        "C(1) about 0.2-0.7",
        'Lillo & Farmer (2004), "The long memory of the efficient market"; '
        "Bouchaud et al. (2018)",
    ),
}


def _f(x: float, places: int = 2) -> str:
    return "n/a" if math.isnan(x) else f"{x:.{places}f}"


def report_lines(obs: Observation) -> list[tuple[str, str, Reference]]:
    """(fact, measured, reference) rows for one symbol."""
    rows: list[tuple[str, str, Reference]] = []
    dist = st.spread_distribution(obs)
    shown = ", ".join(f"{k}t {100 * v:.0f}%" for k, v in list(dist.items())[:5])
    rows.append(("spread", f"mean {_f(st.mean_spread(obs))} ticks; {shown}", REFERENCES["spread"]))
    depth = st.depth_profile(obs)
    shares = " ".join(f"{x:.0f}" for x in depth) + " shares"
    rows.append(("depth by ticks from the touch", shares, REFERENCES["depth"]))
    for within in (10, None):
        span = "60 s" if within is None else f"{within} s"
        by_distance = st.fill_probability_by_distance(obs, within)
        rows.append(
            (
                f"fill probability in {span}, by ticks behind the touch",
                "  ".join(f"{d}: {_f(p)} (n={n})" for d, (p, n) in by_distance.items()),
                REFERENCES["fill"],
            )
        )
        by_queue = st.fill_probability_by_queue(obs, within)
        rows.append(
            (
                f"fill probability in {span} at the touch, by queue ahead (model orders)",
                "  ".join(
                    f"{lo}-{hi if hi < 1000 else ''}: {_f(p)} (n={n})"
                    for (lo, hi), (p, n) in by_queue.items()
                ),
                REFERENCES["fill"],
            )
        )
    for h in st.MARKOUT_HORIZONS_S:
        aggressive, passive = st.trade_markouts(obs, h)
        probes = st.probe_markout(obs, h)
        touch = st.probe_markout(obs, h, distance=0)
        response = st.price_response(obs, h)
        rows.append(
            (
                f"markout at {h} s, bps (mid {h} s later - fill price, side-adjusted, half spread "
                "included; < 0: the price went on through the order)",
                f"the market's passive fills {_f(passive.mean_bps, 3)}, aggressive "
                f"{_f(aggressive.mean_bps, 3)} (+-{_f(aggressive.stderr_bps, 3)}, n={aggressive.n}); "
                f"our one-share probes resting 0-4 ticks behind the best {_f(probes.mean_bps, 3)} "
                f"(+-{_f(probes.stderr_bps, 3)}, n={probes.n}), those joining the back of the touch "
                f"queue {_f(touch.mean_bps, 3)} (+-{_f(touch.stderr_bps, 3)}, n={touch.n}); "
                f"price response to a trade R {_f(response.mean_bps, 3)}",
                REFERENCES["markout"],
            )
        )
    kurt = "  ".join(
        f"{h}s: {_f(st.excess_kurtosis(st.returns(obs, h)))}" for h in st.RETURN_HORIZONS_S
    )
    rows.append(("excess kurtosis of returns", kurt, REFERENCES["tails"]))
    linear = "  ".join(
        f"{h}s: {_f(st.autocorrelation(st.returns(obs, h), 1))}" for h in st.RETURN_HORIZONS_S[:3]
    )
    rows.append(("autocorrelation of returns, lag 1", linear, REFERENCES["linear"]))
    for h in (10, 60):
        ac = st.abs_return_autocorrelation(obs, h, (1, 2, 5, 10))
        rows.append(
            (
                f"autocorrelation of |{h} s returns| by lag",
                "  ".join(f"{lag}: {_f(v)}" for lag, v in ac.items()),
                REFERENCES["clustering"],
            )
        )
    signs = st.trade_sign_autocorrelation(obs.trades)
    rows.append(
        (
            "trade-sign autocorrelation by lag (trades)",
            "  ".join(f"{lag}: {_f(v)}" for lag, v in signs.items()),
            REFERENCES["signs"],
        )
    )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.venue_facts",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--flow", choices=FLOW_MODELS, default=DEFAULT_FLOW)
    parser.add_argument("--quick", action="store_true", help="one hour, AAPL and MSFT")
    parser.add_argument("--hours", type=float, default=TRADING_DAY_S / 3600, help="market hours per symbol")
    parser.add_argument("--symbols", default="", help="comma-separated (default: every listed symbol)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    names = [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
    if args.quick:
        names = names or ["AAPL", "MSFT"]
        args.hours = 1.0
    configs = [c for c in DEFAULT_SYMBOLS if not names or c.contract.symbol in names]
    unknown = set(names) - {c.contract.symbol for c in configs}
    if unknown:
        parser.error(f"unknown symbols: {', '.join(sorted(unknown))}")
    seconds = max(120, int(args.hours * 3600))
    print(f"order flow {args.flow!r}, seed {args.seed}, {seconds} s of market time per symbol")
    results: list[tuple[Observation, list[tuple[str, str, Reference]]]] = []
    for cfg in configs:
        started = time.perf_counter()
        obs = observe(cfg, flow=args.flow, seconds=seconds, seed=args.seed)
        took = time.perf_counter() - started
        rows = report_lines(obs)
        results.append((obs, rows))
        print(
            f"\n== {obs.symbol}: {obs.events} model events, {len(obs.trades)} trades, "
            f"{len(obs.probes)} probes ({took:.1f} s)"
        )
        for fact, measured, ref in rows:
            print(f"  {fact}: {measured}")
            print(f"      published: {ref.text} [{ref.source}]")
    path = write_page(results, FloorSettings().var_dir / "reports", flow=args.flow, seed=args.seed)
    print(f"\nreport: {Path(path)}")


if __name__ == "__main__":
    main()
