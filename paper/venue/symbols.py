"""The venue's listed symbols and the order-flow parameters of each.

The order-flow model is described in :mod:`paper.venue.flow`; these are its per-symbol inputs.
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
class SymbolConfig:
    contract: ContractInfo
    initial_price: Decimal
    flow: FlowParams


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
