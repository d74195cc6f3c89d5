"""Who may act for an iceberg parent, and what: the rules intake applies to slices and controls.

An iceberg parent is an accepted ``iceberg`` command in the ledger. Its slices are ``enter``
commands naming it (``parent_id`` = the parent's workflow id, ``iceberg-<command id>``), signed
by the Sniper's service key; its controls are ``iceberg_amend`` / ``iceberg_pause`` /
``iceberg_resume`` / ``iceberg_cancel`` commands naming it the same way.

A slice is refused, first failure named:

1. ``iceberg.unknown_parent``  no accepted iceberg in the ledger under that id
2. ``iceberg.parent_mismatch`` the slice's account, symbol or side differ from the parent's
3. ``iceberg.parent_done``     the parent was cancelled or stopped, or its slices filled it
4. ``iceberg.over_total``      what the slices took (filled shares of ended slices, the whole
                               quantity of working ones) plus this slice's requested quantity
                               would exceed the parent's total

A control is refused when the parent is unknown (1), done (3), when its signer may not steer
this parent (``iceberg.not_allowed``: only the parent's author agent, or a key with the
operator role, may), or an amend would take the total below what the slices already took
(``iceberg.amend_below_taken``: the working slice may fill whole before its cancel lands).

The floor's own service keys (the Sniper, the lifecycle canceller) hold ``*`` so they can act
on any account, which must not make them a blank cheque: a service key may sign a slice of a
live parent and a cancel of an order the floor holds, nothing else
(``floor_key.out_of_scope``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from trading.commands import ICEBERG_CONTROLS, Command, CommandKind, Side

UNKNOWN_PARENT = "iceberg.unknown_parent"
PARENT_MISMATCH = "iceberg.parent_mismatch"
PARENT_DONE = "iceberg.parent_done"
OVER_TOTAL = "iceberg.over_total"
NOT_ALLOWED = "iceberg.not_allowed"
AMEND_BELOW_TAKEN = "iceberg.amend_below_taken"
FLOOR_KEY_OUT_OF_SCOPE = "floor_key.out_of_scope"

ROLE_OPERATOR = "operator"
ROLE_SERVICE = "service"
"""Key roles as the registry names them (:mod:`ledger.keys`)."""

WORKFLOW_PREFIX = "iceberg-"

STOPPED_BY_REVOCATION = "revoked"
"""``stopped`` of a parent whose author's key was revoked."""


def parent_workflow_id(command_id: str) -> str:
    """The id slices and controls name a parent by (also its ``Iceberg`` workflow's id)."""
    return f"{WORKFLOW_PREFIX}{command_id}"


def parent_command_id(parent_id: str) -> str | None:
    """The ledgered iceberg command id behind a ``parent_id``; None if it names no parent."""
    if not parent_id.startswith(WORKFLOW_PREFIX) or len(parent_id) == len(WORKFLOW_PREFIX):
        return None
    return parent_id[len(WORKFLOW_PREFIX) :]


@dataclass(frozen=True)
class Parent:
    """An accepted iceberg parent as intake tracks it (amends applied)."""

    command_id: str
    agent_id: str
    """The author: the agent that signed the ``iceberg`` command."""
    signer: str
    """The key id that signed it (a revocation of that key stops the parent)."""
    account: str
    symbol: str
    side: Side
    total: int
    display: int
    limit_price: Decimal | None = None
    stopped: str | None = None
    """Why the parent takes no more slices (``cancelled``, ``revoked``); None while live."""

    @property
    def workflow_id(self) -> str:
        return parent_workflow_id(self.command_id)

    @classmethod
    def from_command(cls, command: Command, signer: str) -> Parent:
        assert command.kind is CommandKind.ICEBERG
        assert command.symbol is not None and command.side is not None
        assert command.quantity is not None and command.display_size is not None
        return cls(
            command_id=command.command_id,
            agent_id=command.agent_id,
            signer=signer,
            account=command.account,
            symbol=command.symbol,
            side=command.side,
            total=command.quantity,
            display=command.display_size,
            limit_price=command.limit_price,
        )

    def after(self, control: Command) -> Parent:
        """This parent once ``control`` (an accepted control) has taken effect."""
        if control.kind is CommandKind.ICEBERG_CANCEL:
            return replace(self, stopped=self.stopped or "cancelled")
        if control.kind is CommandKind.ICEBERG_AMEND:
            return replace(
                self,
                total=control.quantity if control.quantity is not None else self.total,
                display=control.display_size if control.display_size is not None else self.display,
                limit_price=control.limit_price if control.limit_price is not None else self.limit_price,
            )
        return self


def done(parent: Parent, taken: int) -> bool:
    """``taken``: shares the parent's slices have taken (see :func:`slice_refusal`)."""
    return parent.stopped is not None or taken >= parent.total


def slice_refusal(command: Command, parent: Parent | None, taken: int) -> str | None:
    """Why intake refuses the slice ``command`` (None: it may proceed to sizing and risk).

    ``taken``: filled shares of the parent's ended slices plus the whole quantity of its working
    ones, as intake holds them now. The requested quantity is what is checked (the sizer may
    send less, never more); the Sniper asks for at most the total less what filled.
    """
    if parent is None:
        return UNKNOWN_PARENT
    if (command.account, command.symbol, command.side) != (parent.account, parent.symbol, parent.side):
        return PARENT_MISMATCH
    if done(parent, taken):
        return PARENT_DONE
    requested = command.quantity if command.quantity is not None else parent.total
    if taken + requested > parent.total:
        return OVER_TOTAL
    return None


def control_refusal(
    command: Command, parent: Parent | None, taken: int, *, signer_agent: str, signer_role: str
) -> str | None:
    """Why intake refuses the control ``command`` (None: ledger it and pass it on)."""
    assert command.kind in ICEBERG_CONTROLS
    if parent is None or parent.account != command.account:
        # Another account's parent is as unknown to this command as a missing one.
        return UNKNOWN_PARENT
    if signer_agent != parent.agent_id and signer_role != ROLE_OPERATOR:
        return NOT_ALLOWED
    if done(parent, taken):
        return PARENT_DONE
    amend = command.kind is CommandKind.ICEBERG_AMEND
    if amend and command.quantity is not None and command.quantity < taken:
        return AMEND_BELOW_TAKEN
    return None


def floor_key_refusal(command: Command, role: str) -> str | None:
    """A service key's command outside its scope (None: in scope, or not a service key). In
    scope are a slice (an ``enter`` naming a parent, which :func:`slice_refusal` then checks)
    and a ``cancel`` (which intake accepts only for an order it holds)."""
    if role != ROLE_SERVICE:
        return None
    if command.kind is CommandKind.ENTER and command.parent_id is not None:
        return None
    if command.kind is CommandKind.CANCEL:
        return None
    return FLOOR_KEY_OUT_OF_SCOPE
