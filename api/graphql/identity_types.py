"""The caller's passkeys and arming grant as the API shows them (``me``, and the ceremonies'
results)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import strawberry

from api.graphql.context import Info
from api.webauthn_results import ArmingGrant, AuthenticatorInfo


@strawberry.type(description="A registered passkey.")
class Passkey:
    credential_id: str = strawberry.field(description="base64url, no padding.")
    created_at: datetime
    last_used_at: datetime | None
    sign_count: int
    synced: bool = strawberry.field(description="A synced passkey (true) or device-bound (false).")
    backed_up: bool


@strawberry.type(description="Armed: Execute is allowed within these limits until expiresAt.")
class Armed:
    grant_id: str
    expires_at: datetime
    symbols: list[str] | None = strawberry.field(description="Instruments allowed; null: any.")
    max_quantity: int | None
    max_notional: Decimal | None
    credential_id: str
    synced: bool


def passkey(info: AuthenticatorInfo) -> Passkey:
    return Passkey(
        credential_id=info.credential_id,
        created_at=info.created_at,
        last_used_at=info.last_used_at,
        sign_count=info.sign_count,
        synced=info.synced,
        backed_up=info.backed_up,
    )


def armed(grant: ArmingGrant) -> Armed:
    limits = grant.limits
    return Armed(
        grant_id=grant.grant_id,
        expires_at=grant.expires_at,
        symbols=None if limits.symbols is None else sorted(limits.symbols),
        max_quantity=limits.max_quantity,
        max_notional=limits.max_notional,
        credential_id=grant.proof.credential_id,
        synced=grant.proof.synced,
    )


async def my_passkeys(info: Info) -> list[Passkey]:
    """The caller's passkeys (none for a program)."""
    ceremonies = info.context.services.ceremonies
    if ceremonies is None:
        return []
    return [passkey(a) for a in await ceremonies.authenticators(info.context.caller())]


async def my_arming_grant(info: Info) -> Armed | None:
    """The session's live arming grant, read now (never kept in the connection's context)."""
    ceremonies = info.context.services.ceremonies
    if ceremonies is None:
        return None
    grant = await ceremonies.current_grant(info.context.caller())
    return None if grant is None else armed(grant)
