"""What the desk answers: one frozen dataclass per expected outcome, each with a dotted
``reason`` where it is a refusal, so GraphQL returns them as union members and REST as the
status and ``error`` of its answer. Exceptions are for bugs only.

:func:`outcome_result` maps the hot path's ``accepted`` / ``rejected`` record of an executed
order to its result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from trading.order_events import EventKind, OrderEvent
from trading.step_up import OrderTerms, hash_prefix

NOT_ARMED = "desk.not_armed"
STEP_UP_EVERY_ORDER = "desk.step_up_every_order"
NO_SESSION = "desk.no_session"
NOT_STAGED = "desk.not_staged"
ALREADY_EXECUTED = "desk.already_executed"
STAGED_ELSEWHERE = "desk.staged_in_another_session"
STAGED_ALTERED = "desk.staged_order_altered"
STAGED_EXPIRED = "desk.staged_expired"
STAGED_DISCARDED = "desk.staged_discarded"
NO_TRADER_KEY = "desk.no_trader_key"
UNKNOWN_ORDER = "desk.unknown_order"
ACCOUNT_NOT_ALLOWED = "desk.account_not_allowed"
TICKET_INVALID = "desk.ticket_invalid"

PENDING = "PENDING"
"""The hot path's decision did not arrive in time, or Kafka did not acknowledge the command
(it may still have reached the floor): follow the order on ``orderEvents``."""
ACCEPTED = "ACCEPTED"


@dataclass(frozen=True)
class Discarded:
    """The staged order can no longer be executed."""

    staged_id: str


@dataclass(frozen=True)
class StepUpAnswer:
    """The trader's assertion over a step-up challenge (``PublicKeyCredential.toJSON()``)."""

    challenge_id: str
    credential_json: str


@dataclass(frozen=True)
class Staged:
    staged_id: str
    terms: OrderTerms
    order_hash: str
    """SHA-256 of the order's canonical bytes (:mod:`trading.step_up`); the HUD shows its start."""
    created_at: datetime

    @property
    def order_hash_prefix(self) -> str:
        """What the HUD shows next to Execute (:func:`trading.step_up.hash_prefix`)."""
        return hash_prefix(self.order_hash)


@dataclass(frozen=True)
class Executed:
    staged_id: str | None
    command_id: str
    state: str
    """:data:`ACCEPTED` (the hot path ledgered it and sends it to the broker) or :data:`PENDING`."""
    ceremony: str
    """What authorised it: ``arming`` or ``step_up``."""


@dataclass(frozen=True)
class NotArmed:
    reason: str
    detail: str


@dataclass(frozen=True)
class GrantExceeded:
    reason: str
    detail: str


@dataclass(frozen=True)
class StepUpRequired:
    reason: str
    """Why: ``grant.max_quantity``, ``grant.max_notional``, ``grant.notional_unknown`` or
    :data:`STEP_UP_EVERY_ORDER`."""
    detail: str
    challenge_id: str
    options_json: str
    """WebAuthn request options for ``navigator.credentials.get`` (challenge derived from the order)."""
    expires_at: datetime
    order_hash: str
    order_hash_prefix: str


@dataclass(frozen=True)
class RiskRejected:
    command_id: str
    reason: str
    """The hot path's ``risk.*`` or ``sizing.*`` reason."""
    detail: str


@dataclass(frozen=True)
class BreakerHalted:
    command_id: str
    reason: str
    detail: str


@dataclass(frozen=True)
class Invalid:
    reason: str
    detail: str
    field: str | None = None


@dataclass(frozen=True)
class CancelSent:
    command_id: str
    """The cancel command's own id."""
    target: str | None
    """The order it cancels (None for a cancel of every order on the account)."""
    accounts: tuple[str, ...] = ()
    """A cancel-all's accounts, one command each (``command_ids``, in the same order)."""
    command_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class BreakerCommandSent:
    command_id: str
    kind: str
    """``breaker_trip`` or ``breaker_arm``."""


ExecuteResult = Executed | NotArmed | GrantExceeded | StepUpRequired | RiskRejected | BreakerHalted | Invalid
Refusal = NotArmed | GrantExceeded | StepUpRequired | RiskRejected | BreakerHalted | Invalid


def outcome_result(event: OrderEvent, staged_id: str | None, ceremony: str) -> ExecuteResult:
    """The result of an executed order once the hot path's first record for it arrived."""
    if event.kind is not EventKind.REJECTED:
        return Executed(staged_id, event.command_id, ACCEPTED, ceremony)
    reason = event.reason or "rejected"
    detail = f"the floor refused the order: {reason}"
    if reason.startswith("breaker."):
        return BreakerHalted(
            event.command_id,
            reason,
            "the circuit breaker has halted the floor: nothing is sent until it is re-armed",
        )
    if reason.startswith(("risk.", "sizing.")):
        return RiskRejected(event.command_id, reason, detail)
    return Invalid(reason, detail)
