"""The paper-loop audit as one self-contained HTML page: the summary, every violation, plots
(dollar risk per trade against Max Dollar Risk, notional against Max Trade Size, the P&L curve,
the latency histogram; PNGs embedded as ``data:`` URLs, so the file can be mailed or archived
alone) and a table of every trade."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from trading.paper_loop_audit import AuditResult, TradeAudit

REPORT_PREFIX = "paper-loop-"
_STYLE = """
body { font: 14px system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 12px; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; white-space: nowrap; }
th { background: #f0f0f0; position: sticky; top: 0; }
td.l { text-align: left; }
tr.bad td { background: #fdd; }
.ok { color: #070; } .bad { color: #b00; }
img { max-width: 100%; border: 1px solid #ddd; margin: 4px 0; }
.plots { display: grid; grid-template-columns: repeat(auto-fit, minmax(480px, 1fr)); gap: 8px; }
"""


def summary_lines(result: AuditResult) -> list[str]:
    """The audit in a few printable lines (what the page's head says)."""
    s = result.summary
    outcomes = ", ".join(f"{n} {k}" for k, n in sorted(s.outcomes.items())) or "none"
    binding = ", ".join(f"{n} {k}" for k, n in sorted(s.binding.items())) or "none"
    lines = [
        f"trades: {s.trades} ({outcomes})",
        f"limit that set the size: {binding}",
        f"realized P&L: ${s.pnl:.2f} (before commissions)",
    ]
    if s.mean_slippage is not None:
        lines.append(
            f"slippage: ${s.slippage_dollars:.2f} in all, ${s.mean_slippage:.4f} a share on average"
            " (against the mid at the signal where the agent gave it, else the touch the floor sized at)"
        )
    if s.latency_ms:
        shown = ", ".join(f"{k} {v:.1f} ms" for k, v in s.latency_ms.items())
        lines.append(f"signal to broker acknowledgement: {shown}")
    if result.ok:
        lines.append("violations: none")
    else:
        by_rule = ", ".join(f"{n} {k}" for k, n in sorted(s.violations.items()))
        lines.append(f"violations: {len(result.violations)} ({by_rule})")
    return lines


def write_report(
    result: AuditResult, out_dir: Path, *, notes: Sequence[str] = (), now: datetime | None = None
) -> Path:
    """Write ``out_dir/paper-loop-<UTC time>.html``; returns its path."""
    at = (now or datetime.now(UTC)).astimezone(UTC)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{REPORT_PREFIX}{at:%Y%m%dT%H%M%SZ}.html"
    path.write_text(render_report(result, notes=notes, now=at), encoding="utf-8")
    return path


def render_report(result: AuditResult, *, notes: Sequence[str] = (), now: datetime | None = None) -> str:
    at = (now or datetime.now(UTC)).astimezone(UTC)
    verdict = (
        '<p class="ok"><b>Every trade within the risk profile in force.</b></p>'
        if result.ok
        else f'<p class="bad"><b>{len(result.violations)} violations</b></p>'
    )
    violations = "".join(
        f"<li><code>{_e(v.command_id)}</code> <b>{_e(v.rule)}</b>: {_e(v.detail)}</li>"
        for v in result.violations
    )
    plots = "".join(f'<img alt="{_e(title)}" src="{uri}">' for title, uri in _plots(result.trades))
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        f"<title>Paper-trade loop {at:%Y-%m-%d %H:%M:%S} UTC</title><style>{_STYLE}</style></head><body>"
        f"<h1>Paper-trade loop</h1><p>{at:%Y-%m-%d %H:%M:%S} UTC. Checked from the venue's executions"
        " and the ledger, never from the hot path's counters.</p>"
        f"{verdict}<ul>{''.join(f'<li>{_e(line)}</li>' for line in [*summary_lines(result), *notes])}</ul>"
        + (f"<h2>Violations</h2><ol>{violations}</ol>" if violations else "")
        + f'<h2>Plots</h2><div class="plots">{plots}</div>'
        + f"<h2>Trades</h2>{_table(result.trades)}</body></html>"
    )


def _e(value: object) -> str:
    return html.escape(str(value))


def _money(value: Decimal | None) -> str:
    return "" if value is None else f"{value:.2f}"


_COLUMNS = (
    "#", "command", "agent", "symbol", "side", "type", "sent", "Kelly qty", "binding", "filled",
    "avg fill", "stop", "dollar risk", "Max Dollar Risk", "notional", "Max Trade Size", "P&L",
    "outcome", "latency ms", "violations",
)  # fmt: skip
_LEFT = frozenset({1, 2, 3, 4, 5, 8, 17, 19})


def _table(trades: Sequence[TradeAudit]) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in _COLUMNS)
    rows = []
    for n, t in enumerate(trades, 1):
        cells = (
            n, t.command_id, t.agent_id, t.symbol, t.side.value, t.order_type, t.quantity_sent,
            "" if t.kelly_quantity is None else t.kelly_quantity,
            t.binding or ("manual" if not t.sized else ""),
            t.filled, "" if t.avg_fill is None else f"{t.avg_fill:.4f}", "" if t.stop is None else t.stop,
            _money(t.dollar_risk), _money(t.max_dollar_risk), _money(t.notional), _money(t.max_trade_size),
            _money(t.realized_pnl), t.outcome, "" if t.latency_ms is None else f"{t.latency_ms:.1f}",
            "; ".join(v.rule for v in t.violations),
        )  # fmt: skip
        tds = "".join(
            f'<td class="l">{_e(c)}</td>' if i in _LEFT else f"<td>{_e(c)}</td>" for i, c in enumerate(cells)
        )
        rows.append(f'<tr class="bad">{tds}</tr>' if t.violations else f"<tr>{tds}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _png(draw: Callable[[Axes], None]) -> str:
    """One plot as a ``data:`` URL (the object API: no pyplot state, no display needed)."""
    fig = Figure(figsize=(7, 3.4), dpi=100)
    draw(fig.add_subplot())
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _plots(trades: Sequence[TradeAudit]) -> list[tuple[str, str]]:
    # Plotting only: the exact Decimals are in the table and the audit.
    n = list(range(1, len(trades) + 1))
    bad = [i for i, t in zip(n, trades, strict=True) if t.violations]

    def against(
        title: str, value: Callable[[TradeAudit], Decimal], limit: Callable[[TradeAudit], Decimal | None]
    ) -> Callable[[Axes], None]:
        def draw(ax: Axes) -> None:
            ys = [float(value(t)) for t in trades]
            ax.scatter(n, ys, s=8, color="tab:blue", label=title)
            limits = [limit(t) for t in trades]
            ax.step(n, [float(x) if x is not None else float("nan") for x in limits], where="mid",
                    color="tab:red", label="limit in force")  # fmt: skip
            if bad:
                ax.scatter(bad, [ys[i - 1] for i in bad], s=30, facecolors="none", edgecolors="red",
                           label="violation")  # fmt: skip
            ax.set_ylim(bottom=0)  # the distance to the limit, shown to scale
            ax.set_title(f"{title} per trade against the limit", fontsize=10)
            ax.set_xlabel("trade")
            ax.set_ylabel("$")
            ax.legend(fontsize=7, loc="best")

        return draw

    def pnl(ax: Axes) -> None:
        total, curve = Decimal(0), []
        for t in trades:
            total += t.realized_pnl
            curve.append(float(total))
        ax.plot(n, curve, color="tab:green")
        ax.axhline(0, color="0.6", linewidth=0.8)
        ax.set_title("realized P&L, cumulative (before commissions)", fontsize=10)
        ax.set_xlabel("trade")
        ax.set_ylabel("$")

    def latency(ax: Axes) -> None:
        samples = [t.latency_ms for t in trades if t.latency_ms is not None]
        if samples:
            ax.hist(samples, bins=min(50, max(5, len(samples) // 10)), color="tab:purple")
        ax.set_title("signal to broker acknowledgement", fontsize=10)
        ax.set_xlabel("ms")
        ax.set_ylabel("trades")

    return [
        (
            "dollar risk",
            _png(against("dollar risk at entry", lambda t: t.dollar_risk, lambda t: t.max_dollar_risk)),
        ),
        ("notional", _png(against("entry notional", lambda t: t.notional, lambda t: t.max_trade_size))),
        ("P&L", _png(pnl)),
        ("latency", _png(latency)),
    ]
