"""The trader's desk: stage an order, execute it behind the WebAuthn interlock, cancel, trip
and re-arm the breaker.

Every command the desk sends is signed with the trader's own key (agent ``trader.<name>``,
:mod:`api.trader_keys`) only after the WebAuthn checks passed, carries the assertion that
authorised it (:class:`trading.authorization.Authorization`) and goes through the same door as a
REST command (:class:`api.door.Door`: sentry, replay, symbols). The hot path then sizes,
risk-checks and ledgers it like any other; the desk never talks to the broker.

Execute, in order (each step a named result, never an exception):

1. The staged order is this trader's, staged in this session and not executed yet.
2. The arming grant is read from Postgres now (:meth:`Ceremonies.current_grant`, never cached):
   none or expired is ``NotArmed``.
3. The grant's limits (:mod:`trading.arming_limits`): an instrument outside it is
   ``GrantExceeded``; a larger order, or any order of a trader who asked to confirm every one,
   needs a step-up: without an answer, ``StepUpRequired`` with a challenge derived from the
   order's bytes (:mod:`trading.step_up`); with one, the assertion must verify for this very
   order's hash.
4. The staged order is claimed (once, :mod:`api.staged_orders`), the command signed and
   published; the answer is the hot path's ``accepted`` / ``rejected`` record for it, or
   ``Executed`` with state ``PENDING`` when it does not come within the timeout, or when
   Kafka did not acknowledge the record (the client follows ``orderEvents``). A staged order is
   freed again only when the door refused the command before producing it.

Cancels, cancel-all and the breaker's trip take risk off, so they wait for no arming: they carry
the assertion that signed the trader in (:meth:`Ceremonies.session_proof`, ceremony
``session``), the ceremony that actually let them through, and the hot path accepts that
evidence for these kinds only (:data:`trading.sentry.SIGN_IN_KINDS`). Re-arming the breaker lets
risk back in: it needs a live grant and carries its arming assertion.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Protocol

from api.desk_results import (
    ACCOUNT_NOT_ALLOWED,
    ALREADY_EXECUTED,
    NO_SESSION,
    NO_TRADER_KEY,
    NOT_ARMED,
    NOT_STAGED,
    PENDING,
    STAGED_ALTERED,
    STAGED_DISCARDED,
    STAGED_ELSEWHERE,
    STAGED_EXPIRED,
    STEP_UP_EVERY_ORDER,
    TICKET_INVALID,
    UNKNOWN_ORDER,
    BreakerCommandSent,
    CancelSent,
    Discarded,
    Executed,
    ExecuteResult,
    GrantExceeded,
    Invalid,
    NotArmed,
    Staged,
    StepUpAnswer,
    StepUpRequired,
    outcome_result,
)
from api.door import BUS_UNAVAILABLE, Door, Rejected
from api.principals import ANY_ACCOUNT, Principal
from api.staged_orders import StagedOrder, claim, discard, insert_staged, load_staged, release
from api.trader_keys import TraderKeys
from api.webauthn_ceremonies import Ceremonies
from api.webauthn_results import AssertionProof, Refusal
from config.settings import FloorSettings
from ledger.command_entries import command_entry
from ledger.db import Db
from ledger.traders import get_trader
from trading import sentry
from trading.arming_limits import GrantFit, TopOfBook, check_grant, fresh_touch, worst_notional_price
from trading.authorization import Authorization, Ceremony, trader_agent_id
from trading.commands import FLOOR_WIDE, Command, CommandInvalid, CommandKind, Side, utc_now_ms
from trading.order_events import OrderEvent
from trading.order_ticket import Ticket, TicketInvalid, parse_ticket
from trading.signing import sign_command
from trading.step_up import hash_prefix, order_bytes, order_hash, step_up_challenge
from trading.symbols import parse_symbols

OUTCOME_TIMEOUT_S = 5.0
"""How long Execute waits for the hot path's decision before answering ``PENDING``."""
STEP_UP_NONCE_BYTES = 32


class OutcomeSource(Protocol):
    """The hot path's ``accepted`` / ``rejected`` record of one command (the hub)."""

    def expect_outcome(self, command_id: str) -> asyncio.Future[OrderEvent]: ...

    def forget_outcome(self, command_id: str) -> None: ...


class BookSource(Protocol):
    """The current L2 book of a symbol (the hub), for the worst price of an order its limit does
    not bound."""

    def book(self, symbol: str, depth: int) -> TopOfBook | None: ...


class Desk:
    def __init__(
        self,
        db: Db,
        ceremonies: Ceremonies,
        door: Door,
        outcomes: OutcomeSource,
        settings: FloorSettings,
        *,
        books: BookSource | None = None,
        outcome_timeout_s: float = OUTCOME_TIMEOUT_S,
        trader_keys_dir: Path | None = None,
    ) -> None:
        self._db = db
        self._ceremonies = ceremonies
        self._door = door
        self._outcomes = outcomes
        self._books = books
        self._timeout = outcome_timeout_s
        self._keys = TraderKeys(trader_keys_dir or settings.trader_keys_dir)
        self._symbols = parse_symbols(settings.hotpath_symbols)
        self._book_max_age = timedelta(milliseconds=settings.desk_book_max_age_ms)
        self._collar_bps = settings.market_collar_bps
        """The collar of a market or stop order's protective limit, as the hot path sends it."""
        self._staged_ttl_s = settings.staged_ttl_s

    # --- staging -----------------------------------------------------------------------------

    async def stage(self, principal: Principal, ticket: Ticket) -> Staged | Invalid:
        if (refused := _no_session(principal)) is not None:
            return refused
        assert principal.session_id is not None
        terms = parse_ticket(ticket, symbols=self._symbols, may_trade=principal.sees)
        if isinstance(terms, TicketInvalid):
            return Invalid(TICKET_INVALID, terms.reason, terms.field)
        staged = await insert_staged(
            self._db, principal.name, principal.session_id, terms, order_hash(order_bytes(terms))
        )
        return Staged(staged.staged_id, staged.terms, staged.order_hash, staged.created_at)

    async def discard(self, principal: Principal, staged_id: str) -> Discarded | Invalid:
        """The session's own staged order will never be executed (nor listed) again."""
        if (refused := _no_session(principal)) is not None:
            return refused
        assert principal.session_id is not None
        if await discard(self._db, staged_id, principal.name, principal.session_id):
            return Discarded(staged_id)
        staged = await load_staged(self._db, staged_id, self._staged_ttl_s)
        refused = _not_executable(principal, staged_id, staged)
        assert refused is not None  # neither discardable nor the session's executed one
        return refused

    # --- execution ---------------------------------------------------------------------------

    async def execute(
        self,
        principal: Principal,
        staged_id: str,
        step_up: StepUpAnswer | None = None,
        *,
        client_address: str | None = None,
    ) -> ExecuteResult:
        if (refused := _no_session(principal)) is not None:
            return refused
        staged = await load_staged(self._db, staged_id, self._staged_ttl_s)
        if (refused := _not_executable(principal, staged_id, staged)) is not None:
            return refused
        assert staged is not None and principal.session_id is not None
        terms = staged.terms
        order = order_bytes(terms)
        digest = order_hash(order)
        if digest != staged.order_hash:
            return Invalid(
                STAGED_ALTERED, "the staged order's terms no longer match their hash: stage it again"
            )
        if not principal.sees(terms.account):
            return Invalid(ACCOUNT_NOT_ALLOWED, f"you are no longer allowed on account {terms.account}")

        grant = await self._ceremonies.current_grant(principal)
        if grant is None:
            return NotArmed(NOT_ARMED, "arm first: Execute needs an arming grant, and this session has none")
        limits = grant.limits
        verdict = check_grant(
            terms,
            symbols=limits.symbols,
            max_quantity=limits.max_quantity,
            max_notional=limits.max_notional,
            notional_price=worst_notional_price(
                terms, self._touch(terms.symbol, terms.side), self._collar_bps
            ),
        )
        if verdict.fit is GrantFit.FORBIDDEN:
            assert verdict.reason is not None
            return GrantExceeded(verdict.reason, verdict.detail)
        needs_step_up: tuple[str, str] | None = None
        if verdict.fit is GrantFit.STEP_UP:
            assert verdict.reason is not None
            needs_step_up = (verdict.reason, verdict.detail)
        elif await self._confirms_every_order(principal.name):
            needs_step_up = (STEP_UP_EVERY_ORDER, "you asked to confirm every order with your authenticator")

        proof: AssertionProof = grant.proof
        ceremony = Ceremony.ARMING
        if step_up is not None:
            # An answer is always checked, needed or not: it must be for this very order.
            answer = await self._ceremonies.finish_step_up(
                principal, step_up.challenge_id, step_up.credential_json, digest
            )
            if isinstance(answer, Refusal):
                return Invalid(answer.reason, answer.detail)
            proof, ceremony = answer, Ceremony.STEP_UP
        elif needs_step_up is not None:
            nonce = secrets.token_bytes(STEP_UP_NONCE_BYTES)
            challenge = await self._ceremonies.begin_step_up(
                principal, step_up_challenge(nonce, order, principal.session_id), digest
            )
            reason, detail = needs_step_up
            return StepUpRequired(
                reason,
                detail,
                challenge.challenge_id,
                challenge.options_json,
                challenge.expires_at,
                digest,
                hash_prefix(digest),
            )

        key = await self._keys.load(principal.name)
        if key is None:
            return _no_key(principal)
        command_id = new_command_id()
        if not await claim(self._db, staged_id, command_id, self._staged_ttl_s):
            # Executed, discarded or expired since it was loaded: say which.
            now = await load_staged(self._db, staged_id, self._staged_ttl_s)
            return _not_executable(principal, staged_id, now) or Invalid(
                ALREADY_EXECUTED, "this staged order was executed already"
            )
        authorization = _authorization(proof, ceremony, digest if ceremony is Ceremony.STEP_UP else None)
        try:
            command = Command(
                kind=CommandKind.ENTER,
                command_id=command_id,
                agent_id=trader_agent_id(principal.name),
                account=terms.account,
                nonce=new_nonce(),
                issued_at=utc_now_ms(),
                symbol=terms.symbol,
                side=terms.side,
                order_type=terms.order_type,
                limit_price=terms.limit_price,
                stop_price=terms.stop_price,
                tif=terms.tif,
                quantity=terms.quantity,
                stop_loss=terms.stop_loss,
                authorization=authorization,
            )
        except CommandInvalid as exc:
            await release(self._db, staged_id, command_id)
            return Invalid(TICKET_INVALID, exc.reason, exc.field)
        envelope = sign_command(command, key)
        outcome = self._outcomes.expect_outcome(command_id)
        try:
            # Once the signed command is handed to the door, only a refusal the door gave before
            # producing frees the staged order. An exception, a cancellation (the client went
            # away mid-request) or Kafka not acknowledging leaves it unknown whether the record
            # reached the broker: the staged order stays claimed by this command id, so a second
            # Execute cannot make it a second order, and the trader follows it on orderEvents.
            published = await self._door.submit(envelope.to_wire(), client_address)
            if isinstance(published, Rejected):
                if published.error == BUS_UNAVAILABLE:
                    return Executed(staged_id, command_id, PENDING, ceremony.value)
                # Refused before producing: nothing was published, it may be executed again.
                await release(self._db, staged_id, command_id)
                return self._refused(principal, published)
            try:
                event = await asyncio.wait_for(asyncio.shield(outcome), self._timeout)
            except TimeoutError:
                return Executed(staged_id, command_id, PENDING, ceremony.value)
            return outcome_result(event, staged_id, ceremony.value)
        finally:
            self._outcomes.forget_outcome(command_id)

    # --- risk-reducing commands: the sign-in's assertion, no grant ---------------------------

    async def cancel(
        self, principal: Principal, command_id: str, *, client_address: str | None = None
    ) -> CancelSent | Invalid:
        if (refused := _no_session(principal)) is not None:
            return refused
        entry = await command_entry(self._db, command_id)
        if entry is None or entry.account is None or not principal.sees(entry.account):
            # One answer for "no such order" and "not yours": a trader learns nothing of others'.
            return Invalid(UNKNOWN_ORDER, f"no order {command_id} on an account you trade", "command_id")
        sent = await self._send(
            principal, CommandKind.CANCEL, entry.account, client_address, target_command_id=command_id
        )
        return sent if isinstance(sent, Invalid) else CancelSent(sent, command_id)

    async def cancel_all(
        self,
        principal: Principal,
        account: str | None,
        symbol: str | None = None,
        *,
        client_address: str | None = None,
    ) -> CancelSent | Invalid:
        """Cancel every open order of ``account`` (or of one symbol in it); ``account`` None:
        of every account the trader trades, one command each, so the control does what its name
        says whatever the HUD has loaded."""
        if (refused := _no_session(principal)) is not None:
            return refused
        if account == FLOOR_WIDE or (account is None and ANY_ACCOUNT in principal.accounts):
            # A cancel-all names accounts; the floor-wide cancel is the breaker's trip.
            return Invalid(
                TICKET_INVALID,
                "name one account to cancel its orders; to cancel every account's, trip the breaker",
                "account",
            )
        if account is not None and not principal.sees(account):
            return Invalid(ACCOUNT_NOT_ALLOWED, f"you are not allowed on account {account}", "account")
        if symbol is not None and symbol not in self._symbols:
            return Invalid(
                TICKET_INVALID, f"the floor trades {', '.join(self._symbols)}; not {symbol!r}", "symbol"
            )
        accounts = (account,) if account is not None else tuple(sorted(principal.accounts))
        if not accounts:
            return Invalid(ACCOUNT_NOT_ALLOWED, "you trade no account", "account")
        sent: list[str] = []
        for each in accounts:
            outcome = await self._send(principal, CommandKind.CANCEL_ALL, each, client_address, symbol=symbol)
            if isinstance(outcome, Invalid):
                done = f"sent for {', '.join(accounts[: len(sent)])}; " if sent else ""
                return Invalid(outcome.reason, f"{done}not for {each}: {outcome.detail}", outcome.field)
            sent.append(outcome)
        return CancelSent(sent[0], None, accounts, tuple(sent))

    async def trip_breaker(
        self, principal: Principal, *, client_address: str | None = None
    ) -> BreakerCommandSent | Invalid:
        """Any trader in a session may halt the floor: a kill switch must not wait for arming."""
        if (refused := _no_session(principal)) is not None:
            return refused
        sent = await self._send(principal, CommandKind.BREAKER_TRIP, FLOOR_WIDE, client_address)
        return sent if isinstance(sent, Invalid) else BreakerCommandSent(sent, CommandKind.BREAKER_TRIP.value)

    async def rearm_breaker(
        self, principal: Principal, *, client_address: str | None = None
    ) -> BreakerCommandSent | NotArmed | Invalid:
        """Only an armed trader re-arms the floor: it lets every order through again."""
        if (refused := _no_session(principal)) is not None:
            return refused
        grant = await self._ceremonies.current_grant(principal)
        if grant is None:
            return NotArmed(NOT_ARMED, "arm first: re-arming the breaker needs an arming grant")
        sent = await self._send(
            principal,
            CommandKind.BREAKER_ARM,
            FLOOR_WIDE,
            client_address,
            _authorization(grant.proof, Ceremony.ARMING, None),
        )
        return sent if isinstance(sent, Invalid) else BreakerCommandSent(sent, CommandKind.BREAKER_ARM.value)

    # --- helpers -----------------------------------------------------------------------------

    async def _send(
        self,
        principal: Principal,
        kind: CommandKind,
        account: str,
        client_address: str | None,
        authorization: Authorization | None = None,
        *,
        target_command_id: str | None = None,
        symbol: str | None = None,
    ) -> str | Invalid:
        """Sign ``kind`` as the trader, authorised by ``authorization`` (else the session's
        sign-in assertion), and publish it; the command id, or why not."""
        if authorization is None:
            proof = await self._ceremonies.session_proof(principal)
            if proof is None:
                return Invalid(
                    NO_SESSION,
                    "your session has ended (signed out or expired) or predates the floor keeping its"
                    " sign-in: sign in again",
                )
            authorization = _authorization(proof, Ceremony.SESSION, None)
        key = await self._keys.load(principal.name)
        if key is None:
            return _no_key(principal)
        try:
            command = Command(
                kind=kind,
                command_id=new_command_id(),
                agent_id=trader_agent_id(principal.name),
                account=account,
                nonce=new_nonce(),
                issued_at=utc_now_ms(),
                symbol=symbol,
                target_command_id=target_command_id,
                authorization=authorization,
            )
        except CommandInvalid as exc:
            return Invalid(TICKET_INVALID, exc.reason, exc.field)
        published = await self._door.submit(sign_command(command, key).to_wire(), client_address)
        if isinstance(published, Rejected):
            return self._refused(principal, published)
        return command.command_id

    def _refused(self, principal: Principal, rejected: Rejected) -> Invalid:
        """The door's refusal as the desk's; a key the floor does not know (any more) is read
        again from disk next time: the operator may have replaced it."""
        if rejected.error in _KEY_REFUSALS:
            self._keys.forget(principal.name)
        return Invalid(rejected.error, rejected.detail, rejected.field)

    async def _confirms_every_order(self, trader: str) -> bool:
        """The trader's own setting, read now: a principal kept by a WebSocket may be older."""
        record = await get_trader(self._db, trader)
        return record is None or record.step_up_every_order

    def _touch(self, symbol: str, side: Side) -> Decimal | None:
        """The far side of the current book, if it is fresh (:func:`fresh_touch`)."""
        book = None if self._books is None else self._books.book(symbol, 1)
        return fresh_touch(book, side, datetime.now(UTC), self._book_max_age)


_KEY_REFUSALS = frozenset({sentry.UNKNOWN_KEY, sentry.REVOKED_KEY})


def new_command_id() -> str:
    return f"desk-{uuid.uuid4().hex}"


def new_nonce() -> str:
    return uuid.uuid4().hex


def _authorization(proof: AssertionProof, ceremony: Ceremony, digest: str | None) -> Authorization:
    return Authorization(
        trader=proof.trader,
        credential_id=proof.credential_id,
        sign_count=proof.sign_count,
        authenticator_data_sha256=proof.authenticator_data_sha256,
        client_data_sha256=proof.client_data_sha256,
        ceremony=ceremony,
        order_hash=digest,
    )


def _no_session(principal: Principal) -> Invalid | None:
    if principal.trader_session is None:
        return Invalid(
            NO_SESSION,
            "the desk is for traders signed in with a passkey; programs send signed commands (submitCommand)",
        )
    return None


def _not_executable(principal: Principal, staged_id: str, staged: StagedOrder | None) -> Invalid | None:
    if staged is None or staged.trader != principal.name:
        return Invalid(NOT_STAGED, f"you have no staged order {staged_id}: stage it first", "staged_id")
    if staged.session_id != principal.session_id:
        return Invalid(STAGED_ELSEWHERE, "this order was staged in another session: stage it again here")
    if staged.command_id is not None:
        return Invalid(ALREADY_EXECUTED, f"this staged order was executed already, as {staged.command_id}")
    if staged.discarded_at is not None:
        return Invalid(STAGED_DISCARDED, "this staged order was discarded: stage it again", "staged_id")
    if staged.expired:
        return Invalid(
            STAGED_EXPIRED,
            "this order was staged too long ago for the market it priced: stage it again",
            "staged_id",
        )
    return None


def _no_key(principal: Principal) -> Invalid:
    return Invalid(
        NO_TRADER_KEY,
        f"no signing key for trader {principal.name}: the operator makes one with `floor traders add`",
    )
