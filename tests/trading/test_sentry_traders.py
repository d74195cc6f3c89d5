"""The sentry and traders' keys: a trader's key signs only the kinds a trader may, and only with
that trader's own WebAuthn authorization; no other key's command carries one; a trader's
breaker command is floor-wide by nature."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from floor.breaker_cmd import breaker_command
from tests.factories import (
    authorization,
    cancel_all_command,
    cancel_command,
    enter_command,
    exit_command,
    manual_enter_command,
    new_agent,
    new_trader,
)
from trading import sentry
from trading.authorization import Ceremony
from trading.commands import Command, CommandKind, Side, utc_now_ms
from trading.sentry import ReplayGuard, check, trader_problem
from trading.signing import SignedCommand


def verdict(envelope: SignedCommand, key: sentry.RegisteredKey) -> sentry.Verdict:
    return check(envelope, key, ReplayGuard(), utc_now_ms())


def test_an_authorised_manual_order_from_the_traders_own_key_is_accepted() -> None:
    alice = new_trader("alice")
    command = manual_enter_command(alice.agent_id, quantity=10, authorization=authorization("alice"))
    assert verdict(alice.sign(command), alice.registered).accepted


@pytest.mark.parametrize("ceremony", [Ceremony.ARMING, Ceremony.STEP_UP])
def test_arming_or_a_step_up_authorises_an_order(ceremony: Ceremony) -> None:
    alice = new_trader("alice")
    command = manual_enter_command(
        alice.agent_id, quantity=10, authorization=authorization("alice", ceremony=ceremony)
    )
    assert verdict(alice.sign(command), alice.registered).accepted


def test_a_traders_key_without_an_authorization_is_refused_as_unauthorised() -> None:
    alice = new_trader("alice")
    refused = verdict(alice.sign(manual_enter_command(alice.agent_id, quantity=10)), alice.registered)
    assert refused.reason == sentry.TRADER_UNAUTHORISED
    assert refused.severity is sentry.Severity.CRITICAL
    assert "WebAuthn" in refused.detail


def test_an_authorization_naming_another_trader_is_refused() -> None:
    alice = new_trader("alice")
    command = manual_enter_command(alice.agent_id, quantity=10, authorization=authorization("bob"))
    refused = verdict(alice.sign(command), alice.registered)
    assert refused.reason == sentry.TRADER_UNAUTHORISED
    assert "trader bob" in refused.detail and "trader.alice" in refused.detail


def test_an_agents_key_may_not_claim_a_traders_authorization() -> None:
    """A key that is not the trader's (an agent's, an operator's) carrying an authorization
    would put "authorised by trader alice" in the ledger with nothing behind it."""
    alice = new_trader("alice")
    for role in (sentry.ROLE_AGENT, sentry.ROLE_OPERATOR):
        other = dataclasses.replace(alice, agent_id="trader.alice-impostor", role=role)
        command = manual_enter_command(other.agent_id, quantity=10, authorization=authorization("alice"))
        assert verdict(other.sign(command), other.registered).reason == sentry.TRADER_UNAUTHORISED


def test_a_traders_key_signs_no_iceberg() -> None:
    alice = new_trader("alice")
    iceberg = Command(
        kind=CommandKind.ICEBERG, command_id="cmd-ice", agent_id=alice.agent_id, account="DU100", nonce="n",
        issued_at=utc_now_ms(), symbol="AAPL", side=enter_command("x").side, edge=enter_command("x").edge,
        tif=enter_command("x").tif, quantity=100, display_size=10,
    )  # fmt: skip
    refused = verdict(alice.sign(iceberg), alice.registered)
    assert refused.reason == sentry.TRADER_UNAUTHORISED and "iceberg" in refused.detail


def test_a_traders_cancel_all_needs_the_authorization_too() -> None:
    alice = new_trader("alice")
    bare = cancel_all_command(alice.agent_id, account="DU100")
    assert verdict(alice.sign(bare), alice.registered).reason == sentry.TRADER_UNAUTHORISED
    authorised = dataclasses.replace(bare, authorization=authorization("alice"))
    assert verdict(alice.sign(authorised), alice.registered).accepted


@pytest.mark.parametrize("kind", [CommandKind.BREAKER_TRIP, CommandKind.BREAKER_ARM])
def test_an_authorised_trader_may_trip_and_rearm_whatever_its_accounts(kind: CommandKind) -> None:
    alice = new_trader("alice", accounts=frozenset({"DU100"}))  # '*' is not among them
    command = dataclasses.replace(breaker_command(kind, alice.agent_id), authorization=authorization("alice"))
    assert verdict(alice.sign(command), alice.registered).accepted


@pytest.mark.parametrize("kind", [CommandKind.BREAKER_TRIP, CommandKind.BREAKER_ARM])
def test_a_traders_breaker_command_without_authorization_is_refused(kind: CommandKind) -> None:
    alice = new_trader("alice")
    refused = verdict(alice.sign(breaker_command(kind, alice.agent_id)), alice.registered)
    assert refused.reason == sentry.TRADER_UNAUTHORISED


def test_a_trader_still_trades_only_its_own_accounts() -> None:
    alice = new_trader("alice", accounts=frozenset({"DU100"}))
    command = manual_enter_command(
        alice.agent_id, quantity=10, account="DU999", authorization=authorization("alice")
    )
    assert verdict(alice.sign(command), alice.registered).reason == sentry.ACCOUNT_NOT_ALLOWED


def test_the_signature_is_checked_before_the_authorization() -> None:
    """A forger learns nothing about which traders exist from the order of the checks."""
    alice, mallory = new_trader("alice"), new_trader("alice")
    forged = mallory.sign(manual_enter_command(alice.agent_id, quantity=10))
    forged = SignedCommand(forged.command, alice.key_id, forged.signature)
    assert verdict(forged, alice.registered).reason == sentry.BAD_SIGNATURE


def test_trader_problem_is_none_for_plain_agent_commands() -> None:
    command = enter_command("alpha")
    assert trader_problem(command, sentry.ROLE_AGENT, "alpha") is None


def test_the_sign_in_assertion_authorises_taking_risk_off_without_arming() -> None:
    """A trader who signed in but never armed may still cancel and halt the floor."""
    alice = new_trader("alice", accounts=frozenset({"DU100"}))
    sign_in = authorization("alice", ceremony=Ceremony.SESSION)
    for command in (
        cancel_command(alice.agent_id, "cmd-0", account="DU100"),
        cancel_all_command(alice.agent_id, account="DU100", symbol="AAPL"),
        breaker_command(CommandKind.BREAKER_TRIP, alice.agent_id),
    ):
        authorised = dataclasses.replace(command, authorization=sign_in)
        assert verdict(alice.sign(authorised), alice.registered).accepted, command.kind


@pytest.mark.parametrize("kind", ["enter", "exit", "breaker_arm"])
def test_the_sign_in_assertion_alone_authorises_no_risk(kind: str) -> None:
    """An order, or re-arming the floor, needs the arming grant or a step-up: a trader key's
    command that claims only the sign-in was used past the desk's checks."""
    alice = new_trader("alice")
    sign_in = authorization("alice", ceremony=Ceremony.SESSION)
    command = {
        "enter": manual_enter_command(alice.agent_id, quantity=10, authorization=sign_in),
        "exit": exit_command(
            alice.agent_id,
            account="DU100",
            side=Side.SELL,
            quantity=10,
            limit=Decimal("180"),
            authorization=sign_in,
        ),
        "breaker_arm": dataclasses.replace(
            breaker_command(CommandKind.BREAKER_ARM, alice.agent_id), authorization=sign_in
        ),
    }[kind]
    refused = verdict(alice.sign(command), alice.registered)
    assert refused.reason == sentry.TRADER_UNAUTHORISED
    assert refused.severity is sentry.Severity.CRITICAL
    assert "sign-in" in refused.detail and kind in refused.detail


def test_a_step_up_over_another_orders_hash_is_refused() -> None:
    alice = new_trader("alice")
    over_a = manual_enter_command(
        alice.agent_id, quantity=10, authorization=authorization("alice", ceremony=Ceremony.STEP_UP)
    )
    assert over_a.authorization is not None
    # The assertion was over order A's terms; the command the key signs is order B (more shares).
    order_b = dataclasses.replace(over_a, quantity=1000)
    refused = verdict(alice.sign(order_b), alice.registered)
    assert refused.reason == sentry.TRADER_UNAUTHORISED
    assert over_a.authorization.order_hash is not None
    assert over_a.authorization.order_hash in refused.detail


def test_a_step_up_on_a_command_with_no_order_terms_is_refused() -> None:
    alice = new_trader("alice")
    step_up = authorization("alice", ceremony=Ceremony.STEP_UP)
    arm = dataclasses.replace(breaker_command(CommandKind.BREAKER_ARM, alice.agent_id), authorization=step_up)
    refused = verdict(alice.sign(arm), alice.registered)
    assert refused.reason == sentry.TRADER_UNAUTHORISED and "has none" in refused.detail


def test_a_manual_order_from_a_key_that_is_not_a_traders_is_refused_by_name() -> None:
    agent = new_agent()
    refused = verdict(agent.sign(manual_enter_command(agent.agent_id, quantity=10)), agent.registered)
    assert refused.reason == sentry.MANUAL_ORDER_NOT_ALLOWED
    assert "edge" in refused.detail
    # The same order with an edge is the sizer's, as ever.
    assert verdict(agent.sign(enter_command(agent.agent_id)), agent.registered).accepted
