"""The tape as the API shows it: a :class:`TradeTape` (the session so far), then each
:class:`Trade`; decimals travel as strings."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated
from weakref import WeakKeyDictionary

import strawberry

from api.graphql.scalars import Long
from api.graphql.shared_results import SharedEvent, shared_update
from trading.trade_tape import CountedTrade, TapeSnapshot


@strawberry.type(description="One trade at the venue (anyone's), in the venue's order.")
class Trade(SharedEvent):
    symbol: str
    price: Decimal
    size: int
    venue_ts: datetime = strawberry.field(description="The venue's time of the trade.")
    session_volume: Long = strawberry.field(
        description="The volume this session the floor counted, this trade included."
    )
    complete: bool = strawberry.field(
        description="False while the session's tape has a known hole (the venue's volume jumped by "
        "more than a trade, a record could not be verified, or the venue gave no volume to check): "
        "sessionVolume and the volume at price then miss trades. A jump closes again if its trades "
        "arrive late, from another hot path."
    )
    venue_volume: Long | None = strawberry.field(
        description="The venue's own session volume after this trade (null: not reported)."
    )

    @classmethod
    def of(cls, trade: CountedTrade) -> Trade:
        return cls(
            symbol=trade.symbol,
            price=trade.price,
            size=trade.size,
            venue_ts=trade.venue_ts,
            session_volume=Long(trade.session_volume),
            complete=trade.complete,
            venue_volume=None if trade.venue_volume is None else Long(trade.venue_volume),
        )


@strawberry.type
class PriceVolume:
    price: Decimal
    volume: Long = strawberry.field(description="Shares traded at the price this session.")


@strawberry.type(
    description="A symbol's trades this session (the UTC day of the venue's time): the last "
    "trade, the volume and the volume at each price, highest price first. Replaces whatever the "
    "client holds: one comes first, and again at a new session or after the client fell behind."
)
class TradeTape(SharedEvent):
    symbol: str
    last: Trade | None
    session_volume: Long = strawberry.field(description="The volume this session the floor counted.")
    volume_at_price: list[PriceVolume]
    complete: bool = strawberry.field(
        description="False while the session's tape has a known hole: the volumes then miss trades."
    )
    venue_volume: Long | None = strawberry.field(
        description="The venue's own session volume as last reported (null: not reported)."
    )

    @classmethod
    def of(cls, tape: TapeSnapshot) -> TradeTape:
        return cls(
            symbol=tape.symbol,
            last=None if tape.last is None else trade_update(tape.last),  # type: ignore[arg-type]
            session_volume=Long(tape.session_volume),
            volume_at_price=[PriceVolume(price=p, volume=Long(v)) for p, v in tape.volume_at_price],
            complete=tape.complete,
            venue_volume=None if tape.venue_volume is None else Long(tape.venue_volume),
        )


TradeUpdate = Annotated[TradeTape | Trade, strawberry.union("TradeUpdate")]

_updates: WeakKeyDictionary[TapeSnapshot | CountedTrade, TradeTape | Trade] = WeakKeyDictionary()
"""Subscribers in step are handed the same snapshot or trade: they get the same update, whose
result is then executed once for all of them (:mod:`api.graphql.shared_results`)."""


def trade_update(item: TapeSnapshot | CountedTrade) -> TradeTape | Trade:
    return shared_update(
        _updates, item, lambda i: TradeTape.of(i) if isinstance(i, TapeSnapshot) else Trade.of(i)
    )
