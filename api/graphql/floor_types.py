"""Positions, the breaker, the caller and security events as the API shows them."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

import strawberry

from trading.positions import Position as PositionState
from trading.risk import TradingState as TradingStateEnum
from trading.security_events import SecurityEvent as SecurityRecord

TradingState = strawberry.enum(TradingStateEnum, name="TradingState")


@strawberry.type(description="A position by the average-cost method; P&L to a hundredth of a cent.")
class Position:
    account: str
    symbol: str
    quantity: int = strawberry.field(description="Signed: long > 0, short < 0.")
    average_cost: Decimal | None
    realized_pnl: Decimal
    unrealized_pnl: Decimal | None = strawberry.field(description="At the mark; null without one.")
    mark: Decimal | None = strawberry.field(description="The book's mid, when the book is known.")

    @classmethod
    def of(cls, position: PositionState, mark: Decimal | None) -> Position:
        return cls(
            account=position.account,
            symbol=position.symbol,
            quantity=position.quantity,
            average_cost=position.average_cost,
            realized_pnl=position.realized,
            unrealized_pnl=position.unrealized(mark),
            mark=mark,
        )


@strawberry.type
class SecurityEvent:
    id: str
    ts: datetime | None
    title: str | None
    severity: str
    reason: str
    source: str
    agent_id: str | None
    key_id: str | None
    command_id: str | None
    signature_hash: str | None
    source_address: str | None
    detail: str = strawberry.field(description="JSON object.")

    @classmethod
    def of(cls, event: SecurityRecord) -> SecurityEvent:
        return cls(
            id=str(event.id if event.id is not None else event.event_id),
            ts=event.ts,
            title=event.title,
            severity=event.severity.value,
            reason=event.reason,
            source=event.source,
            agent_id=event.agent_id,
            key_id=event.key_id,
            command_id=event.command_id,
            signature_hash=event.signature_hash,
            source_address=event.source_address,
            detail=json.dumps(dict(event.detail), sort_keys=True, default=str),
        )


@strawberry.type(description="The caller: a trader (web session) or a program (API token).")
class Me:
    name: str
    kind: str = strawberry.field(description="`trader` or `token`.")
    role: str = strawberry.field(description="`trader`, `ops` or `read`.")
    accounts: list[str] = strawberry.field(description='The accounts it sees ("*": every account).')
