"""The venue's listed symbols and the order-flow parameters of each.

Two order-flow models read them: the zero-intelligence model of :mod:`paper.venue.flow`
(:class:`FlowParams` only) and the agent model of :mod:`paper.venue.agents`, which adds the
parameters of its informed, momentum and market-making populations (:class:`AgentParams`).
Prices are plausible levels for these names, not quotes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from paper.venue.messages import ContractInfo


@dataclass(frozen=True, slots=True)
class FlowParams:
    """Parameters of the Cont-Stoikov-Talreja style order-flow model for one symbol.

    - ``volatility``: annualised volatility of the reference price (geometric Brownian motion;
      a trading year of 252 days of 6.5 hours);
    - ``spread_ticks``: width in ticks between the reference bid and ask around which limit
      orders arrive;
    - ``depth_levels``: how many price levels per side limit orders arrive on (distance ``i`` in
      ``0 .. depth_levels - 1`` ticks behind the reference quote);
    - ``order_size``: mean size of a model order in shares (exponential, at least one lot);
    - ``event_rate``: model events (limit arrivals + market orders + cancellations) per second
      of market time; every event changes the book, so this is also the depth update rate;
    - ``market_fraction``: share of events that are market orders;
    - ``alpha``: exponent of the power law ``lambda(i) ~ (i + 1) ** -alpha`` for where limit
      orders arrive (CST estimate: about 0.5-0.8);
    - ``orders_per_level``: model orders per level the cancellation rate is tuned to sustain;
    - ``stale_cancel_factor``: how much faster orders further than ``depth_levels`` from the
      reference price are cancelled than orders at the reference quote.
    """

    volatility: float = 0.3
    spread_ticks: int = 1
    depth_levels: int = 20
    order_size: int = 100
    event_rate: float = 20.0
    market_fraction: float = 0.1
    alpha: float = 0.6
    orders_per_level: float = 3.0
    stale_cancel_factor: float = 4.0


@dataclass(frozen=True, slots=True)
class AgentParams:
    """Parameters of the agent model's populations for one symbol (:mod:`paper.venue.agents`).

    The value (:mod:`paper.venue.value`) and the reference price:

    - ``vol_of_vol``: stationary standard deviation of the log-volatility (stochastic
      volatility: returns are a variance mixture, hence heavy tails and clustering);
    - ``vol_memory_s``: mean-reversion time of the log-volatility, in seconds;
    - ``foresight_events``: the reference price (where liquidity arrives) moves with the value
      as it was this many model events ago, and with the takers' impact; informed traders see
      the value now, that is the reference price's next moves (200 events are 10 s at the
      usual 20 events a second);
    - ``permanent_impact``: the share of an uninformed taker's impact on the reference price
      that is long-lived (makers cannot tell an informed taker from a noise one);
    - ``impact_memory_events``: how many events the rest of the impact takes to fade (by a
      factor e);
    - ``discovery_events``: how many events the long-lived part takes to fade (price
      discovery: the market learns the value). Without it the reference would wander away
      from the value for good (tens of ticks within an hour on AAPL), informed traders would
      lean on one side all day, and their fills would carry no news about the next move.

    The agents' memories count model events, not seconds, so a symbol run at a higher event
    rate (a busy tape for a benchmark) is the same market, faster; only the value's
    volatility is set in market time.

    Liquidity takers, as shares of model events (:mod:`paper.venue.informed`,
    :mod:`paper.venue.momentum`, :mod:`paper.venue.noise`):

    - ``informed_fraction``: share of events that are informed market orders when the
      mispricing is ``informed_scale_ticks`` or more (proportionally less below it, none
      below ``informed_threshold_ticks``);
    - ``informed_size``: mean informed order size as a multiple of ``FlowParams.order_size``;
    - ``momentum_fraction`` / ``momentum_scale_ticks`` / ``momentum_memory_s``: the same for
      trend followers, whose signal is the reference price less its moving average over
      ``momentum_memory_events``;
    - ``noise_fraction``: share of events that are noise traders' market orders (the
      zero-intelligence model's ``market_fraction``);
    - ``meta_orders`` / ``meta_tail``: noise traders split their orders; this many
      concurrent meta-orders, each of a Pareto-distributed number of child orders with tail
      exponent ``meta_tail`` (Lillo, Mike & Farmer 2005: trade signs with long memory).

    Market makers (:mod:`paper.venue.market_maker`), per ``FlowParams.order_size`` taken:

    - ``touch_share`` / ``touch_size``: share of the makers' limit orders placed at their
      quote itself rather than at a power-law distance behind it, and their mean size as a
      multiple of ``FlowParams.order_size`` (large-tick stocks keep a long queue at the touch:
      an order joining its back fills mostly when the level is being taken out, that is when
      the price is about to move through it; at 2.0 such an order's 1-10 s markout turns
      negative on AAPL, but the book then follows the reference sluggishly and a day's realised
      volatility falls to about 0.7x the symbol's ``volatility``, hence 1.0);
    - ``impact_ticks``: how far the reference price moves with the taker (square root in
      size), transient for uninformed flow because the reference returns to the value;
    - ``widen_ticks`` / ``skew_ticks``: how much makers widen their quotes and shift them
      away from the side that was hit; both decay over ``maker_memory_events`` and the
      widening is capped at ``max_widen_ticks``.
    """

    vol_of_vol: float = 0.6
    vol_memory_s: float = 900.0
    foresight_events: int = 200
    permanent_impact: float = 0.25
    impact_memory_events: float = 400.0
    discovery_events: float = 2400.0
    informed_fraction: float = 0.1
    informed_threshold_ticks: float = 0.5
    informed_scale_ticks: float = 4.0
    informed_size: float = 1.5
    momentum_fraction: float = 0.03
    momentum_scale_ticks: float = 6.0
    momentum_memory_events: float = 1200.0
    noise_fraction: float = 0.05
    meta_orders: int = 3
    meta_tail: float = 1.5
    touch_share: float = 0.5
    touch_size: float = 1.0
    impact_ticks: float = 0.1
    widen_ticks: float = 0.01
    skew_ticks: float = 0.1
    maker_memory_events: float = 100.0
    max_widen_ticks: float = 2.0


@dataclass(frozen=True, slots=True)
class SymbolConfig:
    contract: ContractInfo
    initial_price: Decimal
    flow: FlowParams
    agents: AgentParams = AgentParams()


def _stock(
    symbol: str, con_id: int, primary: str, name: str, price: str, *, vol: float, spread: int
) -> SymbolConfig:
    return SymbolConfig(
        contract=ContractInfo(
            symbol=symbol,
            con_id=con_id,
            exchange="SMART",
            primary_exchange=primary,
            currency="USD",
            tick_size=Decimal("0.01"),
            lot_size=1,
            long_name=name,
        ),
        initial_price=Decimal(price),
        flow=FlowParams(volatility=vol, spread_ticks=spread),
    )


DEFAULT_SYMBOLS: tuple[SymbolConfig, ...] = (
    _stock("AAPL", 265598, "NASDAQ", "APPLE INC", "229.87", vol=0.25, spread=1),
    _stock("MSFT", 272093, "NASDAQ", "MICROSOFT CORP", "418.52", vol=0.24, spread=2),
    _stock("NVDA", 4815747, "NASDAQ", "NVIDIA CORP", "141.23", vol=0.50, spread=1),
    _stock("AMZN", 3691937, "NASDAQ", "AMAZON.COM INC", "201.45", vol=0.32, spread=1),
    _stock("JPM", 1520593, "NYSE", "JPMORGAN CHASE & CO", "243.10", vol=0.22, spread=2),
)


def with_event_rate(configs: tuple[SymbolConfig, ...], rates: dict[str, float]) -> tuple[SymbolConfig, ...]:
    """``configs`` with the event rate of the named symbols (``"*"``: all) replaced."""
    out = []
    for cfg in configs:
        rate = rates.get(cfg.contract.symbol, rates.get("*"))
        out.append(cfg if rate is None else replace(cfg, flow=replace(cfg.flow, event_rate=rate)))
    return tuple(out)
