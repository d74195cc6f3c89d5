"""Watch one symbol of the venue for a stretch of market time: what the stylised facts need.

:func:`observe` runs a venue in process (no sockets, no clock: market time only) for one
symbol and records, each second, the mid, the spread and the depth by distance from the touch;
every model trade with its aggressor's side (known exactly: a print at or above the ask just
before it is a buy); and the fate of small *probe* orders of ours, resting at 0-4 ticks behind
the touch for up to a minute, so fill probabilities and passive markouts are measured on
orders like a Sniper slice rather than inferred. Same seed, same observation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from paper.venue.book import Book
from paper.venue.engine import Venue, VenueConfig
from paper.venue.messages import ASK, BID, OrderAck, OrderSpec, PlaceOrder
from paper.venue.symbols import SymbolConfig

T0 = 1_800_000_000_000_000_000
SECOND = 1_000_000_000
DEPTH_LEVELS = 10
"""Depth is recorded at 0 .. DEPTH_LEVELS - 1 ticks from each side's best price."""
PROBE_DISTANCES = (0, 1, 2, 3, 4)
PROBE_CLIENT = 900


@dataclass(frozen=True, slots=True)
class Trade:
    """One taker event: its market time (ns from the start), aggressor sign (+1 buy, -1 sell),
    shares, volume-weighted price and the mid just before it, in ticks."""

    t_ns: int
    sign: int
    qty: int
    price: float
    mid_before: float


@dataclass(slots=True)
class Probe:
    """One probe order: placed ``distance`` ticks behind its side's best with ``queue_ahead``
    shares before it; ``fill_ns``/``fill_price`` (ticks) if it filled within its life."""

    t_ns: int
    buy: bool
    distance: int
    queue_ahead: int
    fill_ns: int | None = None
    fill_price: int | None = None


@dataclass
class Observation:
    symbol: str
    flow: str
    seconds: int
    order_size: int
    mids: list[float] = field(default_factory=list)
    """Mid in ticks at each whole second 0 .. seconds (the last one carried if a side is empty)."""
    spreads: list[int] = field(default_factory=list)
    depth_sums: tuple[list[int], list[int]] = field(
        default_factory=lambda: ([0] * DEPTH_LEVELS, [0] * DEPTH_LEVELS)
    )
    """Per side (BID, ASK): shares at each distance from the best, summed over the samples."""
    trades: list[Trade] = field(default_factory=list)
    probes: list[Probe] = field(default_factory=list)
    events: int = 0


def observe(
    cfg: SymbolConfig,
    *,
    flow: str,
    seconds: int,
    seed: int = 7,
    probe_every_s: int = 10,
    probe_life_s: int = 60,
) -> Observation:
    """Run ``cfg``'s symbol alone under order-flow model ``flow`` for ``seconds`` of market time."""
    venue = Venue(VenueConfig(symbols=(cfg,), flow=flow, check_buying_power=False), seed, T0)
    s = venue.states[0]
    book = s.book
    tape = s.tape
    obs = Observation(cfg.contract.symbol, flow, seconds, cfg.flow.order_size)
    probes: dict[int, Probe] = {}
    live: list[tuple[int, int]] = []
    """(expiry ns, order id) of probes still working, oldest first."""
    next_id = 1
    seen_executions = 0
    last_mid = float(s.flow.reference)
    _sample(obs, book, last_mid)
    for second in range(1, seconds + 1):
        end = T0 + second * SECOND
        flow_model = s.flow
        while flow_model.next_ns <= end:
            bid, ask = book.best_bid(), book.best_ask()
            t = flow_model.next_ns
            venue.advance(t)
            obs.events += 1
            if tape.pending:
                prints = tape.drain()
                qty = sum(p.size for p in prints)
                value = sum(int(p.price / s.tick) * p.size for p in prints)
                price = value / qty
                sign = 0
                if ask is not None and price >= ask:
                    sign = 1
                elif bid is not None and price <= bid:
                    sign = -1
                before = (bid + ask) / 2 if bid is not None and ask is not None else price
                obs.trades.append(Trade(t - T0, sign, qty, price, before))
        venue.advance(end)
        last_mid = _sample(obs, book, last_mid)
        executions = venue.executions
        for report in executions[seen_executions:]:
            execution = report.execution
            probe = probes.get(execution.order_id)
            if probe is not None and probe.fill_ns is None:
                probe.fill_ns = execution.time_ns - T0
                probe.fill_price = int(execution.price / s.tick)
        seen_executions = len(executions)
        while live and live[0][0] <= end:
            venue.cancel(PROBE_CLIENT, live.pop(0)[1], end)
        if second % probe_every_s == 0 and second + probe_life_s <= seconds:
            for side in (BID, ASK):
                best = book.best_bid() if side == BID else book.best_ask()
                if best is None:
                    continue
                for distance in PROBE_DISTANCES:
                    price = best - distance if side == BID else best + distance
                    if price < 1:
                        continue
                    spec = OrderSpec(
                        "BUY" if side == BID else "SELL", cfg.contract.lot_size, "LMT",
                        lmt_price=s.px(price), tif="GTC",
                    )  # fmt: skip
                    queue = book.size_at(side, price)
                    reply = venue.place(PlaceOrder(PROBE_CLIENT, next_id, spec, symbol=s.symbol), end)
                    if isinstance(reply, OrderAck):
                        probes[next_id] = Probe(end - T0, side == BID, distance, queue)
                        live.append((end + probe_life_s * SECOND, next_id))
                    next_id += 1
        venue.drain()
        venue.drain_depth()
        tape.drain()
    obs.probes = list(probes.values())
    return obs


def _sample(obs: Observation, book: Book, last_mid: float) -> float:
    bid, ask = book.best_bid(), book.best_ask()
    if bid is None or ask is None:
        obs.mids.append(last_mid)
        return last_mid
    mid = (bid + ask) / 2
    obs.mids.append(mid)
    obs.spreads.append(ask - bid)
    for side, best in ((BID, bid), (ASK, ask)):
        sums = obs.depth_sums[side]
        for k in range(DEPTH_LEVELS):
            sums[k] += book.size_at(side, best - k if side == BID else best + k)
    return mid
