"""The venue calibration (``python -m bench.venue_facts``) as one self-contained HTML page:
per symbol, the facts beside their published ranges, and plots (spread distribution, depth
profile, fill probability, markouts, return distribution against a normal law, autocorrelation
of absolute returns and of trade signs), PNGs embedded as the paper-loop report embeds them."""

from __future__ import annotations

import html
import math
import statistics
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from matplotlib.axes import Axes

from floor.paper_loop_report import _png as png
from paper.venue import stylised as st
from paper.venue.observation import Observation

if TYPE_CHECKING:
    from bench.venue_facts import Reference

REPORT_PREFIX = "venue-facts-"
_STYLE = """
body { font: 14px system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 12px; margin-bottom: 1em; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.src { color: #555; }
img { max-width: 100%; border: 1px solid #ddd; margin: 4px 0; }
.plots { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 8px; }
"""

Rows = list[tuple[str, str, "Reference"]]


def write_page(
    results: Sequence[tuple[Observation, Rows]], out_dir: Path, *, flow: str, seed: int
) -> Path:
    at = datetime.now(UTC)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{REPORT_PREFIX}{flow}-{at:%Y%m%dT%H%M%SZ}.html"
    sections = "".join(_section(obs, rows) for obs, rows in results)
    path.write_text(
        '<!doctype html><html><head><meta charset="utf-8">'
        f"<title>Paper venue calibration ({_e(flow)})</title><style>{_STYLE}</style></head><body>"
        f"<h1>Paper venue calibration: order flow <code>{_e(flow)}</code></h1>"
        f"<p>{at:%Y-%m-%d %H:%M:%S} UTC, seed {seed}. Each symbol runs alone, in process, on "
        "market time; markouts are in basis points, positive when the fill was good for its owner."
        f"</p>{sections}</body></html>",
        encoding="utf-8",
    )
    return path


def _e(value: object) -> str:
    return html.escape(str(value))


def _section(obs: Observation, rows: Rows) -> str:
    table = "".join(
        f"<tr><td>{_e(fact)}</td><td>{_e(measured)}</td><td>{_e(ref.text)}</td>"
        f'<td class="src">{_e(ref.source)}</td></tr>'
        for fact, measured, ref in rows
    )
    plots = "".join(f'<img alt="{_e(title)}" src="{png(draw)}">' for title, draw in _plots(obs))
    return (
        f"<h2>{_e(obs.symbol)}</h2><p>{obs.seconds} s of market time, {obs.events} model events, "
        f"{len(obs.trades)} trades, {len(obs.probes)} probe orders.</p>"
        "<table><thead><tr><th>fact</th><th>measured</th><th>published</th><th>source</th></tr></thead>"
        f'<tbody>{table}</tbody></table><div class="plots">{plots}</div>'
    )


def _plots(obs: Observation) -> list[tuple[str, Callable[[Axes], None]]]:
    def spread(ax: Axes) -> None:
        dist = st.spread_distribution(obs)
        ax.bar(list(dist), [100 * v for v in dist.values()], color="tab:blue")
        ax.set_title("spread distribution", fontsize=10)
        ax.set_xlabel("ticks")
        ax.set_ylabel("% of seconds")

    def depth(ax: Axes) -> None:
        profile = st.depth_profile(obs)
        ax.bar(range(len(profile)), profile, color="tab:green")
        ax.set_title("mean depth by distance from the touch", fontsize=10)
        ax.set_xlabel("ticks from the best price")
        ax.set_ylabel("shares")

    def fills(ax: Axes) -> None:
        for within in (10, None):
            by = st.fill_probability_by_distance(obs, within)
            label = "within 60 s" if within is None else f"within {within} s"
            ax.plot(list(by), [p for p, _ in by.values()], marker="o", label=label)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=7)
        ax.set_title("fill probability of a resting order", fontsize=10)
        ax.set_xlabel("ticks behind the touch")

    def markouts(ax: Axes) -> None:
        hs = list(st.MARKOUT_HORIZONS_S)
        passive = [st.trade_markouts(obs, h)[1].mean_bps for h in hs]
        probes = [st.probe_markout(obs, h).mean_bps for h in hs]
        touch = [st.probe_markout(obs, h, distance=0).mean_bps for h in hs]
        ax.plot(hs, passive, marker="o", label="passive (model trades)")
        ax.plot(hs, probes, marker="s", label="passive (our probes, 0-4 ticks behind)")
        ax.plot(hs, touch, marker="^", label="passive (our probes joining the touch)")
        ax.axhline(0, color="0.6", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_title("passive markout", fontsize=10)
        ax.set_xlabel("seconds after the fill")
        ax.set_ylabel("bps")
        ax.legend(fontsize=7)

    def tails(ax: Axes) -> None:
        r = st.returns(obs, 10)
        if len(r) > 2:
            sd = statistics.pstdev(r) or 1.0
            z = [x / sd for x in r]
            ax.hist(z, bins=60, density=True, log=True, color="tab:purple", label="10 s returns")
            grid = [i / 10 for i in range(-60, 61)]
            ax.plot(grid, [math.exp(-x * x / 2) / math.sqrt(2 * math.pi) for x in grid], color="k",
                    linewidth=0.8, label="normal")  # fmt: skip
            ax.set_ylim(bottom=1e-4)
            ax.legend(fontsize=7)
        ax.set_title("10 s returns (standardised) against a normal law", fontsize=10)

    def clustering(ax: Axes) -> None:
        lags = list(range(1, 21))
        for h in (10, 60):
            ac = st.abs_return_autocorrelation(obs, h, lags)
            ax.plot(lags, list(ac.values()), marker=".", label=f"|{h} s returns|")
        signs = st.trade_sign_autocorrelation(obs.trades, lags)
        ax.plot(lags, list(signs.values()), marker=".", label="trade signs (lag in trades)")
        ax.axhline(0, color="0.6", linewidth=0.8)
        ax.set_title("autocorrelations", fontsize=10)
        ax.set_xlabel("lag")
        ax.legend(fontsize=7)

    return [
        ("spread", spread), ("depth", depth), ("fills", fills), ("markouts", markouts),
        ("tails", tails), ("autocorrelations", clustering),
    ]  # fmt: skip
