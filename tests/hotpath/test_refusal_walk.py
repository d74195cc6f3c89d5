"""A refusal names its real cause: every reason the floor can give is drawn here by the input
its name describes, and only by that.

Each case starts from one order the in-process intake accepts (:func:`baseline`) and changes
the one thing the reason names: a symbol the floor does not trade is ``unknown_symbol``, never
``risk.stale_price``. The reasons are read from the code (:func:`floor_reasons`), so a reason
added later without a case here fails :func:`test_every_reason_the_floor_can_give_has_a_case`:
add a case to :data:`CASES` (a function from a :class:`Walk` to the reason it drew).

Intake runs in this process over the real ledger (:mod:`tests.hotpath.in_process`); the few
reasons no valid command can reach through intake (the sizer's guard, a loss the sizer itself
already caps) are drawn from the pure function that gives them.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import pkgutil
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any, cast

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from brokers.base import BrokerOrder, OrderInvalid, Placement
from brokers.ib_convert import validate
from bus.topics import ALL_TOPICS, ORDERS_EVENTS
from floor.breaker_cmd import breaker_command
from hotpath.account import LastPrice
from hotpath.cancel_commands import ORDER_ENDED, UNKNOWN_ORDER
from hotpath.exit_manager import ExitManager
from hotpath.floor_orders import FloorOrder
from hotpath.intake import Intake
from hotpath.intake_steps import NO_PRICE, NO_PROFILE, UNSUPPORTED_KIND
from hotpath.ledger_store import LedgerStore
from hotpath.order_commands import BROKER_INVALID, SIZING_INVALID, TRAIL_STOP_NOT_POSITIVE
from hotpath.protective_stops import STOP_NOT_WITHDRAWN
from hotpath.recovery import NOT_LEDGERED, NOT_VERIFIED, SESSION_CLOSED, restore_orders
from hotpath.refusals import DUPLICATE_DELIVERY, INTERNAL_ERROR, MALFORMED
from hotpath.startup import settle_parked
from ledger.append import Decision, append_command
from ledger.keys import register_key, revoke_agent
from ledger.order_events import order_state, record_order_event
from tests.factories import (
    Agent,
    authorization,
    enter_command,
    exit_command,
    manual_enter_command,
    new_agent,
    new_trader,
)
from tests.fixtures.hotpath import register
from tests.hotpath.conftest import MAIN_PROFILE, VENUE_ACCOUNT
from tests.hotpath.in_process import ProtectedLong, in_process_intake
from trading import demo_rules, paper_loop_audit, sentry
from trading import iceberg_parents as parents
from trading import record_signing as records
from trading.circuit_breaker import CrashSignal
from trading.commands import (
    Command,
    CommandInvalid,
    CommandKind,
    Edge,
    OrderType,
    Side,
    TimeInForce,
    utc_now_ms,
)
from trading.order_events import EventKind, OrderEvent
from trading.risk import AccountSnapshot, ProposedOrder, Refusal, TradingState, check_order
from trading.sentry import ReplayGuard
from trading.signing import SignedCommand, generate_private_key, key_id, public_key_bytes
from trading.sizing import NO_BANKROLL, NO_EDGE, NO_SHARE, size_order
from trading.symbols import UNKNOWN_SYMBOL

BID, ASK = Decimal("189.40"), Decimal("189.50")
"""The AAPL quote the in-process intake starts with."""

# --- the reasons, read from the code ------------------------------------------------------

REASON_PACKAGES = ("trading", "hotpath")
_REASON_LIKE = re.compile(r"[a-z][a-z_]*(\.[a-z_]+)*")
AUDIT_RULES = {
    value
    for name, value in vars(paper_loop_audit).items()
    if name.isupper() and isinstance(value, str) and value.startswith("audit.")
}
"""The paper-loop audit's rules: findings about a trade after the fact (trading.paper_loop_audit)."""

NOT_REASONS: dict[str, str] = {
    **{rule: "the paper-loop audit's finding about a trade, never intake's" for rule in AUDIT_RULES},
    **{rule: "a demo brain rule's name (trading.demo_rules)" for rule in demo_rules.RULES},
    "open": "a paper-loop trade's outcome (trading.paper_loop_audit)",
    "closed": "a paper-loop trade's outcome (trading.paper_loop_audit)",
    "partly_closed": "a paper-loop trade's outcome (trading.paper_loop_audit)",
    "unfilled": "a paper-loop trade's outcome (trading.paper_loop_audit)",
    **{topic: "a Kafka topic" for topic in ALL_TOPICS},
    "kelly": "sizing: which limit bound the quantity, not a refusal",
    "max_trade_size": "sizing: which limit bound the quantity, not a refusal",
    "max_dollar_risk": "sizing: which limit bound the quantity, not a refusal",
    "requested_quantity": "sizing: which limit bound the quantity, not a refusal",
    "iceberg_parent": "the role of an accepted iceberg in its ledger detail",
    "protective_limit": "the key of an entry's protective limit in its ledger detail",
    "recovery.ended_but_working": "an ops event kind (the broker works an order its records ended)",
    "recovery.cancel_replayed": "an ops event kind (accepted cancels sent to the broker again at start-up)",
    "floor_registry": "the Postgres channel key and profile changes are announced on",
    "hotpath.intake": "the name of a command's span in the hot path (hotpath.order_spans)",
    "agent": "a key's role in the registry",
    "operator": "a key's role in the registry",
    "breaker_tripped": "the ledger entry kind of an automatic trip",
    "service": "a key's role in the registry",
    "trader": "a key's role in the registry",
    "bids": "a side of an L2 book (trading.depth_book)",
    "asks": "a side of an L2 book (trading.depth_book)",
    "grant.symbol_not_armed": "the API's answer to an order beyond a trader's arming grant, never intake's",
    "grant.max_quantity": "the API's answer to an order beyond a trader's arming grant, never intake's",
    "grant.max_notional": "the API's answer to an order beyond a trader's arming grant, never intake's",
    "grant.notional_unknown": "the API's answer to an order beyond a trader's arming grant, never intake's",
    "revoked": "why a revoked key's iceberg was stopped, in the stop's ledger detail",
    "proof": "the key of a signed record's signature",
    "breaker.unverified_entry": "a security event at start-up about a breaker entry, not a refusal",
    "breaker.tripped": "an ops event kind: what a trip's cancels did (hotpath.circuit_breaker_sweep)",
    "breaker.cancel_failed": "an ops event kind: an order a trip left open (hotpath.circuit_breaker_sweep)",
    "sniper": "the agent id `floor up` provisions for the Sniper",
    "ledger.unverified_entry": "a security event at start-up about an order entry, not a refusal",
    "reconcile.missed_fill": "the reason on the record of a fill found by reconciling, not a refusal",
    "reconcile.unknown_at_broker": "why reconciliation ended an order the broker no longer has",
    "cancel.unknown_at_broker": "why a cancel ended an order the broker has no order for (it was accepted)",
    "recovery.unverified_at_broker": "ops event: a parked order cancelled at restart",
    "order_events.write": "the ops events' area of order-state rows retried (hotpath.broker_events)",
    "order_events.publish": "the ops events' area of orders.events records retried (hotpath.publish)",
    "broker_sessions.publish": "ops events' area: broker.sessions records retried",
    "kafka_only": "a queued record bound for orders.events only (hotpath.broker_events)",
    "flash_crash": "what a breaker trip was, as the API shows it (trading.breaker_trip)",
    "manual": "what a breaker trip was, as the API shows it (trading.breaker_trip)",
    "unverified_entry": "what a breaker trip was, as the API shows it (trading.breaker_trip)",
    "sizing.stop_required": "why the API's sizing suggestion for a ticket is 0, never intake's",
    "sizing.stale_bankroll": "why the API's sizing suggestion for a ticket is 0, never intake's",
    **{
        kind: "an ops event of the exit manager's stop levels (hotpath.trailing_restore, stop_level_writer)"
        for kind in (
            "exits.reattached",
            "exits.not_reattached",
            "exits.level_ignored",
            "exits.level_write_failed",
            "exits.level_write_resumed",
        )
    },
    **{
        kind: "an ops event of the exit manager's protective stops (hotpath.protective_stops, stop_guard)"
        for kind in (
            "exits.stop_lost",
            "exits.stop_replaced",
            "exits.protected",
            "exits.stop_withdrawn",
            "exits.unprotected",
        )
    },
    **{
        kind: "an ops event of group mode's partition handover (hotpath.group_handover)"
        for kind in ("hotpath.accounts_released", "hotpath.accounts_taken", "hotpath.handover_failed")
    },
    "breaker.followed": "an ops event kind: a group member took the breaker's state from another's entry",
    "recovery.deferred_to_owner": "an ops event kind: a group member left an unsent order to its owner",
}
"""Upper-case string constants in those packages that look like a reason and are not one."""


def floor_reasons() -> set[str]:
    """Every refusal reason the floor's code names: the sentry's :data:`~trading.sentry.REASONS`,
    the risk gate's :class:`~trading.risk.Refusal`, and each upper-case string constant shaped
    like a reason in the modules of :data:`REASON_PACKAGES` (sizing, intake, refusals,
    recovery, symbols, ...) that :data:`NOT_REASONS` does not set aside."""
    reasons = set(sentry.REASONS) | {refusal.value for refusal in Refusal}
    for package_name in REASON_PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{package_name}.{info.name}")
            for name, value in vars(module).items():
                if name.isupper() and isinstance(value, str) and _REASON_LIKE.fullmatch(value):
                    reasons.add(value)
    return reasons - set(NOT_REASONS)


# --- the harness --------------------------------------------------------------------------


@dataclass
class TakesOrders:
    """The broker side of the walk: validates each order as the IB adapter does and takes it,
    and reports the account's net liquidation."""

    bankroll: Decimal = Decimal("1000000")
    refuses_as_invalid: bool = False
    placed: list[BrokerOrder] = field(default_factory=list)

    async def net_liquidation(self, account: str) -> Decimal:
        return self.bankroll

    def place(self, order: BrokerOrder) -> Placement:
        validate(order)
        if self.refuses_as_invalid:
            raise OrderInvalid("order", "refused by the broker")
        self.placed.append(order)
        return Placement(
            order.order_ref, sent=True, write_ns=time.perf_counter_ns(), order_id=len(self.placed)
        )

    def cancel(self, order_ref: str) -> None:
        pass


@dataclass
class Walk:
    pool: asyncpg.Pool
    agent: Agent
    intake: Intake
    broker: TakesOrders
    emitted: list[OrderEvent]
    sniper: Agent
    """The floor's Sniper: the one key intake takes slices from."""
    trader: Agent
    """A trader's own key (role ``trader``) on the paper account: the one kind of key whose
    manual orders (an enter without an edge) intake takes."""

    async def send(self, command: Command) -> str | None:
        """``command`` signed by the walk's trader when it names the trader, else by its agent."""
        signer = self.trader if command.agent_id == self.trader.agent_id else self.agent
        return await self.send_envelope(signer.sign(command))

    async def send_slice(self, parent_id: str, **changes: object) -> str | None:
        """The baseline order as a slice of ``parent_id``, signed by the Sniper."""
        return await self.send_envelope(
            self.sniper.sign(baseline(self.sniper.agent_id, parent_id=parent_id, **changes))
        )

    async def send_envelope(self, envelope: SignedCommand) -> str | None:
        return await self.send_raw(envelope.to_wire())

    async def send_raw(self, value: bytes) -> str | None:
        return (await self.intake.handle(value, source="walk")).reason


def baseline(agent_id: str, **changes: object) -> Command:
    """The order every case starts from: a small BUY LMT at the ask, its stop below, on the
    paper account (profile: tests.hotpath.conftest.MAIN_PROFILE). Intake accepts it."""
    fields: dict[str, object] = {"account": VENUE_ACCOUNT, "limit": ASK, "stop": Decimal(185), "quantity": 5}
    return enter_command(agent_id, **(fields | changes))  # type: ignore[arg-type]


@pytest.fixture
async def walk(
    agent: Agent, ledger_pool: asyncpg.Pool, risk_profiles: None, command_producer: AIOKafkaProducer
) -> Walk:
    broker = TakesOrders()
    emitted: list[OrderEvent] = []
    # A real producer: an iceberg parent's and a control's records go to Kafka.
    intake = in_process_intake(LedgerStore(ledger_pool), broker, emitted, producer=command_producer)
    intake.symbols = frozenset({"AAPL", "MSFT"})  # MSFT is traded but has no quote yet
    intake.exits = ExitManager(lambda ref, stop: 0)
    sniper = new_agent(f"sniper-{uuid.uuid4().hex[:8]}")  # a service key, allowed on '*'
    await register_key(ledger_pool, sniper.agent_id, public_key_bytes(sniper.private_key), "service", ["*"])
    intake.floor_keys = parents.FloorKeys(slicers=frozenset({sniper.agent_id}))
    trader = new_trader(accounts=frozenset({VENUE_ACCOUNT}))
    await register(ledger_pool, trader, trader.role)
    await intake.warm()
    return Walk(ledger_pool, agent, intake, broker, emitted, sniper, trader)


# --- the cases: one per reason, each the input its name describes ---------------------------

Case = Callable[[Walk], Awaitable[str | None]]


async def no_signature(w: Walk) -> str | None:
    wire = json.loads(w.agent.sign(baseline(w.agent.agent_id)).to_wire())
    return await w.send_raw(json.dumps({**wire, "signature": ""}).encode())


async def unknown_key(w: Walk) -> str | None:
    stranger = new_agent()  # never registered
    return await w.send_envelope(stranger.sign(baseline(stranger.agent_id)))


async def revoked_key(w: Walk) -> str | None:
    await revoke_agent(w.pool, w.agent.agent_id)
    await w.intake.refresh_keys()
    return await w.send(baseline(w.agent.agent_id))


async def bad_signature(w: Walk) -> str | None:
    signed = w.agent.sign(baseline(w.agent.agent_id))
    altered = dataclasses.replace(signed.command, quantity=6)  # changed after signing
    return await w.send_envelope(SignedCommand(altered, signed.signer, signed.signature))


async def signer_mismatch(w: Walk) -> str | None:
    return await w.send(baseline("someone-else"))  # the agent's key, another agent's command


async def account_not_allowed(w: Walk) -> str | None:
    narrow = new_agent(accounts=frozenset({"DU-ELSEWHERE"}))
    await register(w.pool, narrow)
    return await w.send_envelope(narrow.sign(baseline(narrow.agent_id)))


async def not_operator(w: Walk) -> str | None:
    # The walk's agent may trade: a floor-wide breaker command needs the operator role too.
    return await w.send(breaker_command(CommandKind.BREAKER_TRIP, w.agent.agent_id))


async def trader_unauthorised(w: Walk) -> str | None:
    # The walk's agent is no trader: a trader's authorization under its key is a claim nobody checked.
    claimed = manual_enter_command(
        w.agent.agent_id, quantity=5, account=VENUE_ACCOUNT, limit=ASK, authorization=authorization("alice")
    )
    return await w.send(claimed)


async def manual_order_not_allowed(w: Walk) -> str | None:
    # The baseline's terms without its edge: a manual order, from a key that is no trader's.
    return await w.send(manual_enter_command(w.agent.agent_id, quantity=5, account=VENUE_ACCOUNT, limit=ASK))


async def stale(w: Walk) -> str | None:
    return await w.send(baseline(w.agent.agent_id, issued_at=utc_now_ms() - timedelta(minutes=5)))


async def replayed_nonce(w: Walk) -> str | None:
    first = baseline(w.agent.agent_id)
    assert await w.send(first) is None
    return await w.send(baseline(w.agent.agent_id, nonce=first.nonce))  # a new command, a used nonce


async def replayed_signature(w: Walk) -> str | None:
    # An exact signature seen before under another nonce: only the sentry's own memory can hold
    # that (the nonce of a copy is caught first), so the pure check draws it.
    envelope = w.agent.sign(baseline(w.agent.agent_id))
    guard = ReplayGuard()
    guard.remember(w.agent.agent_id, "another-nonce", envelope.signature_hash, envelope.command.issued_at)
    return sentry.check(envelope, w.agent.registered, guard, datetime.now(UTC)).reason


async def replayed_command_id(w: Walk) -> str | None:
    first = baseline(w.agent.agent_id)
    assert await w.send(first) is None
    return await w.send(baseline(w.agent.agent_id, command_id=first.command_id))  # signed afresh


async def malformed(w: Walk) -> str | None:
    return await w.send_raw(b"{not json")


async def duplicate_delivery(w: Walk) -> str | None:
    envelope = w.agent.sign(baseline(w.agent.agent_id))
    assert await w.send_envelope(envelope) is None
    return await w.send_envelope(envelope)  # the very record, delivered again


async def halted(w: Walk) -> str | None:
    w.intake.breaker.trip("AAPL", CrashSignal(Decimal("200"), Decimal("180"), 0, Decimal("10")), 0)
    return await w.send(baseline(w.agent.agent_id))


async def reducing_only(w: Walk) -> str | None:
    w.intake.breaker.state = TradingState.REDUCING  # flat: a buy only grows the position
    return await w.send(baseline(w.agent.agent_id))


async def stale_price(w: Walk) -> str | None:
    old = time.perf_counter_ns() - (MAIN_PROFILE.staleness_ms + 1000) * 1_000_000
    w.intake.book.on_quote("AAPL", LastPrice(BID, ASK, None, old))
    return await w.send(baseline(w.agent.agent_id))


async def unknown_symbol(w: Walk) -> str | None:
    return await w.send(baseline(w.agent.agent_id, symbol="ZZZZ"))


async def no_reference_price(w: Walk) -> str | None:
    # A traded symbol with no quote yet, and a market order: nothing to price it at.
    command = baseline(w.agent.agent_id, symbol="MSFT")
    return await w.send(dataclasses.replace(command, order_type=OrderType.MKT, limit_price=None))


async def no_profile(w: Walk) -> str | None:
    return await w.send(baseline(w.agent.agent_id, account="DU-NOPROFILE"))


async def no_edge(w: Walk) -> str | None:
    edge = Edge(p=Decimal("0.3"), b=Decimal("1"), stop_price=Decimal("185"))
    return await w.send(dataclasses.replace(baseline(w.agent.agent_id), edge=edge))


async def below_one_share(w: Walk) -> str | None:
    w.broker.bankroll = Decimal("100")  # a quarter of it is less than one share at the ask
    return await w.send(baseline(w.agent.agent_id))


async def no_bankroll(w: Walk) -> str | None:
    w.broker.bankroll = Decimal("0")
    return await w.send(baseline(w.agent.agent_id))


async def internal_error(w: Walk) -> str | None:
    # Nothing any step foresaw: a net liquidation that is not a number breaks the sizer's sums.
    w.broker.bankroll = Decimal("NaN")
    return await w.send(baseline(w.agent.agent_id))


async def stop_wrong_side(w: Walk) -> str | None:
    # The order: a SELL LMT far through the bid, its stop above the limit but below
    # the bid it fills at.
    command = baseline(w.agent.agent_id, side=Side.SELL)
    edge = Edge(p=Decimal("0.55"), b=Decimal("1.5"), stop_price=Decimal("10.20"))
    return await w.send(dataclasses.replace(command, limit_price=Decimal("10.00"), edge=edge))


async def max_trade_size(w: Walk) -> str | None:
    # Every order intake sizes is capped by the sizer at this very notional, and an exit is
    # exempt (a desk must always be able to get out), so the gate's check is a second line for
    # a trader's manual entry: drawn from the gate with 300 shares at the ask (56,850 > 50,000).
    order = ProposedOrder("AAPL", Side.BUY, 300, ASK, ASK - Decimal("0.10"))
    account = AccountSnapshot(TradingState.ACTIVE, 0, Decimal(0), 0, 0)
    reason = check_order(MAIN_PROFILE, order, account).reason
    return None if reason is None else reason.value


async def max_dollar_risk(w: Walk) -> str | None:
    # Every order intake sizes is capped by the sizer at this very loss, so the gate's check is
    # a second line: drawn from the gate with 101 shares losing 20 each (2,020 > 2,000).
    order = ProposedOrder("AAPL", Side.BUY, 101, ASK, ASK - 20)
    account = AccountSnapshot(TradingState.ACTIVE, 0, Decimal(0), 0, 0)
    reason = check_order(MAIN_PROFILE, order, account).reason
    return None if reason is None else reason.value


async def max_position(w: Walk) -> str | None:
    w.intake.book.set_position(VENUE_ACCOUNT, "AAPL", MAIN_PROFILE.max_position, BID)
    return await w.send(baseline(w.agent.agent_id))


async def max_gross_exposure(w: Walk) -> str | None:
    # 1,000 MSFT at 500 (unquoted: its average cost) fill the 500,000 of gross exposure.
    w.intake.book.set_position(VENUE_ACCOUNT, "MSFT", 1000, Decimal("500"))
    return await w.send(baseline(w.agent.agent_id))


async def max_open_orders(w: Walk) -> str | None:
    w.intake.book.working[VENUE_ACCOUNT] = {f"working-{i}" for i in range(MAIN_PROFILE.max_open_orders)}
    return await w.send(baseline(w.agent.agent_id))


async def exit_exceeds_position(w: Walk) -> str | None:
    return await w.send(
        exit_command(w.agent.agent_id, account=VENUE_ACCOUNT, side=Side.SELL, quantity=10, limit=BID)
    )


async def stop_not_withdrawn(w: Walk) -> str | None:
    # A desk's exit of a position the floor's stop protects, whose cancel the broker never
    # confirms (tests.hotpath.test_exit_clearance has the rest of the story).
    protected = ProtectedLong(w.intake, withdraw_wait_s=0.05)
    held = protected.held
    return await w.send(
        exit_command(w.agent.agent_id, account=VENUE_ACCOUNT, side=Side.SELL, quantity=held, limit=BID)
    )


async def sizing_invalid(w: Walk) -> str | None:
    # The sizer's guard: inputs it cannot size raise. A command carrying them is refused by the
    # schema first (intake.malformed), so the guard is drawn from the sizer itself.
    with pytest.raises(CommandInvalid):
        dataclasses.replace(
            baseline(w.agent.agent_id), edge=Edge(Decimal("1"), Decimal("1.5"), Decimal("185"))
        )
    with pytest.raises(ValueError, match="p must be"):
        size_order(MAIN_PROFILE, bankroll=Decimal(1), side=Side.BUY, entry_price=ASK,
                   stop_price=Decimal("185"), p=Decimal("1"), b=Decimal("1.5"))  # fmt: skip
    return SIZING_INVALID


async def unsupported_kind(w: Walk) -> str | None:
    w.intake.exits = None  # no Exit Manager to trail the stop
    command = dataclasses.replace(
        baseline(w.agent.agent_id), order_type=OrderType.TRAIL, limit_price=None, trail_amount=Decimal("1")
    )
    return await w.send(command)


async def trail_stop_not_positive(w: Walk) -> str | None:
    # A SELL trailing 200 below a bid of 189.40 would start its stop below zero.
    command = dataclasses.replace(
        baseline(w.agent.agent_id, side=Side.SELL), order_type=OrderType.TRAIL, limit_price=None,
        trail_amount=Decimal(200), edge=Edge(Decimal("0.55"), Decimal("1.5"), Decimal(400)),
    )  # fmt: skip
    return await w.send(command)


async def unknown_order(w: Walk) -> str | None:
    cancel = Command(
        kind=CommandKind.CANCEL, command_id=f"cmd-{uuid.uuid4().hex}", agent_id=w.agent.agent_id,
        account=VENUE_ACCOUNT, nonce=uuid.uuid4().hex, issued_at=utc_now_ms(),
        target_command_id=f"cmd-{uuid.uuid4().hex}",  # no such order
    )  # fmt: skip
    return await w.send(cancel)


async def order_ended(w: Walk) -> str | None:
    filled = FloorOrder.from_command(baseline(w.agent.agent_id), 5)
    filled.apply_fill(f"{filled.command_id}.x", 5, ASK)
    w.intake.orders[filled.command_id] = filled
    cancel = Command(
        kind=CommandKind.CANCEL, command_id=f"cmd-{uuid.uuid4().hex}", agent_id=w.agent.agent_id,
        account=VENUE_ACCOUNT, nonce=uuid.uuid4().hex, issued_at=utc_now_ms(),
        target_command_id=filled.command_id,
    )  # fmt: skip
    return await w.send(cancel)


async def order_invalid(w: Walk) -> str | None:
    w.broker.refuses_as_invalid = True
    return await w.send(baseline(w.agent.agent_id))


async def not_ledgered(w: Walk) -> str | None:
    # A state row saying accepted, with no ledger entry behind it, found at restart.
    orphan = baseline(w.agent.agent_id)
    await record_order_event(w.pool, FloorOrder.from_command(orphan, 5).event(EventKind.ACCEPTED))
    await restore_orders(w.pool, {}, w.intake.book)
    state = await order_state(w.pool, orphan.command_id)
    return None if state is None else state.reason


async def unverified_entry(w: Walk) -> str | None:
    # Accepted and held unsent at a restart, by a key revoked since: not sent, its row refused.
    agent = new_agent()
    await register(w.pool, agent)
    held = baseline(agent.agent_id)
    await append_command(w.pool, agent.sign(held), decision=Decision.ACCEPTED, detail={"quantity": 5})
    await record_order_event(w.pool, FloorOrder.from_command(held, 5).event(EventKind.ACCEPTED))
    await revoke_agent(w.pool, agent.agent_id)
    orders: dict[str, FloorOrder] = {}
    restored = await restore_orders(w.pool, orders, w.intake.book)
    # Parked at restore; once the broker is reconciled without it, it ends refused, never sent.
    ended: list[OrderEvent] = []
    restarted = SimpleNamespace(orders=orders, book=w.intake.book, broker=w.broker)
    settle_parked(cast(Intake, restarted), restored.parked, ended.append, lambda *_: None)
    return next((e.reason for e in ended if e.command_id == held.command_id), None)


async def session_closed(w: Walk) -> str | None:
    # Accepted and held unsent by a process that stopped; its DAY session closed before the restart.
    now = datetime.now(UTC)
    issued = now.replace(microsecond=now.microsecond - now.microsecond % 1000) - timedelta(days=3)
    held = baseline(w.agent.agent_id, issued_at=issued)
    await append_command(w.pool, w.agent.sign(held), decision=Decision.ACCEPTED, detail={"quantity": 5})
    accepted = FloorOrder.from_command(held, 5).event(EventKind.ACCEPTED)
    await record_order_event(w.pool, dataclasses.replace(accepted, ts=issued))
    await restore_orders(w.pool, {}, w.intake.book)
    state = await order_state(w.pool, held.command_id)
    return None if state is None else state.reason


# --- iceberg slices and controls, and the floor's own keys -------------------------------

PARENT_TOTAL = 300


async def live_parent(w: Walk) -> str:
    """An iceberg of the walk's agent (AAPL, BUY, 300 shares) the ledger holds as accepted;
    returns the id its slices and controls name."""
    parent = Command(
        kind=CommandKind.ICEBERG, **_ids(w.agent.agent_id), symbol="AAPL", side=Side.BUY,
        edge=Edge(Decimal("0.55"), Decimal("2"), Decimal(185)), tif=TimeInForce.DAY,
        quantity=PARENT_TOTAL, display_size=100,
    )  # fmt: skip
    assert await w.send(parent) is None
    return parents.parent_workflow_id(parent.command_id)


def control(agent_id: str, kind: CommandKind, parent_id: str, **fields: object) -> Command:
    return Command(kind=kind, **_ids(agent_id), parent_id=parent_id, **fields)  # type: ignore[arg-type]


def _ids(agent_id: str) -> dict[str, Any]:
    return dict(
        command_id=f"cmd-{uuid.uuid4().hex}", agent_id=agent_id, account=VENUE_ACCOUNT,
        nonce=uuid.uuid4().hex, issued_at=utc_now_ms(),
    )  # fmt: skip


async def unknown_parent(w: Walk) -> str | None:
    return await w.send_slice("iceberg-cmd-nobody-ever-sent")


async def parent_mismatch(w: Walk) -> str | None:
    parent_id = await live_parent(w)  # a BUY parent: a SELL slice is not one of its slices
    return await w.send_slice(parent_id, side=Side.SELL, stop=Decimal(195))


async def slice_off_terms(w: Walk) -> str | None:
    parent_id = await live_parent(w)  # a DAY parent: a GTC slice would outlive it
    command = dataclasses.replace(baseline(w.sniper.agent_id, parent_id=parent_id), tif=TimeInForce.GTC)
    return await w.send_envelope(w.sniper.sign(command))


async def not_slicer(w: Walk) -> str | None:
    parent_id = await live_parent(w)  # the parent's own author, slicing it around the Sniper
    return await w.send(baseline(w.agent.agent_id, parent_id=parent_id))


async def over_total(w: Walk) -> str | None:
    parent_id = await live_parent(w)
    return await w.send_slice(parent_id, quantity=PARENT_TOTAL + 1)


async def parent_done(w: Walk) -> str | None:
    parent_id = await live_parent(w)
    assert await w.send(control(w.agent.agent_id, CommandKind.ICEBERG_CANCEL, parent_id)) is None
    return await w.send_slice(parent_id)


async def control_not_allowed(w: Walk) -> str | None:
    parent_id = await live_parent(w)
    stranger = new_agent()  # may trade the account, but did not author the parent
    await register(w.pool, stranger)
    return await w.send_envelope(
        stranger.sign(control(stranger.agent_id, CommandKind.ICEBERG_PAUSE, parent_id))
    )


async def amend_below_taken(w: Walk) -> str | None:
    parent_id = await live_parent(w)
    assert await w.send_slice(parent_id) is None  # 5 shares working
    return await w.send(control(w.agent.agent_id, CommandKind.ICEBERG_AMEND, parent_id, quantity=4))


async def floor_key_out_of_scope(w: Walk) -> str | None:
    # The Sniper's key (a service key, allowed on '*'): an order, not a slice.
    return await w.send_envelope(w.sniper.sign(baseline(w.sniper.agent_id)))


# --- signed records: what a consumer of orders.events or broker.sessions refuses -----------
# No command draws these; they are a record's, drawn from the pure verifier every consumer uses.


def _record_refusal(
    *,
    proof: object = "sign",
    agent: str = records.HOTPATH_WRITER,
    revoked: bool = False,
    registered: bool = True,
    tamper: bool = False,
) -> str | None:
    """Verify one ``orders.events`` record signed by a fresh key of ``agent`` (a service key),
    changed in the one way the arguments name."""
    key = generate_private_key()
    raw = records.sign_record(ORDERS_EVENTS, b'{"v": 1, "event_id": "e-1", "kind": "filled"}', key)
    record = json.loads(raw)
    if proof != "sign":
        record[records.PROOF] = proof
        if proof is None:
            del record[records.PROOF]
    if tamper:
        record["kind"] = "cancelled"
    writer = records.WriterKey(key_id(key), agent, public_key_bytes(key), "service", revoked=revoked)
    keys = {writer.key_id: writer} if registered else {}
    try:
        records.verify_record(ORDERS_EVENTS, json.dumps(record), keys)
    except records.RecordRefused as exc:
        return exc.reason
    return None


async def record_unsigned(w: Walk) -> str | None:
    return _record_refusal(proof=None)


async def record_malformed(w: Walk) -> str | None:
    return _record_refusal(proof="not an object")


async def record_unknown_key(w: Walk) -> str | None:
    return _record_refusal(registered=False)


async def record_not_a_writer(w: Walk) -> str | None:
    return _record_refusal(agent="sniper")  # a floor key, but not a writer of orders.events


async def record_key_revoked(w: Walk) -> str | None:
    return _record_refusal(revoked=True)


async def record_bad_signature(w: Walk) -> str | None:
    return _record_refusal(tamper=True)


CASES: dict[str, Case] = {
    sentry.NO_SIGNATURE: no_signature,
    sentry.UNKNOWN_KEY: unknown_key,
    sentry.REVOKED_KEY: revoked_key,
    sentry.BAD_SIGNATURE: bad_signature,
    sentry.SIGNER_MISMATCH: signer_mismatch,
    sentry.ACCOUNT_NOT_ALLOWED: account_not_allowed,
    sentry.NOT_OPERATOR: not_operator,
    sentry.TRADER_UNAUTHORISED: trader_unauthorised,
    sentry.MANUAL_ORDER_NOT_ALLOWED: manual_order_not_allowed,
    sentry.STALE: stale,
    sentry.REPLAYED_NONCE: replayed_nonce,
    sentry.REPLAYED_SIGNATURE: replayed_signature,
    sentry.REPLAYED_COMMAND_ID: replayed_command_id,
    MALFORMED: malformed,
    DUPLICATE_DELIVERY: duplicate_delivery,
    Refusal.HALTED: halted,
    Refusal.REDUCING_ONLY: reducing_only,
    Refusal.STALE_PRICE: stale_price,
    UNKNOWN_SYMBOL: unknown_symbol,
    NO_PRICE: no_reference_price,
    NO_PROFILE: no_profile,
    NO_EDGE: no_edge,
    NO_SHARE: below_one_share,
    NO_BANKROLL: no_bankroll,
    INTERNAL_ERROR: internal_error,
    Refusal.STOP_WRONG_SIDE: stop_wrong_side,
    Refusal.MAX_TRADE_SIZE: max_trade_size,
    Refusal.MAX_DOLLAR_RISK: max_dollar_risk,
    Refusal.MAX_POSITION: max_position,
    Refusal.MAX_GROSS_EXPOSURE: max_gross_exposure,
    Refusal.MAX_OPEN_ORDERS: max_open_orders,
    Refusal.EXIT_EXCEEDS_POSITION: exit_exceeds_position,
    STOP_NOT_WITHDRAWN: stop_not_withdrawn,
    SIZING_INVALID: sizing_invalid,
    UNSUPPORTED_KIND: unsupported_kind,
    TRAIL_STOP_NOT_POSITIVE: trail_stop_not_positive,
    UNKNOWN_ORDER: unknown_order,
    ORDER_ENDED: order_ended,
    BROKER_INVALID: order_invalid,
    NOT_LEDGERED: not_ledgered,
    NOT_VERIFIED: unverified_entry,
    SESSION_CLOSED: session_closed,
    parents.UNKNOWN_PARENT: unknown_parent,
    parents.PARENT_MISMATCH: parent_mismatch,
    parents.OVER_TOTAL: over_total,
    parents.PARENT_DONE: parent_done,
    parents.NOT_ALLOWED: control_not_allowed,
    parents.AMEND_BELOW_TAKEN: amend_below_taken,
    parents.FLOOR_KEY_OUT_OF_SCOPE: floor_key_out_of_scope,
    records.UNSIGNED: record_unsigned,
    records.MALFORMED: record_malformed,
    records.UNKNOWN_KEY: record_unknown_key,
    records.NOT_A_WRITER: record_not_a_writer,
    records.KEY_REVOKED: record_key_revoked,
    records.BAD_SIGNATURE: record_bad_signature,
    parents.SLICE_OFF_TERMS: slice_off_terms,
    parents.NOT_SLICER: not_slicer,
}
"""Reason -> the case that draws it. A new reason gets a new entry here."""


def test_every_reason_the_floor_can_give_has_a_case() -> None:
    missing = floor_reasons() - set(CASES)
    assert not missing, f"refusal reasons with no case in the walk (add one to CASES): {sorted(missing)}"
    unknown = set(CASES) - floor_reasons()
    assert not unknown, f"cases for reasons the floor no longer gives: {sorted(unknown)}"


async def test_the_baseline_order_is_accepted(walk: Walk) -> None:
    """Each case changes one thing from this order, so that one thing is the cause."""
    assert await walk.send(baseline(walk.agent.agent_id)) is None
    assert [order.quantity for order in walk.broker.placed] == [5]


@pytest.mark.parametrize("reason", sorted(CASES))
async def test_each_refusal_is_drawn_by_the_input_its_name_describes(walk: Walk, reason: str) -> None:
    assert await CASES[reason](walk) == reason
