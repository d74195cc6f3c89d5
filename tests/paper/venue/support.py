"""Building blocks for venue tests: a venue whose book holds exactly what a test puts there."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from paper.venue.book import Resting
from paper.venue.engine import Venue, VenueConfig
from paper.venue.messages import ASK, BID, OrderAck, OrderReject, OrderSpec, PlaceOrder
from paper.venue.state import SymbolState
from paper.venue.symbols import DEFAULT_SYMBOLS, with_event_rate

T0 = 1_800_000_000_000_000_000
MS = 1_000_000
SECOND = 1_000_000_000


def quiet_venue(**config: object) -> Venue:
    """A venue with the order-flow model switched off and AAPL's book empty."""
    symbols = with_event_rate(DEFAULT_SYMBOLS, {"*": 0.0})
    venue = Venue(replace(VenueConfig(symbols=symbols), **config), seed=1, start_ns=T0)  # type: ignore[arg-type]
    clear(venue.by_symbol["AAPL"])
    return venue


def clear(s: SymbolState) -> None:
    s.book.clear()
    s.book.changes.clear()


def liquidity(venue: Venue, side: int, price: str, qty: int, symbol: str = "AAPL") -> Resting:
    """Model liquidity (someone else's order) resting at ``price``."""
    s = venue.by_symbol[symbol]
    order = Resting(side, int(Decimal(price) / s.tick), qty)
    s.book.insert(order)
    return order


def bid(venue: Venue, price: str, qty: int) -> Resting:
    return liquidity(venue, BID, price, qty)


def ask(venue: Venue, price: str, qty: int) -> Resting:
    return liquidity(venue, ASK, price, qty)


class Trader:
    """Places orders for one client id with increasing ids."""

    def __init__(self, venue: Venue, client_id: int = 1, symbol: str = "AAPL") -> None:
        self.venue = venue
        self.client_id = client_id
        self.symbol = symbol
        self.next_id = venue.next_valid_id(client_id)

    def place(
        self, action: str, qty: int, order_type: str = "LMT", *, t: int | None = None, **prices: object
    ) -> OrderAck:
        reply = self.send(action, qty, order_type, t=t, **prices)
        assert isinstance(reply, OrderAck), reply
        return reply

    def send(
        self, action: str, qty: int, order_type: str = "LMT", *, t: int | None = None, **fields: object
    ) -> OrderAck | OrderReject:
        converted = {k: Decimal(str(v)) if k.endswith(("price", "percent")) else v for k, v in fields.items()}
        spec = OrderSpec(action, qty, order_type, **converted)  # type: ignore[arg-type]
        order_id = self.next_id
        self.next_id += 1
        return self.venue.place(
            PlaceOrder(self.client_id, order_id, spec, symbol=self.symbol),
            self.venue.now_ns if t is None else t,
        )

    def modify(self, ack: OrderAck, *, t: int | None = None, **changes: object) -> OrderAck | OrderReject:
        converted = {
            k: Decimal(str(v)) if k.endswith(("price", "percent")) and v is not None else v
            for k, v in changes.items()
        }
        spec = replace(ack.update.order, **converted)  # type: ignore[arg-type]
        return self.venue.place(
            PlaceOrder(self.client_id, ack.update.order_id, spec, symbol=self.symbol),
            self.venue.now_ns if t is None else t,
        )
