"""The symbols the floor trades, and the refusal of a command for any other.

The floor can size and risk-check an order only in a symbol whose quotes it streams
(``FLOOR_HOTPATH_SYMBOLS``, less any the broker has no contract for). A command for another
symbol is refused as :data:`UNKNOWN_SYMBOL`, by the API door already (HTTP 422) when the
floor's list says so, else by the hot path; never as a stale price, which would send its
sender looking for a market-data problem.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

UNKNOWN_SYMBOL = "unknown_symbol"
"""The command names a symbol the floor does not trade."""


TICK_SIZE = Decimal("0.01")
"""The price grid of the floor's symbols: US stocks priced at $1 or more quote in whole cents
(Reg NMS rule 612), and so do the paper venue's contracts. The HUD's ladder keys its book in
ticks of this size."""


def tick_size(symbol: str) -> Decimal:
    """The tick size of ``symbol``'s quotes (one grid for every symbol the floor trades today;
    a symbol on another grid, e.g. a future, is where this would look it up)."""
    return TICK_SIZE


def parse_symbols(text: str) -> tuple[str, ...]:
    """``"AAPL, MSFT"`` -> ``("AAPL", "MSFT")``: the comma-separated form of the settings."""
    return tuple(s.strip() for s in text.split(",") if s.strip())


def unknown_symbol_detail(symbol: str, traded: Iterable[str]) -> str:
    """What the sender reads: which symbols are traded and how to add one."""
    listed = ", ".join(sorted(traded)) or "none"
    return (
        f"{symbol} is not a symbol this floor trades ({listed}); use one of those, or add it to "
        "FLOOR_HOTPATH_SYMBOLS and restart the floor"
    )
