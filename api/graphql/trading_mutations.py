"""The trading mutations: the trader's desk (stage, execute behind the WebAuthn interlock,
cancel, trip and re-arm the breaker) and ``submitCommand`` for programs that sign their own
commands, as agents do.

Expected outcomes are result types in unions; GraphQL errors are for an unauthenticated
caller and for bugs. Every result a refusal can be carries ``reason`` (a dotted name) and
``detail`` (what to do next).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

import strawberry

from api import desk_results as results
from api.desk import Desk
from api.door import Published
from api.graphql.context import Info
from api.graphql.errors import UNAVAILABLE, Refused
from api.graphql.order_types import Side, TimeInForce
from api.graphql.scalars import Long
from trading.commands import OrderType as OrderTypeEnum
from trading.commands import Side as SideEnum
from trading.commands import TimeInForce as TimeInForceEnum
from trading.order_ticket import Ticket
from trading.step_up import OrderTerms

OrderType = strawberry.enum(OrderTypeEnum, name="OrderType")


@strawberry.input(description="An order ticket: what the trader wants to trade. Prices are decimal strings.")
class OrderTicketInput:
    account: str
    symbol: str
    side: Side  # type: ignore[valid-type]
    order_type: OrderType  # type: ignore[valid-type]
    quantity: int
    tif: TimeInForce = TimeInForceEnum.DAY  # type: ignore[valid-type]
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    stop_loss: Decimal | None = strawberry.field(
        default=None, description="Where the loss is measured to (risk); without it, the whole notional."
    )


@strawberry.input(description="The answer to a StepUpRequired: the assertion over its challenge.")
class StepUpAssertionInput:
    challenge_id: str
    credential: str = strawberry.field(description="JSON text of PublicKeyCredential.toJSON().")


@strawberry.type(description="An order staged for Execute; nothing was sent.")
class Staged:
    staged_id: str
    order_hash: str = strawberry.field(description="SHA-256 of the order's canonical bytes (hex).")
    order_hash_prefix: str = strawberry.field(description="What the HUD shows next to Execute.")
    account: str
    symbol: str
    side: Side  # type: ignore[valid-type]
    order_type: OrderType  # type: ignore[valid-type]
    quantity: int
    tif: TimeInForce  # type: ignore[valid-type]
    limit_price: Decimal | None
    stop_price: Decimal | None
    stop_loss: Decimal | None
    created_at: datetime

    @classmethod
    def of(cls, staged_id: str, terms: OrderTerms, order_hash: str, created_at: datetime) -> Staged:
        return cls(
            staged_id=staged_id,
            order_hash=order_hash,
            order_hash_prefix=order_hash[:8],
            account=terms.account,
            symbol=terms.symbol,
            side=terms.side,
            order_type=terms.order_type,
            quantity=terms.quantity,
            tif=terms.tif,
            limit_price=terms.limit_price,
            stop_price=terms.stop_price,
            stop_loss=terms.stop_loss,
            created_at=created_at,
        )


@strawberry.type(description="Sent: ACCEPTED by the hot path (ledgered), or PENDING (follow orderEvents).")
class Executed:
    staged_id: str | None
    command_id: str
    state: str
    ceremony: str = strawberry.field(description="What authorised it: arming or step_up.")


@strawberry.type(description="The session holds no live arming grant: arm, then execute again.")
class NotArmed:
    reason: str
    detail: str


@strawberry.type(description="The arming grant does not cover this instrument: arm again including it.")
class GrantExceeded:
    reason: str
    detail: str


@strawberry.type(
    description="This order needs its own WebAuthn ceremony: answer the challenge, derived from the "
    "order's bytes, with executeOrder(stagedId, assertion)."
)
class StepUpRequired:
    reason: str
    detail: str
    challenge_id: str
    options_json: str = strawberry.field(description="PublicKeyCredentialRequestOptions as JSON text.")
    expires_at: datetime
    order_hash: str
    order_hash_prefix: str


@strawberry.type(description="Refused by the risk gate (risk.*) or the sizer (sizing.*); ledgered.")
class RiskRejected:
    command_id: str
    reason: str
    detail: str


@strawberry.type(description="The circuit breaker halted the floor; the order was refused and ledgered.")
class BreakerHalted:
    command_id: str
    reason: str
    detail: str


@strawberry.type(description="Refused before anything was sent, or for a reason no other result names.")
class Invalid:
    reason: str
    detail: str
    field: str | None


@strawberry.type(description="The staged order was discarded: it can no longer be executed.")
class Discarded:
    staged_id: str


@strawberry.type(description="The cancel was sent (signed, through the door); follow orderEvents.")
class CancelSent:
    command_id: str
    target: str | None
    accounts: list[str] = strawberry.field(
        default_factory=list, description="A cancel-all's accounts, one command each (commandIds)."
    )
    command_ids: list[str] = strawberry.field(default_factory=list)


@strawberry.type(description="The breaker command was sent; follow breakerState.")
class BreakerCommandSent:
    command_id: str
    kind: str


@strawberry.type(description="The signed command passed the door and was published to agent.commands.")
class CommandPublished:
    command_id: str
    partition: int
    offset: Long


@strawberry.type(
    description="The door refused the signed command; `status` is what POST /v1/commands answers."
)
class CommandRefused:
    reason: str
    detail: str
    field: str | None
    status: int


StageOrderResult = Annotated[Staged | Invalid, strawberry.union("StageOrderResult")]
ExecuteOrderResult = Annotated[
    Executed | NotArmed | GrantExceeded | StepUpRequired | RiskRejected | BreakerHalted | Invalid,
    strawberry.union("ExecuteOrderResult"),
]
DiscardStagedResult = Annotated[Discarded | Invalid, strawberry.union("DiscardStagedResult")]
CancelResult = Annotated[CancelSent | Invalid, strawberry.union("CancelResult")]
TripBreakerResult = Annotated[BreakerCommandSent | Invalid, strawberry.union("TripBreakerResult")]
RearmBreakerResult = Annotated[
    BreakerCommandSent | NotArmed | Invalid, strawberry.union("RearmBreakerResult")
]
SubmitCommandResult = Annotated[CommandPublished | CommandRefused, strawberry.union("SubmitCommandResult")]


@strawberry.type
class TradingMutations:
    @strawberry.mutation(description="Check a ticket and stage it for Execute (a trader's session).")
    async def stage_order(self, info: Info, ticket: OrderTicketInput) -> StageOrderResult:
        outcome = await _desk(info).stage(info.context.caller(), ticket_of(ticket))
        if isinstance(outcome, results.Invalid):
            return _invalid(outcome)
        return Staged.of(outcome.staged_id, outcome.terms, outcome.order_hash, outcome.created_at)

    @strawberry.mutation(
        description="Execute a staged order: needs a live arming grant; beyond it, a step-up assertion."
    )
    async def execute_order(
        self, info: Info, staged_id: str, assertion: StepUpAssertionInput | None = None
    ) -> ExecuteOrderResult:
        answer = (
            None if assertion is None else results.StepUpAnswer(assertion.challenge_id, assertion.credential)
        )
        outcome = await _desk(info).execute(
            info.context.caller(), staged_id, answer, client_address=info.context.client_address
        )
        return execute_result(outcome)

    @strawberry.mutation(description="Discard one of your session's staged orders (nothing was sent).")
    async def discard_staged(self, info: Info, staged_id: str) -> DiscardStagedResult:
        outcome = await _desk(info).discard(info.context.caller(), staged_id)
        if isinstance(outcome, results.Invalid):
            return _invalid(outcome)
        return Discarded(staged_id=outcome.staged_id)

    @strawberry.mutation(description="Cancel one of your orders (no arming needed: it reduces risk).")
    async def cancel_order(self, info: Info, command_id: str) -> CancelResult:
        outcome = await _desk(info).cancel(
            info.context.caller(), command_id, client_address=info.context.client_address
        )
        return _cancel(outcome)

    @strawberry.mutation(
        description="Cancel every open order of an account (null: of every account you trade), or of"
        " one symbol in it."
    )
    async def cancel_all_orders(
        self, info: Info, account: str | None = None, symbol: str | None = None
    ) -> CancelResult:
        outcome = await _desk(info).cancel_all(
            info.context.caller(), account, symbol, client_address=info.context.client_address
        )
        return _cancel(outcome)

    @strawberry.mutation(description="Halt the floor: cancel every open order and refuse new ones.")
    async def trip_breaker(self, info: Info) -> TripBreakerResult:
        outcome = await _desk(info).trip_breaker(
            info.context.caller(), client_address=info.context.client_address
        )
        if isinstance(outcome, results.Invalid):
            return _invalid(outcome)
        return BreakerCommandSent(command_id=outcome.command_id, kind=outcome.kind)

    @strawberry.mutation(description="Re-arm the floor after a trip (needs a live arming grant).")
    async def rearm_breaker(self, info: Info) -> RearmBreakerResult:
        outcome = await _desk(info).rearm_breaker(
            info.context.caller(), client_address=info.context.client_address
        )
        if isinstance(outcome, results.Invalid):
            return _invalid(outcome)
        if isinstance(outcome, results.NotArmed):
            return NotArmed(reason=outcome.reason, detail=outcome.detail)
        return BreakerCommandSent(command_id=outcome.command_id, kind=outcome.kind)

    @strawberry.mutation(
        description="A signed command, exactly the body of POST /v1/commands (JSON text), with its answers."
    )
    async def submit_command(self, info: Info, envelope: str) -> SubmitCommandResult:
        info.context.caller()
        door = info.context.services.door
        outcome = await door.submit(envelope.encode(), info.context.client_address)
        if isinstance(outcome, Published):
            return CommandPublished(
                command_id=outcome.command_id, partition=outcome.partition, offset=Long(outcome.offset)
            )
        return CommandRefused(
            reason=outcome.error, detail=outcome.detail, field=outcome.field, status=outcome.status
        )


def execute_result(outcome: results.ExecuteResult) -> ExecuteOrderResult:
    match outcome:
        case results.Executed():
            return Executed(
                staged_id=outcome.staged_id,
                command_id=outcome.command_id,
                state=outcome.state,
                ceremony=outcome.ceremony,
            )
        case results.NotArmed():
            return NotArmed(reason=outcome.reason, detail=outcome.detail)
        case results.GrantExceeded():
            return GrantExceeded(reason=outcome.reason, detail=outcome.detail)
        case results.StepUpRequired():
            return StepUpRequired(
                reason=outcome.reason,
                detail=outcome.detail,
                challenge_id=outcome.challenge_id,
                options_json=outcome.options_json,
                expires_at=outcome.expires_at,
                order_hash=outcome.order_hash,
                order_hash_prefix=outcome.order_hash_prefix,
            )
        case results.RiskRejected():
            return RiskRejected(command_id=outcome.command_id, reason=outcome.reason, detail=outcome.detail)
        case results.BreakerHalted():
            return BreakerHalted(command_id=outcome.command_id, reason=outcome.reason, detail=outcome.detail)
        case results.Invalid():
            return _invalid(outcome)


def _desk(info: Info) -> Desk:
    desk = info.context.services.desk
    if desk is None:
        raise Refused(UNAVAILABLE, "this API process serves no trading desk")
    return desk


def ticket_of(ticket: OrderTicketInput) -> Ticket:
    def text(value: Decimal | None) -> str | None:
        return None if value is None else format(value, "f")

    side: SideEnum = ticket.side
    order_type: OrderTypeEnum = ticket.order_type
    tif: TimeInForceEnum = ticket.tif
    return Ticket(
        account=ticket.account,
        symbol=ticket.symbol,
        side=side.value,
        order_type=order_type.value,
        quantity=ticket.quantity,
        tif=tif.value,
        limit_price=text(ticket.limit_price),
        stop_price=text(ticket.stop_price),
        stop_loss=text(ticket.stop_loss),
    )


def _invalid(outcome: results.Invalid) -> Invalid:
    return Invalid(reason=outcome.reason, detail=outcome.detail, field=outcome.field)


def _cancel(outcome: results.CancelSent | results.Invalid) -> CancelSent | Invalid:
    if isinstance(outcome, results.Invalid):
        return _invalid(outcome)
    return CancelSent(
        command_id=outcome.command_id,
        target=outcome.target,
        accounts=list(outcome.accounts),
        command_ids=list(outcome.command_ids) or [outcome.command_id],
    )
