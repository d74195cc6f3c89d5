"""The venue's order-flow models by name (``FLOOR_PAPER_FLOW``, ``python -m paper.venue --flow``).

- ``agents`` (the default): noise, informed, momentum and market-making populations with a
  hidden value, :mod:`paper.venue.agents`; passive fills meet adverse selection;
- ``zi``: the zero-intelligence model of :mod:`paper.venue.flow` (Cont, Stoikov & Talreja),
  kept for tests that rely on its simplicity (symmetric flow, no impact).
"""

from __future__ import annotations

from paper.venue.agents import AgentFlow
from paper.venue.flow import FlowModel
from paper.venue.symbols import SymbolConfig

ZI = "zi"
AGENTS = "agents"
FLOW_MODELS = (AGENTS, ZI)
DEFAULT_FLOW = AGENTS


def make_flow(
    name: str, cfg: SymbolConfig, seed: int, price_ticks: int, lot: int, start_ns: int
) -> FlowModel:
    """Symbol ``cfg``'s order-flow model ``name``; ``ValueError`` naming the choices if unknown."""
    symbol = cfg.contract.symbol
    if name == AGENTS:
        return AgentFlow(cfg.flow, cfg.agents, seed, symbol, price_ticks, lot, start_ns)
    if name == ZI:
        return FlowModel(cfg.flow, seed, symbol, price_ticks, lot, start_ns)
    raise ValueError(f"unknown order-flow model {name!r}: choose one of {', '.join(FLOW_MODELS)}")
