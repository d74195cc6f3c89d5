"""Re-verifying a command read back from the ledger: only the signed command the row describes,
by its author's registered, unrevoked key allowed on the account, is trusted."""

from __future__ import annotations

import dataclasses

from tests.factories import authorization, enter_command, manual_enter_command, new_agent, new_trader
from trading.commands import Command
from trading.ledger_trust import LedgerRow, check_entry, payload_mismatch

AGENT = new_agent("alpha")
SIGNED = AGENT.sign(enter_command("alpha", account="DU1"))
ROW = LedgerRow(
    seq=1, kind="enter", account="DU1", agent_id="alpha", command_id=SIGNED.command.command_id,
    payload=SIGNED.canonical, signer=SIGNED.signer, signature=SIGNED.signature,
)  # fmt: skip


def test_a_genuine_entry_is_trusted_as_the_command_it_describes() -> None:
    checked = check_entry(ROW, AGENT.registered)
    assert checked.problem is None and checked.command == SIGNED.command


def test_an_entry_whose_columns_differ_from_its_signed_command_is_not_trusted() -> None:
    for change in ({"kind": "exit"}, {"command_id": "other"}, {"account": "DU2"}):
        checked = check_entry(dataclasses.replace(ROW, **change), AGENT.registered)  # type: ignore[arg-type]
        assert checked.command is None and checked.problem is not None
        assert f"differs from the entry in {next(iter(change))}" in checked.problem


def test_an_entry_with_a_bad_signature_an_unknown_a_revoked_or_a_foreign_key_is_not_trusted() -> None:
    other = new_agent("alpha")
    cases = [
        (dataclasses.replace(ROW, signature=bytes(64)), AGENT.registered, "does not verify"),
        (ROW, None, "not a registered key"),
        (ROW, dataclasses.replace(AGENT.registered, revoked=True), "revoked"),
        (ROW, dataclasses.replace(AGENT.registered, accounts=frozenset({"DU2"})), "may not trade DU1"),
        (ROW, dataclasses.replace(AGENT.registered, agent_id="beta"), "belongs to beta"),
        (ROW, other.registered, "does not verify"),
    ]
    for row, key, problem in cases:
        checked = check_entry(row, key)
        assert checked.command is None and checked.problem is not None and problem in checked.problem


def test_a_revoked_key_still_verifies_what_it_signed_when_the_caller_asks() -> None:
    revoked = dataclasses.replace(AGENT.registered, revoked=True)
    assert check_entry(ROW, revoked, revoked_is_problem=False).command == SIGNED.command


def test_a_signed_payload_must_carry_the_rows_fields() -> None:
    assert payload_mismatch(SIGNED.canonical, {"kind": "enter", "agent_id": "alpha"}) is None
    assert "kind" in (payload_mismatch(SIGNED.canonical, {"kind": "breaker_arm"}) or "")
    assert payload_mismatch(b"[1]", {"kind": "enter"}) == "the signed payload is not a JSON object"


def test_a_traders_entry_is_trusted_only_with_that_traders_authorization() -> None:
    alice = new_trader("alice", accounts=frozenset({"DU1"}))

    def row_of(command: Command) -> LedgerRow:
        signed = alice.sign(command)
        return dataclasses.replace(
            ROW, agent_id=alice.agent_id, command_id=command.command_id, payload=signed.canonical,
            signer=signed.signer, signature=signed.signature,
        )  # fmt: skip

    authorised = manual_enter_command(
        alice.agent_id, account="DU1", quantity=5, authorization=authorization("alice")
    )
    assert check_entry(row_of(authorised), alice.registered).command == authorised
    bare = dataclasses.replace(authorised, authorization=None)
    checked = check_entry(row_of(bare), alice.registered)
    assert checked.command is None and checked.problem is not None and "WebAuthn" in checked.problem
