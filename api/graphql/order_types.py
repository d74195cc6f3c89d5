"""Orders as the API shows them: state folded from the order rows, event history, the ledger
entry that authorised the order, and an iceberg parent's slices and progress."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Annotated

import strawberry

from api.graphql.context import Info
from api.graphql.scalars import Long
from ledger.iceberg_parents import SliceState
from ledger.order_entries import OrderEntry
from ledger.order_pages import ListedOrder
from trading.commands import Side as SideEnum
from trading.commands import TimeInForce as TimeInForceEnum
from trading.iceberg_parents import Parent
from trading.order_events import EventKind as EventKindEnum
from trading.order_events import OrderEvent as OrderRecord
from trading.orders import OrderState as OrderStateEnum
from trading.positions import PRICE_PLACES, shown

AVERAGE_PRICE = (
    "The average fill price; one with more than 6 decimals (a running average is a division) "
    "rounded half to even to 6."
)


def average_price(price: Decimal | None) -> Decimal | None:
    """An average fill price as the API shows it: as it is up to :data:`PRICE_PLACES`, else
    rounded there half to even, like a position's average cost (the fold divides to 28 digits)."""
    if price is None or price == price.quantize(PRICE_PLACES):
        return price
    return shown(Fraction(price), PRICE_PLACES)


Side = strawberry.enum(SideEnum, name="Side")
TimeInForce = strawberry.enum(TimeInForceEnum, name="TimeInForce")
OrderEventKind = strawberry.enum(EventKindEnum, name="OrderEventKind")
OrderState = strawberry.enum(OrderStateEnum, name="OrderState")
_TIFS: frozenset[str | None] = frozenset(TimeInForceEnum)


@strawberry.type
class Fill:
    exec_id: str
    quantity: int
    price: Decimal


@strawberry.type(name="OrderEvent", description="One record of an order's life, as the broker reported it.")
class OrderEventNode:
    id: str = strawberry.field(description="The record's event id (unique; clients dedupe on it).")
    order_id: str
    parent_id: str | None
    kind: OrderEventKind  # type: ignore[valid-type]
    account: str
    symbol: str
    agent: str
    side: Side  # type: ignore[valid-type]
    quantity: int
    filled_quantity: int
    average_fill_price: Decimal | None = strawberry.field(description=AVERAGE_PRICE)
    fill: Fill | None
    reason: str | None
    limit_price: Decimal | None
    ts: datetime

    @classmethod
    def of(cls, record: OrderRecord) -> OrderEventNode:
        fill = record.last_fill
        return cls(
            id=record.event_id,
            order_id=record.command_id,
            parent_id=record.parent_id,
            kind=record.kind,
            account=record.account,
            symbol=record.symbol,
            agent=record.agent_id,
            side=SideEnum(record.side),
            quantity=record.quantity,
            filled_quantity=record.filled_qty,
            average_fill_price=average_price(record.avg_fill_price),
            fill=None if fill is None else Fill(exec_id=fill.exec_id, quantity=fill.qty, price=fill.price),
            reason=record.reason,
            limit_price=record.limit_price,
            ts=record.ts,
        )


@strawberry.type(description="Who authorised a trader's order with WebAuthn, as its signed command says.")
class Authorization:
    authenticated: bool = strawberry.field(
        description="False: the ledger entry's signature did not verify (a refused, perhaps forged, "
        "command), so this is only what it claims; nobody vouches for it."
    )
    trader: str
    credential_id: str
    sign_count: Long
    authenticator_data_sha256: str
    client_data_sha256: str
    ceremony: str = strawberry.field(
        description="`arming`, `step_up`, or `session` (the sign-in: only cancels and the breaker's trip)."
    )
    order_hash: str | None

    @strawberry.field(
        description="A synced passkey (backup-eligible, or keeping no sign count) rather than a "
        "device-bound one: a copy of it cannot be told from the original. Null: no such passkey here."
    )
    async def synced(self, info: Info) -> bool | None:
        backup_eligible = await info.context.loaders.backup_eligible.load(self.credential_id)
        return None if backup_eligible is None else backup_eligible or self.sign_count == 0

    @classmethod
    def of(cls, data: dict[str, object], *, authenticated: bool) -> Authorization | None:
        try:
            return cls(
                authenticated=authenticated,
                trader=str(data["trader"]),
                credential_id=str(data["credential_id"]),
                sign_count=Long(int(str(data["sign_count"]))),
                authenticator_data_sha256=str(data["authenticator_data_sha256"]),
                client_data_sha256=str(data["client_data_sha256"]),
                ceremony=str(data["ceremony"]),
                order_hash=None if data.get("order_hash") is None else str(data["order_hash"]),
            )
        except (KeyError, ValueError):
            return None


@strawberry.type(description="The order's entry in the hash-chained ledger.")
class LedgerEntry:
    seq: Long
    hash: str = strawberry.field(description="The entry's hash (hex SHA-256), its link in the chain.")
    kind: str
    signer: str = strawberry.field(description="Key id of the key that signed the command.")
    agent: str | None
    decision: str
    reason: str | None
    authenticated: bool
    recorded_at: datetime
    command: str | None = strawberry.field(description="The signed command, as canonical JSON.")
    authorization: Authorization | None

    @classmethod
    def of(cls, entry: OrderEntry) -> LedgerEntry:
        command = entry.command
        authorization = entry.authorization
        return cls(
            seq=Long(entry.seq),
            hash=entry.entry_hash,
            kind=entry.kind,
            signer=entry.signer,
            agent=entry.agent_id,
            decision=entry.decision,
            reason=entry.reason,
            authenticated=entry.authenticated,
            recorded_at=entry.recorded_at,
            command=None if command is None else json.dumps(command, sort_keys=True, separators=(",", ":")),
            authorization=None
            if authorization is None
            else Authorization.of(dict(authorization), authenticated=entry.authenticated),
        )


@strawberry.type(description="An iceberg parent's progress: its slices are orders of their own.")
class IcebergProgress:
    total: int
    display_size: int
    filled: int
    working: int = strawberry.field(description="Shares in slices that may still fill.")
    remaining: int = strawberry.field(description="Shares no slice has taken yet.")
    slices_sent: int
    stopped: str | None = strawberry.field(description="Why it takes no more slices (cancelled, revoked).")
    slices: list[Annotated[Order, strawberry.lazy("api.graphql.order_types")]]


@strawberry.type
class Order:
    id: str = strawberry.field(description="The command id: the order's identity across the floor.")
    account: str
    symbol: str
    agent: str
    side: Side  # type: ignore[valid-type]
    quantity: int
    filled_quantity: int
    average_fill_price: Decimal | None = strawberry.field(description=AVERAGE_PRICE)
    limit_price: Decimal | None
    time_in_force: TimeInForce | None  # type: ignore[valid-type]
    state: OrderState  # type: ignore[valid-type]
    reason: str | None = strawberry.field(description="Why it was rejected, cancelled or expired.")
    parent_id: str | None = strawberry.field(description="For an iceberg slice, the iceberg's id.")
    created_at: datetime
    updated_at: datetime
    anomalies: list[str] = strawberry.field(description="Venue reports the state machine took on trust.")
    events: list[OrderEventNode] = strawberry.field(description="Every record of the order, oldest first.")
    iceberg: IcebergProgress | None = strawberry.field(description="Set on an iceberg parent.")

    @strawberry.field(description="The order's ledger entry: who signed it and what the floor decided.")
    async def ledger_entry(self, info: Info) -> LedgerEntry | None:
        entry = await info.context.loaders.entries.load(self.id)
        return None if entry is None else LedgerEntry.of(entry)

    @classmethod
    def of(cls, order: ListedOrder) -> Order:
        latest = order.latest
        view = order.view
        tif = order.first.tif
        return cls(
            id=view.command_id,
            account=order.first.account,
            symbol=order.first.symbol,
            agent=order.first.agent_id,
            side=SideEnum(order.first.side),
            quantity=view.quantity,
            filled_quantity=max(view.filled_qty, latest.filled_qty),
            average_fill_price=average_price(view.avg_fill_price or latest.avg_fill_price),
            limit_price=next((r.limit_price for r in order.records if r.limit_price is not None), None),
            time_in_force=TimeInForceEnum(tif) if tif is not None and tif in _TIFS else None,
            state=order.state,
            reason=latest.reason,
            parent_id=order.first.parent_id,
            created_at=order.first.ts,
            updated_at=order.records[-1].ts,
            anomalies=list(view.anomalies),
            events=[OrderEventNode.of(r) for r in order.records],
            iceberg=None,
        )

    @classmethod
    def parent(
        cls, parent: Parent, entry: OrderEntry, slices: list[ListedOrder], states: list[SliceState]
    ) -> Order:
        filled = sum(s.filled_qty for s in states)
        working = sum(s.quantity - s.filled_qty for s in states if not s.ended)
        taken = sum(s.taken for s in states)
        if filled >= parent.total:
            state = OrderStateEnum.FILLED
        elif parent.stopped is not None and working == 0:
            state = OrderStateEnum.CANCELLED
        elif filled:
            state = OrderStateEnum.PARTIALLY_FILLED
        else:
            state = OrderStateEnum.ACCEPTED
        notional = sum(
            (s.view.avg_fill_price * s.view.filled_qty for s in slices if s.view.avg_fill_price is not None),
            Decimal(0),
        )
        return cls(
            id=parent.command_id,
            account=parent.account,
            symbol=parent.symbol,
            agent=parent.agent_id,
            side=parent.side,
            quantity=parent.total,
            filled_quantity=filled,
            average_fill_price=shown(Fraction(notional) / filled, PRICE_PLACES) if filled else None,
            limit_price=parent.limit_price,
            time_in_force=parent.tif,
            state=state,
            reason=parent.stopped,
            parent_id=None,
            created_at=entry.recorded_at,
            updated_at=max((s.records[-1].ts for s in slices), default=entry.recorded_at),
            anomalies=[],
            events=[],
            iceberg=IcebergProgress(
                total=parent.total,
                display_size=parent.display,
                filled=filled,
                working=working,
                remaining=max(parent.total - taken, 0),
                slices_sent=len(states),
                stopped=parent.stopped,
                slices=[cls.of(s) for s in slices],
            ),
        )
