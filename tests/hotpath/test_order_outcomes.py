"""Every order command a genuine key signs and the sentry lets in is answered with exactly one
``accepted`` or ``rejected`` record under its command id: the API waits for that record to tell
a trader what became of an order. (A command the sentry refuses gets a security event instead,
never a record: see :mod:`hotpath.refusals`.)

Intake runs in this process over the real ledger, as in the refusal walk; a trader's own key
(role ``trader``) is registered like any key."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal

import pytest

from tests.factories import authorization, manual_enter_command, new_trader
from tests.fixtures.hotpath import register
from tests.hotpath import test_refusal_walk as walk_suite
from tests.hotpath.conftest import MAIN_PROFILE, VENUE_ACCOUNT
from tests.hotpath.test_refusal_walk import ASK, Walk, baseline
from trading.authorization import Ceremony
from trading.circuit_breaker import CrashSignal
from trading.commands import Command, OrderType, Side
from trading.order_events import EventKind
from trading.sentry import TRADER_UNAUTHORISED

DECISIONS = (EventKind.ACCEPTED, EventKind.REJECTED)
walk = walk_suite.walk
"""The refusal walk's harness: intake over the real ledger, a broker that takes every order."""


async def accepted(w: Walk) -> Command:
    return baseline(w.agent.agent_id)


async def halted(w: Walk) -> Command:
    w.intake.breaker.trip("AAPL", CrashSignal(Decimal("200"), Decimal("180"), 0, Decimal("10")), 0)
    return baseline(w.agent.agent_id)


async def unknown_symbol(w: Walk) -> Command:
    return baseline(w.agent.agent_id, symbol="ZZZZ")


async def no_profile(w: Walk) -> Command:
    return baseline(w.agent.agent_id, account="DU-NO-PROFILE")


async def kelly_sized_to_nothing(w: Walk) -> Command:
    return baseline(w.agent.agent_id, p=Decimal("0.3"))


async def manual_over_max_dollar_risk(w: Walk) -> Command:
    # 20 x 189.50 = 3,790: within Max Trade Size, all of it at risk without a stop loss.
    return manual_enter_command(
        w.trader.agent_id,
        account=VENUE_ACCOUNT,
        limit=ASK,
        quantity=20,
        authorization=authorization(w.trader.trader),
    )


async def manual_within_limits(w: Walk) -> Command:
    return manual_enter_command(
        w.trader.agent_id, account=VENUE_ACCOUNT, limit=ASK, quantity=3, stop_loss=ASK - 10,
        authorization=authorization(w.trader.trader),
    )  # fmt: skip


async def manual_trail(w: Walk) -> Command:
    # No stop loss: the Exit Manager bounds the trailing stop by the notional both limits allow.
    return manual_enter_command(
        w.trader.agent_id, account=VENUE_ACCOUNT, side=Side.SELL, quantity=3, limit=None,
        order_type=OrderType.TRAIL, trail_amount=Decimal("1"), authorization=authorization(w.trader.trader),
    )  # fmt: skip


async def refused_by_the_broker(w: Walk) -> Command:
    w.broker.refuses_as_invalid = True  # ledgered as accepted, then not sent: rejected only
    return baseline(w.agent.agent_id)


CASES: dict[str, tuple[Callable[[Walk], Awaitable[Command]], EventKind, str | None]] = {
    "accepted": (accepted, EventKind.ACCEPTED, None),
    "breaker halted": (halted, EventKind.REJECTED, "breaker.halted"),
    "unknown symbol": (unknown_symbol, EventKind.REJECTED, "unknown_symbol"),
    "no risk profile": (no_profile, EventKind.REJECTED, "risk.no_profile"),
    "no edge": (kelly_sized_to_nothing, EventKind.REJECTED, "sizing.no_edge"),
    "manual over max dollar risk": (manual_over_max_dollar_risk, EventKind.REJECTED, "risk.max_dollar_risk"),
    "manual within limits": (manual_within_limits, EventKind.ACCEPTED, None),
    "manual trailing stop": (manual_trail, EventKind.ACCEPTED, None),
    "refused by the broker": (refused_by_the_broker, EventKind.REJECTED, "broker.order_invalid"),
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_each_order_command_gets_exactly_one_decision_record(walk: Walk, case: str) -> None:
    make, kind, reason = CASES[case]
    command = await make(walk)
    await walk.send(command)
    decisions = [e for e in walk.emitted if e.command_id == command.command_id and e.kind in DECISIONS]
    assert [(e.kind, e.reason) for e in decisions] == [(kind, reason)]


async def test_a_traders_authorised_manual_order_is_sent_and_its_entry_names_the_trader(walk: Walk) -> None:
    alice = new_trader(accounts=frozenset({VENUE_ACCOUNT}))
    await register(walk.pool, alice, alice.role)
    step_up = authorization(alice.trader, ceremony=Ceremony.STEP_UP, sign_count=3)
    command = manual_enter_command(
        alice.agent_id, account=VENUE_ACCOUNT, limit=ASK, quantity=4, authorization=step_up
    )
    assert await walk.send_envelope(alice.sign(command)) is None
    assert [order.quantity for order in walk.broker.placed] == [4]
    decisions = [(e.kind, e.quantity) for e in walk.emitted if e.command_id == command.command_id]
    assert decisions == [(EventKind.ACCEPTED, 4)]
    entry = await walk.pool.fetchrow(
        "SELECT payload, signer, decision FROM ledger_entries WHERE command_id = $1", command.command_id
    )
    assert entry["decision"] == "accepted" and entry["signer"] == alice.key_id
    assert command.authorization is not None and command.authorization.ceremony is Ceremony.STEP_UP
    assert json.loads(entry["payload"])["authorization"] == command.authorization.to_json_dict()


async def test_a_traders_key_without_its_authorization_sends_nothing(walk: Walk) -> None:
    """The trader's key used past the WebAuthn checks: a security event, no order, no record."""
    alice = new_trader(accounts=frozenset({VENUE_ACCOUNT}))
    await register(walk.pool, alice, alice.role)
    bare = manual_enter_command(alice.agent_id, account=VENUE_ACCOUNT, limit=ASK, quantity=4)
    assert await walk.send_envelope(alice.sign(bare)) == TRADER_UNAUTHORISED
    assert walk.broker.placed == [] and [e for e in walk.emitted if e.command_id == bare.command_id] == []
    event = await walk.pool.fetchrow(
        "SELECT severity, agent_id FROM security_events WHERE command_id = $1", bare.command_id
    )
    assert event is not None and (event["severity"], event["agent_id"]) == ("critical", alice.agent_id)


async def test_a_manual_trailing_entry_without_a_stop_loss_trails_only_as_far_as_its_risk_allows(
    walk: Walk,
) -> None:
    """Its whole notional is its risk: a SELL entry's stop rises with a rally only until
    quantity x stop reaches Max Dollar Risk (2,000 for 10 shares: 200.00), not Max Trade Size."""
    entry = dataclasses.replace(await manual_trail(walk), quantity=10)
    assert await walk.send(entry) is None
    exits = walk.intake.exits
    assert exits is not None and exits.stop_of("AAPL", entry.command_id) == Decimal(
        "188.40"
    )  # 1 below the bid
    exits.on_price("AAPL", Decimal("250"), time.perf_counter_ns())
    assert exits.stop_of("AAPL", entry.command_id) == Decimal("200.00") == MAIN_PROFILE.max_dollar_risk / 10
