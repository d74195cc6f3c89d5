"""The symbols the hot path trades, subscribed at the broker: L2 depth and trades for the HUD,
L1 quotes for the risk gate, the breaker and the trailing stops."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from brokers.base import Broker, DepthSnapshot, Quote, Trade, UnknownSymbol

log = logging.getLogger(__name__)


async def stream_symbols(
    broker: Broker,
    symbols: Iterable[str],
    on_quote: Callable[[Quote], None],
    on_depth: Callable[[DepthSnapshot], None],
    on_trade: Callable[[Trade], None] | None = None,
) -> frozenset[str]:
    """Subscribe each symbol's depth, quotes and (given ``on_trade``) trades; return the symbols
    the floor can trade: all of them but those the broker has no contract for (an order in one
    could be neither priced nor placed, so intake refuses it as unknown, not as stale)."""
    traded: set[str] = set()
    for symbol in symbols:
        try:
            await broker.subscribe_depth(symbol, on_depth)
        except UnknownSymbol:
            log.error("the broker has no contract for %s; its commands are refused as unknown_symbol", symbol)
            continue
        except Exception:
            log.exception("cannot stream depth for %s; nothing is published on market.depth for it", symbol)
        traded.add(symbol)
        try:
            await broker.subscribe_quotes(symbol, on_quote)
        except Exception:
            # Without quotes the risk gate refuses the symbol as stale; intake still runs so
            # exits, cancels and other symbols keep working.
            log.exception("cannot stream quotes for %s; its orders will be refused as stale", symbol)
        if on_trade is not None:
            try:
                await broker.subscribe_trades(symbol, on_trade)
            except Exception:
                log.exception("cannot stream trades for %s; nothing goes on market.trades for it", symbol)
    return frozenset(traded)
