"""Who may act for an iceberg parent, and what: the rules intake applies to slices and controls.

An iceberg parent is an accepted ``iceberg`` command in the ledger. Its slices are ``enter``
commands naming it (``parent_id`` = the parent's workflow id, ``iceberg-<command id>``), signed
by the Sniper's service key; its controls are ``iceberg_amend`` / ``iceberg_pause`` /
``iceberg_resume`` / ``iceberg_cancel`` commands naming it the same way.

A slice is refused, first failure named:

1. ``iceberg.unknown_parent``  no accepted iceberg in the ledger under that id
2. ``iceberg.parent_mismatch`` the slice's account, symbol or side differ from the parent's
   ``iceberg.slice_off_terms`` the slice is not a limit order, its limit is through the
                               parent's (above it for a BUY, below for a SELL), or its time in
                               force is not the parent's
3. ``iceberg.parent_done``     the parent was cancelled or stopped, or its slices filled it
4. ``iceberg.over_total``      what the slices took (filled shares of ended slices, the whole
                               quantity of working ones) plus this slice's requested quantity
                               would exceed the parent's total

A control is refused when the parent is unknown (1), done (3), when its signer may not steer
this parent (``iceberg.not_allowed``: only the parent's author agent, or a key with the
operator role, may), or an amend would take the total below what the slices already took
(``iceberg.amend_below_taken``: the working slice may fill whole before its cancel lands).

Only the Sniper signs slices: a slice signed by any other key, an agent's or an operator's
included, is ``iceberg.not_slicer`` (an agent works its parent through the Sniper, not around
it). The floor's own service keys hold ``*`` so they can act on any account, which must not
make them a blank cheque; each is scoped by its agent id (:class:`FloorKeys`), and anything
outside its scope is ``floor_key.out_of_scope``:

* the Sniper (the worker's configured slicer): slices, and cancels of slices;
* the lifecycle canceller (``floor-lifecycle``): cancels of DAY orders, at or after the close
  of the session the order was accepted in (an order's expiry, nothing earlier);
* the hot path's control key (``floor-control``): a protective stop placed again, i.e. an
  ``exit`` of type STP or TRAIL (:mod:`hotpath.stop_guard`); like any exit it passes the risk
  gate only if it shrinks the position;
* every other service key (``floor-breaker``, ``floor-ledger``, ``floor-hotpath``,
  ``floor-reconcile``): nothing through intake; each signs its own records elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal

from trading.commands import ICEBERG_CONTROLS, Command, CommandKind, OrderType, Side, TimeInForce

UNKNOWN_PARENT = "iceberg.unknown_parent"
PARENT_MISMATCH = "iceberg.parent_mismatch"
PARENT_DONE = "iceberg.parent_done"
OVER_TOTAL = "iceberg.over_total"
NOT_ALLOWED = "iceberg.not_allowed"
AMEND_BELOW_TAKEN = "iceberg.amend_below_taken"
FLOOR_KEY_OUT_OF_SCOPE = "floor_key.out_of_scope"
NOT_SLICER = "iceberg.not_slicer"
SLICE_OFF_TERMS = "iceberg.slice_off_terms"

ROLE_OPERATOR = "operator"
ROLE_SERVICE = "service"
"""Key roles as the registry names them (:mod:`ledger.keys`)."""

WORKFLOW_PREFIX = "iceberg-"

STOPPED_BY_REVOCATION = "revoked"
"""``stopped`` of a parent whose author's key was revoked."""

SNIPER = "sniper"
LIFECYCLE = "floor-lifecycle"
CONTROL = "floor-control"
"""The agent ids ``floor up`` provisions for the Sniper, the lifecycle canceller and the hot
path's own commands."""
STOP_TYPES = frozenset({OrderType.STP, OrderType.TRAIL})


@dataclass(frozen=True)
class FloorKeys:
    """Which of the floor's service agents does what (the worker's configuration)."""

    slicers: frozenset[str] = field(default_factory=lambda: frozenset({SNIPER}))
    """Agents whose service key signs slices (the worker's ``--sniper-agent``)."""
    lifecycle: str = LIFECYCLE
    """The agent whose service key cancels DAY orders at their session's close."""
    control: str = CONTROL
    """The hot path's key: it places a lost protective stop again."""


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
    tif: TimeInForce = TimeInForce.DAY
    """The parent's time in force, which each slice carries (a DAY parent ends at the close)."""
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
            tif=command.tif or TimeInForce.DAY,
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
    if off_terms(command, parent):
        return SLICE_OFF_TERMS
    if done(parent, taken):
        return PARENT_DONE
    requested = command.quantity if command.quantity is not None else parent.total
    if taken + requested > parent.total:
        return OVER_TOTAL
    return None


def off_terms(command: Command, parent: Parent) -> bool:
    """True when the slice is not what the Sniper sends for this parent: a limit order, priced
    at or inside the parent's limit (if it has one), with the parent's time in force. A market
    slice or one priced through the limit would fill where the parent's author never agreed to."""
    if command.order_type is not OrderType.LMT or command.limit_price is None:
        return True
    if (command.tif or TimeInForce.DAY) is not parent.tif:
        return True
    if parent.limit_price is None:
        return False
    if parent.side is Side.BUY:
        return command.limit_price > parent.limit_price
    return command.limit_price < parent.limit_price


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


def floor_key_refusal(command: Command, role: str, agent_id: str, keys: FloorKeys) -> str | None:
    """Why a command is outside its signer's scope (None: in scope, or checked later). A slice
    (an ``enter`` naming a parent) is the Sniper's alone; the control key may sign a stop
    ``exit``; a service key may otherwise sign only a ``cancel``, and only the Sniper and the
    lifecycle canceller may (which orders they may
    cancel is :func:`floor_cancel_refusal`'s, once intake knows the target)."""
    if command.kind is CommandKind.ENTER and command.parent_id is not None:
        if role == ROLE_SERVICE and agent_id in keys.slicers:
            return None
        return FLOOR_KEY_OUT_OF_SCOPE if role == ROLE_SERVICE else NOT_SLICER
    if role != ROLE_SERVICE:
        return None
    if command.kind is CommandKind.CANCEL and (agent_id in keys.slicers or agent_id == keys.lifecycle):
        return None
    if command.kind is CommandKind.EXIT and agent_id == keys.control and command.order_type in STOP_TYPES:
        return None
    return FLOOR_KEY_OUT_OF_SCOPE


def floor_cancel_refusal(
    agent_id: str, keys: FloorKeys, *, target_is_slice: bool, target_tif: str | None, session_closed: bool
) -> str | None:
    """Why a service key's cancel of this order is out of scope (None: it may cancel it). The
    Sniper cancels slices only; the lifecycle canceller only a DAY order whose session has
    closed (``target_tif`` None is DAY, as the broker takes it)."""
    if agent_id in keys.slicers and target_is_slice:
        return None
    if agent_id == keys.lifecycle and (target_tif or TimeInForce.DAY.value) == TimeInForce.DAY.value:
        return None if session_closed else FLOOR_KEY_OUT_OF_SCOPE
    return FLOOR_KEY_OUT_OF_SCOPE
