"""A protective stop that ends without the floor asking is reported and placed again.

The Exit Manager's trailing exits protect positions. One can end at the broker for reasons the
floor did not choose: the broker rejects it, someone cancels it behind the floor's back (an
operator in TWS, another API client, the broker's own risk desk), or the broker no longer lists
it at a reconnect (:mod:`hotpath.reconciler` ends it). The floor's own cancels (a signed
``cancel`` or ``cancel_all``) stop its trailing first (:mod:`hotpath.cancel_commands`), so what
reaches :meth:`StopGuard.on_done` still tracked ended without the floor asking.

For each such stop, with shares left to protect (``quantity - filled``):

* ops event ``exits.stop_lost`` (critical): the order, why it ended, its last level;
* a new ``exit`` at that level with the same trailing rule, signed by the floor's control key
  (``floor-control``, which may sign exactly this: a reduce-only STP or TRAIL exit) and sent on
  ``agent.commands``. Intake decides it like any command (the sentry, the risk gate's
  reduce-only rule, the ledger entry committed before the broker sees it), so the replacement
  has the same write-ahead trail as the stop it replaces. Its id is the first stop's with
  ``.restop<n>``: a redelivered loss does not place two;
* ops event ``exits.stop_replaced`` (warning) naming the new command id;
* ``confirm_s`` later the replacement must be trailing at the broker (or already filled);
  otherwise ``exits.unprotected`` (critical): intake refused it (its refusal is in the ledger
  under the new command id) or it never arrived.

Not replaced, each as ``exits.unprotected`` (critical) with what to do: while the breaker has
the floor halted (its global cancel took the stop; intake refuses every order until re-armed),
without the control key, after :data:`MAX_REPLACEMENTS` replacements of one stop (a broker that
keeps refusing it), or when Kafka does not take the command.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bus.topics import AGENT_COMMANDS
from hotpath.exit_manager import ExitManager
from hotpath.floor_orders import FloorOrder
from trading.commands import Command, CommandKind, OrderType, TimeInForce, utc_now_ms
from trading.orders import OrderState
from trading.signing import SignedCommand, sign_command
from trading.trailing import TrailingStop

log = logging.getLogger(__name__)

STOP_LOST = "exits.stop_lost"
STOP_REPLACED = "exits.stop_replaced"
UNPROTECTED = "exits.unprotected"

MAX_REPLACEMENTS = 3
CONFIRM_S = 5.0
_GENERATION = re.compile(r"^(?P<root>.+)\.restop(?P<n>[0-9]+)$")

RecordOps = Callable[[str, str, Mapping[str, Any]], None]
Send = Callable[[SignedCommand], Awaitable[None]]
"""Produce a signed command to ``agent.commands`` (acknowledged)."""


def replacement_id(command_id: str) -> tuple[str, int]:
    """The id of the stop that replaces ``command_id``, and which replacement it is (1, 2, ...)."""
    match = _GENERATION.match(command_id)
    root, n = (match["root"], int(match["n"])) if match else (command_id, 0)
    return f"{root}.restop{n + 1}", n + 1


def replacement(order: FloorOrder, trailing: TrailingStop, agent_id: str, command_id: str) -> Command:
    """The exit that carries on protecting what ``order`` protected, from its last level."""
    return Command(
        kind=CommandKind.EXIT,
        command_id=command_id,
        agent_id=agent_id,
        account=order.account,
        nonce=uuid.uuid4().hex,
        issued_at=utc_now_ms(),
        symbol=order.symbol,
        side=order.side,
        order_type=OrderType.TRAIL,
        stop_price=trailing.stop,
        trail_amount=trailing.trail_amount,
        trail_percent=trailing.trail_percent,
        tif=TimeInForce(order.tif) if order.tif else TimeInForce.GTC,
        quantity=order.quantity - order.filled_qty,
    )


async def send_command(producer: Any, envelope: SignedCommand) -> None:
    """Produce ``envelope`` to ``agent.commands`` as the door does (keyed like its commands) and
    wait for the broker's acknowledgement."""
    command = envelope.command
    key = f"{command.account}/{command.symbol or ''}".encode()
    await producer.send_and_wait(AGENT_COMMANDS, envelope.to_wire(), key=key)


class StopGuard:
    def __init__(
        self,
        exits: ExitManager,
        orders: Mapping[str, FloorOrder],
        send: Send,
        key: Ed25519PrivateKey | None,
        agent_id: str,
        record_ops: RecordOps,
        halted: Callable[[], bool],
        confirm_s: float = CONFIRM_S,
    ) -> None:
        self._exits = exits
        self._orders = orders
        self._send = send
        self._key = key
        self._agent_id = agent_id
        self._record_ops = record_ops
        self._halted = halted
        self._confirm_s = confirm_s
        self._tasks: set[asyncio.Task[None]] = set()

    def on_done(self, order: FloorOrder) -> None:
        """An order ended (called from the broker's callbacks): stop trailing it and, if it was
        a protective stop the floor did not end, report it and place it again."""
        trailing = self._exits.trailing_of(order.symbol, order.command_id)
        self._exits.forget(order.symbol, order.command_id)
        state = order.machine.state
        if trailing is None or not order.reduce_only or state is OrderState.FILLED:
            return
        remaining = order.quantity - order.filled_qty
        if remaining <= 0:
            return
        detail: dict[str, Any] = {
            "command_id": order.command_id,
            "account": order.account,
            "symbol": order.symbol,
            "side": order.side.value,
            "state": state.value,
            "reason": order.machine.reason,
            "stop": str(trailing.stop),
            "unprotected_qty": remaining,
        }
        self._record_ops(STOP_LOST, "critical", detail)
        new_id, n = replacement_id(order.command_id)
        why = self._not_replaceable(n)
        if why is not None:
            self._unprotected(detail, why)
            return
        assert self._key is not None
        envelope = sign_command(replacement(order, trailing, self._agent_id, new_id), self._key)
        task = asyncio.get_running_loop().create_task(self._replace(envelope, detail))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _not_replaceable(self, n: int) -> str | None:
        if self._halted():
            return "the breaker halted the floor and cancelled every order; re-arm it, then place the stop"
        if self._key is None:
            return f"no {self._agent_id} key to sign a replacement: provision it (`floor up`); place it"
        if n > MAX_REPLACEMENTS:
            return f"lost after {MAX_REPLACEMENTS} replacements: find why the broker ends it; place it"
        return None

    async def _replace(self, envelope: SignedCommand, lost: dict[str, Any]) -> None:
        new_id = envelope.command.command_id
        try:
            await self._send(envelope)
        except Exception as exc:  # noqa: BLE001 - any failure leaves the position unprotected: say so
            why = f"the replacement was not sent ({exc}); place the stop by hand"
            self._unprotected({**lost, "replacement": new_id}, why)
            return
        self._record_ops(STOP_REPLACED, "warning", {**lost, "replacement": new_id})
        try:
            await asyncio.sleep(self._confirm_s)  # bounded: intake decides within it or it failed
        except asyncio.CancelledError:
            return
        order = self._orders.get(new_id)
        filled = order is not None and order.machine.state is OrderState.FILLED
        working = order is not None and (self._exits.tracking(new_id) or filled)
        if not working:
            why = (
                f"the replacement {new_id} is not working at the broker {self._confirm_s:g} s after it"
                " was sent; its decision is in the ledger under that id: place the stop by hand"
            )
            self._unprotected({**lost, "replacement": new_id}, why)

    def _unprotected(self, detail: dict[str, Any], advice: str) -> None:
        log.error("position unprotected: %s (%s)", detail, advice)
        self._record_ops(UNPROTECTED, "critical", {**detail, "advice": advice})

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
