"""The rules for iceberg slices, controls and service keys, and the control commands' schema."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading import iceberg_parents as parents
from trading.commands import Command, CommandInvalid, CommandKind, Edge, OrderType, Side, TimeInForce
from trading.iceberg_parents import Parent

ISSUED = datetime(2026, 11, 24, 4, 48, 34, 123000, tzinfo=UTC)
PARENT = Parent(
    command_id="ice-1", agent_id="alpha", signer="k-alpha", account="DU1", symbol="AAPL", side=Side.BUY,
    total=300, display=100, limit_price=Decimal("190"),
)  # fmt: skip


def _command(kind: CommandKind, agent_id: str = "sniper", **fields: Any) -> Command:
    return Command(
        kind=kind, command_id="c-1", agent_id=agent_id, account=fields.pop("account", "DU1"), nonce="n-1",
        issued_at=ISSUED, **fields,
    )  # fmt: skip


def _slice(quantity: int = 100, **fields: Any) -> Command:
    base: dict[str, Any] = dict(
        symbol="AAPL", side=Side.BUY, order_type=OrderType.LMT, limit_price=Decimal("189.5"),
        edge=Edge(Decimal("0.55"), Decimal("2"), Decimal("185")), tif=TimeInForce.DAY, quantity=quantity,
        parent_id=PARENT.workflow_id,
    )  # fmt: skip
    base.update(fields)
    return _command(CommandKind.ENTER, **base)


def _control(kind: CommandKind, agent_id: str = "alpha", **fields: Any) -> Command:
    return _command(kind, agent_id, parent_id=PARENT.workflow_id, **fields)


def test_a_parent_is_named_by_its_workflow_id_and_nothing_else_names_one() -> None:
    assert parents.parent_workflow_id("ice-1") == "iceberg-ice-1" == PARENT.workflow_id
    assert parents.parent_command_id("iceberg-ice-1") == "ice-1"
    assert parents.parent_command_id("ice-1") is None
    assert parents.parent_command_id("iceberg-") is None


@pytest.mark.parametrize(
    ("parent", "command", "taken", "reason"),
    [
        (None, _slice(), 0, parents.UNKNOWN_PARENT),
        (PARENT, _slice(account="DU2"), 0, parents.PARENT_MISMATCH),
        (PARENT, _slice(symbol="MSFT"), 0, parents.PARENT_MISMATCH),
        (PARENT, _slice(side=Side.SELL, edge=Edge(Decimal("0.55"), Decimal("2"), Decimal("195"))), 0,
         parents.PARENT_MISMATCH),
        (PARENT, _slice(), 300, parents.PARENT_DONE),
        (Parent(**{**PARENT.__dict__, "stopped": "cancelled"}), _slice(), 0, parents.PARENT_DONE),
        (PARENT, _slice(101), 200, parents.OVER_TOTAL),
        (PARENT, _slice(100), 200, None),
    ],
)  # fmt: skip
def test_each_slice_refusal_names_what_is_wrong_with_the_slice(
    parent: Parent | None, command: Command, taken: int, reason: str | None
) -> None:
    assert parents.slice_refusal(command, parent, taken) == reason


@given(total=st.integers(1, 10_000), taken=st.integers(0, 10_000), qty=st.integers(1, 10_000))
def test_an_accepted_slice_never_takes_the_parent_past_its_total(total: int, taken: int, qty: int) -> None:
    parent = Parent(**{**PARENT.__dict__, "total": total})
    if parents.slice_refusal(_slice(qty), parent, taken) is None:
        assert taken + qty <= total


def test_the_author_or_an_operator_controls_a_parent_and_nobody_else() -> None:
    pause = _control(CommandKind.ICEBERG_PAUSE)
    ok = parents.control_refusal(pause, PARENT, 0, signer_agent="alpha", signer_role="agent")
    by_operator = parents.control_refusal(pause, PARENT, 0, signer_agent="ops", signer_role="operator")
    by_other = parents.control_refusal(pause, PARENT, 0, signer_agent="beta", signer_role="agent")
    assert (ok, by_operator, by_other) == (None, None, parents.NOT_ALLOWED)


def test_a_control_for_a_missing_done_or_other_accounts_parent_or_an_amend_below_taken_is_refused() -> None:
    pause = _control(CommandKind.ICEBERG_PAUSE)
    who = {"signer_agent": "alpha", "signer_role": "agent"}
    assert parents.control_refusal(pause, None, 0, **who) == parents.UNKNOWN_PARENT
    other = Parent(**{**PARENT.__dict__, "account": "DU2"})
    assert parents.control_refusal(pause, other, 0, **who) == parents.UNKNOWN_PARENT
    assert parents.control_refusal(pause, PARENT, 300, **who) == parents.PARENT_DONE
    amend = _control(CommandKind.ICEBERG_AMEND, quantity=150)
    assert parents.control_refusal(amend, PARENT, 151, **who) == parents.AMEND_BELOW_TAKEN
    assert parents.control_refusal(amend, PARENT, 150, **who) is None


def test_an_accepted_amend_or_cancel_changes_the_parent_as_intake_tracks_it() -> None:
    amended = PARENT.after(_control(CommandKind.ICEBERG_AMEND, quantity=200, limit_price=Decimal("189")))
    assert (amended.total, amended.display, amended.limit_price) == (200, 100, Decimal("189"))
    assert PARENT.after(_control(CommandKind.ICEBERG_PAUSE)) == PARENT
    assert PARENT.after(_control(CommandKind.ICEBERG_CANCEL)).stopped == "cancelled"


KEYS = parents.FloorKeys()
"""As ``floor up`` names them: ``sniper`` slices, ``floor-lifecycle`` cancels at the close."""


@pytest.mark.parametrize(
    ("command", "allowed"),
    [
        (_slice(), True),
        (_command(CommandKind.CANCEL, target_command_id="x"), True),
        (_slice(parent_id=None), False),
        (_command(CommandKind.CANCEL_ALL), False),
        (_command(CommandKind.EXIT, symbol="AAPL", side=Side.SELL, order_type=OrderType.MKT,
                  tif=TimeInForce.DAY, quantity=1), False),
        (_control(CommandKind.ICEBERG_CANCEL, "sniper"), False),
    ],
)  # fmt: skip
def test_the_sniper_may_sign_slices_and_cancels_only(command: Command, allowed: bool) -> None:
    refusal = parents.floor_key_refusal(command, parents.ROLE_SERVICE, "sniper", KEYS)
    assert refusal == (None if allowed else parents.FLOOR_KEY_OUT_OF_SCOPE)


@pytest.mark.parametrize(
    "agent_id", ["floor-lifecycle", "floor-breaker", "floor-ledger", "floor-hotpath", "floor-reconcile",
                 "floor-control"],
)  # fmt: skip
def test_no_other_floor_key_signs_a_slice_and_only_the_lifecycle_key_a_cancel(agent_id: str) -> None:
    cancel = _command(CommandKind.CANCEL, agent_id, target_command_id="x")
    for command in (_slice(), _command(CommandKind.CANCEL_ALL, agent_id), cancel):
        refusal = parents.floor_key_refusal(command, parents.ROLE_SERVICE, agent_id, KEYS)
        allowed = command is cancel and agent_id == "floor-lifecycle"
        assert refusal == (None if allowed else parents.FLOOR_KEY_OUT_OF_SCOPE), (agent_id, command.kind)


@pytest.mark.parametrize("role", ["agent", "operator"])
def test_only_the_sniper_signs_slices_whatever_the_signers_role(role: str) -> None:
    """The parent's own author included: it works its parent through the Sniper."""
    assert parents.floor_key_refusal(_slice(), role, "alpha", KEYS) == parents.NOT_SLICER
    assert parents.floor_key_refusal(_slice(), role, "sniper", KEYS) == parents.NOT_SLICER
    assert parents.floor_key_refusal(_slice(parent_id=None), role, "alpha", KEYS) is None


@pytest.mark.parametrize(
    ("changes", "off"),
    [
        ({}, False),
        ({"limit_price": Decimal("190")}, False),  # at the parent's limit
        ({"limit_price": Decimal("190.01")}, True),  # through it
        ({"order_type": OrderType.MKT, "limit_price": None}, True),
        ({"tif": TimeInForce.GTC}, True),
    ],
)
def test_a_slice_is_a_limit_order_at_or_inside_the_parents_limit_with_its_time_in_force(
    changes: dict[str, Any], off: bool
) -> None:
    reason = parents.slice_refusal(_slice(**changes), PARENT, 0)
    assert reason == (parents.SLICE_OFF_TERMS if off else None)
    sell_parent = Parent(**{**PARENT.__dict__, "side": Side.SELL})
    sell = _slice(
        side=Side.SELL,
        limit_price=Decimal("189.99"),
        edge=Edge(Decimal("0.55"), Decimal("2"), Decimal("195")),
    )
    assert parents.slice_refusal(sell, sell_parent, 0) == parents.SLICE_OFF_TERMS  # below a SELL's limit


@pytest.mark.parametrize(
    ("agent_id", "is_slice", "tif", "closed", "allowed"),
    [
        ("sniper", True, "DAY", False, True),
        ("sniper", False, "DAY", True, False),
        ("floor-lifecycle", False, "DAY", True, True),
        ("floor-lifecycle", True, None, True, True),
        ("floor-lifecycle", False, "DAY", False, False),
        ("floor-lifecycle", False, "GTC", True, False),
        ("floor-control", True, "DAY", True, False),
    ],
)
def test_the_sniper_cancels_slices_and_the_lifecycle_key_day_orders_once_their_session_closed(
    agent_id: str, is_slice: bool, tif: str | None, closed: bool, allowed: bool
) -> None:
    refusal = parents.floor_cancel_refusal(
        agent_id, KEYS, target_is_slice=is_slice, target_tif=tif, session_closed=closed
    )
    assert refusal == (None if allowed else parents.FLOOR_KEY_OUT_OF_SCOPE)


def test_control_commands_carry_a_parent_and_an_amend_names_something_to_change() -> None:
    for kind in (CommandKind.ICEBERG_PAUSE, CommandKind.ICEBERG_RESUME, CommandKind.ICEBERG_CANCEL):
        command = _control(kind)
        assert Command.from_json_dict(command.to_json_dict()) == command
        with pytest.raises(CommandInvalid, match="parent_id"):
            _command(kind)
        with pytest.raises(CommandInvalid, match="symbol"):
            _control(kind, symbol="AAPL")
    with pytest.raises(CommandInvalid, match="iceberg_amend names"):
        _control(CommandKind.ICEBERG_AMEND)
    amend = _control(CommandKind.ICEBERG_AMEND, display_size=50)
    assert Command.from_json_dict(amend.to_json_dict()) == amend
