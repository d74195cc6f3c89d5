"""The L2 book and the breaker as the API shows them: a book snapshot, then deltas that carry
``sequence`` and ``previousSequence`` so a client sees a gap and resyncs."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated
from weakref import WeakKeyDictionary

import strawberry

from api.graphql.floor_types import TradingState
from api.graphql.scalars import Long
from api.graphql.shared_results import SharedEvent, shared_update
from api.hub_feeds import BreakerStatus
from trading.breaker_trip import TripSummary
from trading.depth_book import BookDelta as DeltaRecord
from trading.depth_book import BookSnapshot as SnapshotRecord
from trading.depth_book import Level
from trading.symbols import tick_size


@strawberry.type
class BookLevel:
    price: Decimal
    size: int = strawberry.field(description="Shares at the price; 0 in a delta: the level is gone.")


def _levels(levels: tuple[Level, ...]) -> list[BookLevel]:
    return [BookLevel(price=price, size=size) for price, size in levels]


@strawberry.type(description="The top levels of a symbol's book, best first.")
class BookSnapshot(SharedEvent):
    symbol: str
    sequence: Long = strawberry.field(description="Counts up per symbol in one API process.")
    venue_ts: datetime
    tick_size: Decimal = strawberry.field(
        description="The symbol's price grid: every price of the book is a whole number of these."
    )
    bids: list[BookLevel]
    asks: list[BookLevel]
    gap: bool = strawberry.field(
        description="True when this snapshot comes in place of a delta because the broker's feed "
        "had a gap (a gateway failover or reconnect, its market data lost): updates may have been "
        "missed; replace the book held with this one."
    )

    @classmethod
    def of(cls, snapshot: SnapshotRecord) -> BookSnapshot:
        return cls(
            symbol=snapshot.symbol,
            sequence=Long(snapshot.sequence),
            venue_ts=snapshot.venue_ts,
            tick_size=tick_size(snapshot.symbol),
            bids=_levels(snapshot.bids),
            asks=_levels(snapshot.asks),
            gap=snapshot.gap,
        )


@strawberry.type(
    description="The levels that changed since the book at previousSequence (size 0: removed). "
    "Apply it only on a book at previousSequence; otherwise resubscribe for a snapshot."
)
class BookDelta(SharedEvent):
    symbol: str
    sequence: Long
    previous_sequence: Long
    venue_ts: datetime = strawberry.field(description="The venue's time of the newest update it includes.")
    bids: list[BookLevel]
    asks: list[BookLevel]

    @classmethod
    def of(cls, delta: DeltaRecord) -> BookDelta:
        return cls(
            symbol=delta.symbol,
            sequence=Long(delta.sequence),
            previous_sequence=Long(delta.previous_sequence),
            venue_ts=delta.venue_ts,
            bids=_levels(delta.bids),
            asks=_levels(delta.asks),
        )


BookUpdate = Annotated[BookSnapshot | BookDelta, strawberry.union("BookUpdate")]


_updates: WeakKeyDictionary[SnapshotRecord | DeltaRecord, BookSnapshot | BookDelta] = WeakKeyDictionary()
"""The hub hands subscribers in step the same record: they get the same update, whose result is
then executed once for all of them (:mod:`api.graphql.shared_results`)."""


def book_update(item: SnapshotRecord | DeltaRecord) -> BookSnapshot | BookDelta:
    return shared_update(
        _updates, item, lambda i: BookSnapshot.of(i) if isinstance(i, SnapshotRecord) else BookDelta.of(i)
    )


@strawberry.type(
    description="What the trip behind a halt did. A manual trip (reason manual) or an entry that does not "
    "verify (unverified_entry) has no move: only a flash_crash names the symbol and its fall."
)
class BreakerTrip:
    reason: str = strawberry.field(description="flash_crash, manual or unverified_entry.")
    symbol: str | None
    drop: Decimal | None = strawberry.field(
        description='The fall from the reference, a fraction ("0.052" = 5.2 %).'
    )
    reference_price: Decimal | None = strawberry.field(description="The high in the window it fell from.")
    price: Decimal | None = strawberry.field(description="The price that tripped it.")
    cancelled_orders: int | None = strawberry.field(
        description="The floor's orders working when the global cancel went out."
    )
    cancel_millis: int | None = strawberry.field(
        description="Crashing tick to the global cancel on the broker's socket, whole ms rounded up."
    )

    @classmethod
    def of(cls, trip: TripSummary) -> BreakerTrip:
        return cls(
            reason=trip.reason,
            symbol=trip.symbol,
            drop=trip.drop,
            reference_price=trip.reference_price,
            price=trip.price,
            cancelled_orders=trip.cancelled_orders,
            cancel_millis=trip.cancel_millis,
        )


@strawberry.type(description="The circuit breaker: trading state and the ledger entry that set it.")
class Breaker:
    state: TradingState  # type: ignore[valid-type]
    seq: Long | None = strawberry.field(description="The ledger entry that set it (null: never moved).")
    kind: str | None = strawberry.field(description="breaker_tripped (automatic), breaker_trip, breaker_arm.")
    by: str | None = strawberry.field(description="Who tripped or re-armed it.")
    command_id: str | None
    changed_at: datetime | None
    problem: str | None = strawberry.field(description="Why that entry does not verify (it then halts).")
    trip: BreakerTrip | None = strawberry.field(description="Null unless that entry was a trip.")

    @classmethod
    def of(cls, status: BreakerStatus) -> Breaker:
        return cls(
            state=status.state,
            seq=None if status.seq is None else Long(status.seq),
            kind=status.kind,
            by=status.agent_id,
            command_id=status.command_id,
            changed_at=status.changed_at,
            problem=status.problem,
            trip=None if status.trip is None else BreakerTrip.of(status.trip),
        )
