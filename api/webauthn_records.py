"""Between what :mod:`ledger.webauthn_store` keeps and what the ceremonies answer
(:mod:`api.webauthn_results`): passkeys, assertion proofs, arming grants and their limits, and
whether an enrolment can still register a passkey. Pure: no I/O."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from webauthn.helpers import bytes_to_base64url

from api import webauthn_results as r
from api.webauthn_checks import VerifiedAssertion
from api.webauthn_results import ArmingGrant, AssertionProof, AuthenticatorInfo, GrantLimits, Refusal
from ledger import webauthn_store as store
from ledger.traders import Enrolment, TraderRecord


def open_enrolment(
    enrolment: Enrolment | None, trader: TraderRecord | None, now: datetime
) -> Enrolment | Refusal:
    """The enrolment, if it can still register a passkey for its trader."""
    if enrolment is None or trader is None:
        return Refusal(
            r.ENROLMENT_INVALID, "this enrolment link is not valid; ask the operator for a new one"
        )
    if trader.disabled_at is not None:
        return Refusal(r.ENROLMENT_INVALID, "this trader is disabled; the operator must add the trader again")
    if enrolment.used_at is not None:
        return Refusal(
            r.ENROLMENT_INVALID, "this enrolment link was already used; ask the operator for a new one"
        )
    if enrolment.expires_at <= now:
        return Refusal(r.ENROLMENT_INVALID, "this enrolment link has expired; ask the operator for a new one")
    return enrolment


def proof(trader: str, checked: VerifiedAssertion) -> AssertionProof:
    return AssertionProof(
        trader=trader,
        credential_id=bytes_to_base64url(checked.credential_id),
        sign_count=checked.sign_count,
        authenticator_data_sha256=checked.authenticator_data_sha256,
        client_data_sha256=checked.client_data_sha256,
        synced=checked.backup_eligible or checked.sign_count == 0,
    )


def info(c: store.StoredCredential) -> AuthenticatorInfo:
    return AuthenticatorInfo(
        credential_id=bytes_to_base64url(c.credential_id),
        created_at=c.created_at,
        last_used_at=c.last_used_at,
        sign_count=c.sign_count,
        transports=c.transports,
        backup_eligible=c.backup_eligible,
        backed_up=c.backed_up,
    )


def grant(g: store.StoredGrant) -> ArmingGrant:
    return ArmingGrant(
        grant_id=g.grant_id,
        trader=g.trader,
        session_id=g.session_id,
        limits=GrantLimits(
            symbols=None if g.symbols is None else frozenset(g.symbols),
            max_quantity=g.max_quantity,
            max_notional=g.max_notional,
        ),
        expires_at=g.expires_at,
        proof=AssertionProof(
            trader=g.trader,
            credential_id=bytes_to_base64url(g.credential_id),
            sign_count=g.sign_count,
            authenticator_data_sha256=g.authenticator_data_sha256,
            client_data_sha256=g.client_data_sha256,
            synced=g.synced,
        ),
    )


def limits_json(limits: GrantLimits) -> dict[str, Any]:
    """The limits as an arming challenge keeps them until it is answered."""
    return {
        "symbols": None if limits.symbols is None else sorted(limits.symbols),
        "max_quantity": limits.max_quantity,
        "max_notional": None if limits.max_notional is None else str(limits.max_notional),
    }


def limits_from_json(doc: dict[str, Any]) -> GrantLimits:
    symbols = doc.get("symbols")
    notional = doc.get("max_notional")
    return GrantLimits(
        symbols=None if symbols is None else frozenset(symbols),
        max_quantity=doc.get("max_quantity"),
        max_notional=None if notional is None else Decimal(notional),
    )
