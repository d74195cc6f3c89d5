"""Positions, the breaker, the caller and security events as the API shows them."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

import strawberry

from api.graphql.context import Info
from api.graphql.scalars import Long
from api.principals import Principal
from api.webauthn_results import ArmingGrant, AuthenticatorInfo
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


@strawberry.type(description="One of the trader's passkeys.")
class Authenticator:
    credential_id: str = strawberry.field(description="base64url, no padding.")
    created_at: datetime
    last_used_at: datetime | None
    sign_count: Long
    transports: list[str]
    backup_eligible: bool
    backed_up: bool
    synced: bool = strawberry.field(
        description="A synced passkey (backup-eligible, or keeping no sign count) rather than device-bound."
    )

    @classmethod
    def of(cls, info: AuthenticatorInfo) -> Authenticator:
        return cls(
            credential_id=info.credential_id,
            created_at=info.created_at,
            last_used_at=info.last_used_at,
            sign_count=Long(info.sign_count),
            transports=list(info.transports),
            backup_eligible=info.backup_eligible,
            backed_up=info.backed_up,
            synced=info.synced,
        )


@strawberry.type(description="The session's arming grant: Execute works within its limits until it expires.")
class Grant:
    expires_at: datetime
    symbols: list[str] | None = strawberry.field(description="Null: any symbol.")
    max_quantity: int | None
    max_notional: Decimal | None
    credential_id: str = strawberry.field(description="The passkey whose assertion armed the session.")

    @classmethod
    def of(cls, grant: ArmingGrant) -> Grant:
        limits = grant.limits
        return cls(
            expires_at=grant.expires_at,
            symbols=None if limits.symbols is None else sorted(limits.symbols),
            max_quantity=limits.max_quantity,
            max_notional=limits.max_notional,
            credential_id=grant.proof.credential_id,
        )


@strawberry.type(description="The caller: a trader (web session) or a program (API token).")
class Me:
    name: str
    kind: str = strawberry.field(description="`trader` or `token`.")
    role: str = strawberry.field(description="`trader`, `ops` or `read`.")
    accounts: list[str] = strawberry.field(description='The accounts it sees ("*": every account).')
    step_up_every_order: bool = strawberry.field(description="Every Execute needs its own ceremony.")
    principal: strawberry.Private[Principal]

    @strawberry.field(description="The trader's passkeys (none for a token).")
    async def authenticators(self, info: Info) -> list[Authenticator]:
        ceremonies = info.context.services.ceremonies
        if ceremonies is None:
            return []
        return [Authenticator.of(a) for a in await ceremonies.authenticators(self.principal)]

    @strawberry.field(description="The session's live arming grant, read now; null when unarmed or expired.")
    async def grant(self, info: Info) -> Grant | None:
        ceremonies = info.context.services.ceremonies
        grant = None if ceremonies is None else await ceremonies.current_grant(self.principal)
        return None if grant is None else Grant.of(grant)

    @classmethod
    def of(cls, principal: Principal) -> Me:
        return cls(
            name=principal.name,
            kind=principal.kind,
            role=principal.role,
            accounts=sorted(principal.accounts),
            step_up_every_order=principal.step_up_every_order,
            principal=principal,
        )
