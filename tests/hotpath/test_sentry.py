"""Sentry decisions: one test per refusal reason, and the order in which they are checked."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from floor.breaker_cmd import breaker_command
from tests.factories import enter_command, new_agent
from trading import sentry
from trading.commands import CommandInvalid, CommandKind, utc_now_ms
from trading.sentry import ReplayGuard, Window, admit, check, read_envelope
from trading.signing import EnvelopeInvalid, SignedCommand


def test_a_fresh_command_signed_by_a_registered_key_is_accepted() -> None:
    agent = new_agent()
    env = agent.sign(enter_command(agent.agent_id))
    verdict = check(env, agent.registered, ReplayGuard(), utc_now_ms())
    assert verdict.accepted and verdict.agent_id == agent.agent_id and verdict.severity is None


def test_an_unsigned_command_is_refused_as_no_signature() -> None:
    verdict = check(None, None, ReplayGuard(), utc_now_ms())
    assert verdict.reason == sentry.NO_SIGNATURE
    assert verdict.severity is sentry.Severity.CRITICAL


def test_a_key_nobody_registered_is_refused_as_unknown() -> None:
    agent, other = new_agent(), new_agent()
    env = agent.sign(enter_command(agent.agent_id))
    assert check(env, None, ReplayGuard(), utc_now_ms()).reason == sentry.UNKNOWN_KEY
    # The registry handing back a different key than the envelope names is also unknown.
    assert check(env, other.registered, ReplayGuard(), utc_now_ms()).reason == sentry.UNKNOWN_KEY


def test_a_revoked_key_is_refused_even_with_a_valid_signature() -> None:
    agent = new_agent()
    env = agent.sign(enter_command(agent.agent_id))
    revoked = dataclasses.replace(agent.registered, revoked=True)
    assert check(env, revoked, ReplayGuard(), utc_now_ms()).reason == sentry.REVOKED_KEY


def test_a_tampered_command_fails_the_signature_check() -> None:
    agent = new_agent()
    env = agent.sign(enter_command(agent.agent_id, quantity=10))
    tampered = SignedCommand(
        command=dataclasses.replace(env.command, quantity=10_000), signer=env.signer, signature=env.signature
    )
    verdict = check(tampered, agent.registered, ReplayGuard(), utc_now_ms())
    assert verdict.reason == sentry.BAD_SIGNATURE


def test_a_signature_by_another_key_under_this_key_id_is_bad() -> None:
    agent, forger = new_agent(), new_agent()
    cmd = enter_command(agent.agent_id)
    forged = SignedCommand(command=cmd, signer=agent.key_id, signature=forger.sign(cmd).signature)
    assert check(forged, agent.registered, ReplayGuard(), utc_now_ms()).reason == sentry.BAD_SIGNATURE


def test_an_agent_signing_for_another_agent_is_refused() -> None:
    agent = new_agent("alpha")
    env = agent.sign(enter_command("beta"))
    assert check(env, agent.registered, ReplayGuard(), utc_now_ms()).reason == sentry.SIGNER_MISMATCH


def test_an_account_the_agent_may_not_trade_is_refused() -> None:
    agent = new_agent(accounts=frozenset({"DU100"}))
    ok = agent.sign(enter_command(agent.agent_id, account="DU100"))
    other = agent.sign(enter_command(agent.agent_id, account="DU200"))
    assert check(ok, agent.registered, ReplayGuard(), utc_now_ms()).accepted
    assert check(other, agent.registered, ReplayGuard(), utc_now_ms()).reason == sentry.ACCOUNT_NOT_ALLOWED


@pytest.mark.parametrize("offset", [timedelta(seconds=-31), timedelta(seconds=6)])
def test_issued_at_outside_the_window_is_stale(offset: timedelta) -> None:
    agent = new_agent()
    now = utc_now_ms()
    env = agent.sign(enter_command(agent.agent_id, issued_at=now + offset))
    verdict = check(env, agent.registered, ReplayGuard(), now, Window())
    assert verdict.reason == sentry.STALE and verdict.severity is sentry.Severity.WARNING


def test_window_edges_are_inclusive() -> None:
    agent = new_agent()
    now = utc_now_ms()
    for offset in (-Window().max_age, Window().max_skew):
        env = agent.sign(enter_command(agent.agent_id, issued_at=now + offset))
        assert check(env, agent.registered, ReplayGuard(), now).accepted


def test_a_reused_nonce_is_a_replay_even_with_a_new_signature() -> None:
    agent = new_agent()
    guard = ReplayGuard()
    first = agent.sign(enter_command(agent.agent_id, nonce="n-1"))
    assert admit(first, agent.registered, guard, utc_now_ms()).accepted
    second = agent.sign(enter_command(agent.agent_id, nonce="n-1"))
    assert admit(second, agent.registered, guard, utc_now_ms()).reason == sentry.REPLAYED_NONCE


def test_the_same_nonce_from_two_agents_is_not_a_replay() -> None:
    a, b = new_agent(), new_agent()
    guard = ReplayGuard()
    assert admit(a.sign(enter_command(a.agent_id, nonce="n")), a.registered, guard, utc_now_ms()).accepted
    assert admit(b.sign(enter_command(b.agent_id, nonce="n")), b.registered, guard, utc_now_ms()).accepted


def test_a_signature_already_seen_is_a_replay() -> None:
    agent = new_agent()
    guard = ReplayGuard()
    env = agent.sign(enter_command(agent.agent_id))
    # Warmed from the ledger with only the signature hash under another nonce.
    guard.remember(agent.agent_id, "other-nonce", env.signature_hash, env.command.issued_at)
    assert check(env, agent.registered, guard, utc_now_ms()).reason == sentry.REPLAYED_SIGNATURE


def test_check_alone_remembers_nothing() -> None:
    agent = new_agent()
    guard = ReplayGuard()
    env = agent.sign(enter_command(agent.agent_id))
    assert check(env, agent.registered, guard, utc_now_ms()).accepted
    assert check(env, agent.registered, guard, utc_now_ms()).accepted
    assert len(guard) == 0


def test_forgetting_drops_only_entries_older_than_the_window() -> None:
    agent = new_agent()
    now = utc_now_ms()
    guard = ReplayGuard()
    old = agent.sign(enter_command(agent.agent_id, issued_at=now - timedelta(seconds=20)))
    new = agent.sign(enter_command(agent.agent_id, issued_at=now))
    admit(old, agent.registered, guard, now)
    admit(new, agent.registered, guard, now)
    assert guard.forget_older_than_window(now + timedelta(seconds=15)) == 1
    assert not guard.seen_nonce(agent.agent_id, old.command.nonce)
    assert guard.seen_nonce(agent.agent_id, new.command.nonce)
    assert guard.seen_signature(new.signature_hash)


def test_a_forged_envelope_still_fails_before_replay_information_leaks() -> None:
    agent, forger = new_agent(), new_agent()
    guard = ReplayGuard()
    env = agent.sign(enter_command(agent.agent_id, nonce="taken"))
    admit(env, agent.registered, guard, utc_now_ms())
    forged = SignedCommand(
        command=env.command, signer=agent.key_id, signature=forger.sign(env.command).signature
    )
    assert check(forged, agent.registered, guard, utc_now_ms()).reason == sentry.BAD_SIGNATURE


def test_reading_an_envelope_without_signature_is_a_refusal_not_a_schema_error() -> None:
    agent = new_agent()
    wire = agent.sign(enter_command(agent.agent_id)).to_wire_dict()
    for missing in ({k: v for k, v in wire.items() if k != "signature"}, {**wire, "signature": ""}):
        with pytest.raises(sentry.Refused) as exc:
            read_envelope(missing)
        assert exc.value.verdict.reason == sentry.NO_SIGNATURE
    with pytest.raises(sentry.Refused) as exc:
        read_envelope({**wire, "signature": "zz"})
    assert exc.value.verdict.reason == sentry.BAD_SIGNATURE
    with pytest.raises(sentry.Refused) as exc:
        read_envelope({**wire, "signer": "nobody"})
    assert exc.value.verdict.reason == sentry.UNKNOWN_KEY


def test_reading_an_envelope_with_a_bad_command_names_the_field() -> None:
    agent = new_agent()
    wire = agent.sign(enter_command(agent.agent_id)).to_wire_dict()
    with pytest.raises(CommandInvalid) as exc:
        read_envelope({**wire, "command": {**wire["command"], "side": "HOLD"}})
    assert exc.value.field == "side"
    with pytest.raises(EnvelopeInvalid) as env_exc:
        read_envelope({**wire, "extra": 1})
    assert env_exc.value.field == "extra"
    decoded = read_envelope(wire)
    assert decoded.signer == agent.key_id and decoded.to_wire_dict() == wire


def test_a_released_command_may_be_presented_again() -> None:
    agent = new_agent()
    guard = ReplayGuard()
    env = agent.sign(enter_command(agent.agent_id))
    assert admit(env, agent.registered, guard, utc_now_ms()).accepted
    guard.release(agent.agent_id, env.command.nonce, env.signature_hash)
    assert admit(env, agent.registered, guard, utc_now_ms()).accepted
    assert admit(env, agent.registered, guard, utc_now_ms()).reason == sentry.REPLAYED_NONCE


def test_a_copy_presented_after_the_window_is_a_replay_not_stale() -> None:
    # The slice retried long after its first publish: the same envelope, now older than the
    # window. While the guard still holds it, it is named for what it is, a copy.
    agent = new_agent()
    guard = ReplayGuard()
    first = utc_now_ms()
    env = agent.sign(enter_command(agent.agent_id, issued_at=first))
    assert admit(env, agent.registered, guard, first).accepted
    later = first + guard.window.max_age + timedelta(seconds=1)
    verdict = check(env, agent.registered, guard, later)
    assert verdict.reason in sentry.REDELIVERY_SUSPECTS
    assert verdict.reason == sentry.REPLAYED_NONCE


def test_every_refusal_a_forgotten_copy_can_draw_is_a_redelivery_suspect() -> None:
    agent = new_agent()
    env = agent.sign(enter_command(agent.agent_id))
    later = env.command.issued_at + ReplayGuard().window.max_age + timedelta(seconds=1)
    assert check(env, agent.registered, ReplayGuard(), later).reason in sentry.REDELIVERY_SUSPECTS
    assert sentry.REDELIVERY_SUSPECTS == {sentry.STALE, sentry.REPLAYED_NONCE, sentry.REPLAYED_SIGNATURE}


def test_a_breaker_command_signed_without_the_operator_role_is_refused_as_not_operator() -> None:
    agent = new_agent()  # an agent's key, allowed on every account: still not an operator
    for kind in (CommandKind.BREAKER_TRIP, CommandKind.BREAKER_ARM):
        env = agent.sign(breaker_command(kind, agent.agent_id))
        verdict = check(env, agent.registered, ReplayGuard(), utc_now_ms())
        assert verdict.reason == sentry.NOT_OPERATOR and verdict.severity is sentry.Severity.CRITICAL
        assert "operator role" in verdict.detail


def test_an_operator_key_may_trip_and_arm_the_floor_but_only_one_allowed_on_every_account() -> None:
    ops = new_agent()
    registered = dataclasses.replace(ops.registered, role=sentry.ROLE_OPERATOR)
    for kind in (CommandKind.BREAKER_TRIP, CommandKind.BREAKER_ARM):
        env = ops.sign(breaker_command(kind, ops.agent_id))
        assert check(env, registered, ReplayGuard(), utc_now_ms()).accepted
    # The breaker halts every account, so an operator limited to one may not pull it.
    one_account = dataclasses.replace(registered, accounts=frozenset({"DU100"}))
    env = ops.sign(breaker_command(CommandKind.BREAKER_TRIP, ops.agent_id))
    assert check(env, one_account, ReplayGuard(), utc_now_ms()).reason == sentry.ACCOUNT_NOT_ALLOWED
