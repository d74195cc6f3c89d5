"""Every position the floor's entries open is protected by a stop at the broker.

When an entry fills (each fill, coalesced per account and symbol), the floor makes sure the
position has stop orders for every share its desk's own exits do not already cover:

    covered by the floor's stops = |position| - shares on the desk's working exits (>= 0)

* **Short of that** (an entry filled, a desk exit was cancelled, a stop was lost): a stop for
  the rest is placed, a trailing ``exit`` signed by the floor's control key and sent through
  intake like any command (sentry, the reduce-only risk rule, the ledger entry committed before
  the broker sees it). Its rule is the position's: it starts at the newest filled entry's own
  stop (the edge's stop, or a manual entry's ``stop_loss``: the loss the sizing approved) and
  trails by that entry's distance to it (fill price to stop, on the tick grid) from the best
  price since (:mod:`hotpath.exit_manager`). A stop that replaces one lost carries on from the
  lost stop's level and rule. Ops event ``exits.protected`` (info).
* **Beyond it** (a desk exit now covers the shares, the position shrank, went flat or flipped):
  the floor's newest stops are cancelled at once until it is not, so the stops and exits
  working together never sell more than the position holds. The floor's own stops therefore
  do not count as exits for the risk gate (:class:`hotpath.account.AccountBook`): a desk's exit
  takes their place rather than being refused. Ops event ``exits.stop_withdrawn`` (info). These
  cancels are written directly (they only take risk away), as the breaker's are.

Positions left without stops by the breaker's trip (its global cancel takes every order; intake
refuses new ones while halted) are protected again within a second of the re-arm.

A position the floor cannot protect is never silent: ``exits.unprotected`` names it and what to
do, when no stop is known for it (a manual entry without ``stop_loss``, a position from before
the floor's records), while the breaker has the floor halted, without the control key, or when
a stop sent is not working ``confirm_s`` later (intake refused it: its refusal is in the ledger
under its command id). One that failed is not tried again until the position changes.

**A desk's exit never sells with the floor's stop.** The stop withdrawn for a desk's exit is
cancelled the moment the exit is decided, but it works until the broker confirms the cancel, and
a stop the market reaches in that moment would fill with the exit: past flat. So a desk's exit
is written to the broker only once the floor's stops and the desk's exits working together no
longer exceed the position (:meth:`ProtectiveStops.clearance`): the withdrawn stops have ended
at the broker, cancelled or filled. Intake then checks the exit again on the position as it is
now: if the stop filled first the exit would open a position and ends ``rejected``
(``risk.exit_exceeds_position``: the floor's stop closed it). A stop whose end is not confirmed
within ``withdraw_wait_s`` keeps the exit from the broker (``exits.stop_not_withdrawn``,
critical: the stop still protects the position; send the exit again). On IB this costs a desk's
exit one cancel round trip while the floor's stop overlaps it; an OCA group with
reduce-on-fill would avoid even that, where the broker has one.

Stops are only sent once :meth:`ProtectiveStops.start` is called, after start-up has restored
the order map and the broker's positions: before that a position may read flat that is not.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from brokers.base import BrokerError
from hotpath.account import AccountBook
from hotpath.exit_manager import DEFAULT_TICK, ExitManager
from hotpath.floor_orders import FloorOrder
from trading.commands import Command, CommandKind, OrderType, Side, TimeInForce, utc_now_ms
from trading.orders import OrderState
from trading.signing import SignedCommand, sign_command
from trading.trailing import round_to_tick

log = logging.getLogger(__name__)

PROTECTED = "exits.protected"
STOP_WITHDRAWN = "exits.stop_withdrawn"
STOP_REPLACED = "exits.stop_replaced"
UNPROTECTED = "exits.unprotected"
STOP_NOT_WITHDRAWN = "exits.stop_not_withdrawn"
"""A desk's exit not sent: the floor's stop it replaces did not end at the broker in time."""
CONFIRM_S = 5.0
WITHDRAW_WAIT_S = 2.0
"""How long a desk's exit waits for the floor's stops it replaces to end at the broker."""
MAX_LOSSES = 3
REARM_POLL_S = 1.0

RecordOps = Callable[[str, str, Mapping[str, Any]], None]
Send = Callable[[SignedCommand], Awaitable[None]]
Key = tuple[str, str]
"""(account, symbol)."""


@dataclass(frozen=True)
class StopRule:
    """Where a new stop for a position starts and how it trails."""

    stop: Decimal
    trail_amount: Decimal | None
    trail_percent: Decimal | None = None
    source: str = ""
    """The command whose stop this is (an entry, or a lost stop)."""


def entry_rule(entry: FloorOrder, tick: Decimal = DEFAULT_TICK) -> StopRule | None:
    """An entry's stop, on the tick grid away from the price (down for a long's, up for a
    short's: never less room than the desk gave it), and the distance from its average fill to
    that stop, at least one tick."""
    fill = entry.avg_fill_price
    if entry.stop_loss is None or fill is None:
        return None
    stop = round_to_tick(entry.stop_loss, tick, up=entry.side is Side.SELL)
    trail = max(round_to_tick(abs(fill - stop), tick, up=True), tick)
    return StopRule(stop, trail, None, entry.command_id)


@dataclass
class _Pending:
    key: Key
    side: Side
    quantity: int


class ProtectiveStops:
    def __init__(
        self,
        exits: ExitManager,
        orders: Mapping[str, FloorOrder],
        book: AccountBook,
        send: Send,
        cancel: Callable[[str], object],
        key: Ed25519PrivateKey | None,
        agent_id: str,
        record_ops: RecordOps,
        halted: Callable[[], bool],
        *,
        confirm_s: float = CONFIRM_S,
        withdraw_wait_s: float = WITHDRAW_WAIT_S,
        enabled: bool = True,
    ) -> None:
        self._exits = exits
        self._orders = orders
        self._book = book
        self._send = send
        self._cancel = cancel
        self._key = key
        self.agent_id = agent_id
        self._record_ops = record_ops
        self._halted = halted
        self._confirm_s = confirm_s
        self._withdraw_wait_s = withdraw_wait_s
        self.enabled = enabled
        self._started = False
        self._due: set[Key] = set()
        self._stops: dict[Key, dict[str, FloorOrder]] = {}
        """The floor's working stops per position (insertion order: oldest first)."""
        self._entries: dict[Key, dict[str, FloorOrder]] = {}
        """Entries with a stop per position, newest last: where a new stop's rule comes from."""
        self._carried: dict[Key, tuple[StopRule, str]] = {}
        """A lost stop's rule, for the stop that replaces it (and the lost stop's id)."""
        self._pending: dict[str, _Pending] = {}
        """Stops sent and not yet working (or refused)."""
        self._cancelling: set[str] = set()
        self._losses: dict[Key, tuple[int, int]] = {}
        """Stops lost in a row at one position: (position, count)."""
        self._desk_cancelled: dict[Key, str] = {}
        """A floor stop a desk's signed cancel ended: that position stays as the desk left it."""
        self._while_halted: set[Key] = set()
        """Positions not protected because the breaker had the floor halted: protected once re-armed."""
        self._failed: dict[Key, int] = {}
        """Position at which protecting it last failed: not tried again until it changes."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._clearing: dict[Key, list[asyncio.Future[bool]]] = {}
        """Desk exits waiting for the floor's stops of their position to end at the broker."""

    # --- what the hot path tells it ----------------------------------------------------------

    def on_change(self, account: str, symbol: str, command_id: str) -> None:
        """The account book changed for ``command_id`` (a fill, or it started or ended working):
        look at the position once the current callbacks are through."""
        order = self._orders.get(command_id)
        key = (account, symbol)
        if order is not None:
            if (
                order.protective
                and order.done
                and order.broker_order_id is None
                and command_id in self._pending
            ):
                # Ledgered, then not sent after all (the breaker moved during its commit, say):
                # intake refused it, the desk did not cancel it.
                self._refused(key, order)
            elif order.done and order.protective and order.machine.state is not OrderState.FILLED:
                if command_id not in self._cancelling:
                    # Not withdrawn by the floor: a desk's cancel, unless lost() says it was lost.
                    self._desk_cancelled[key] = command_id
            if order.done:
                self._cancelling.discard(command_id)
            if order.protective:
                self._pending.pop(command_id, None)
                if not order.done:
                    self._stops.setdefault(key, {})[command_id] = order
            elif not order.reduce_only and order.stop_loss is not None:
                self._entries.setdefault(key, {})[command_id] = order
        self._schedule(key)
        self._clear(key)

    def clearance(self, order: FloorOrder) -> asyncio.Future[bool] | None:
        """For a desk's exit about to be written to the broker (counted working since its
        decision): None when it may go now, else a future that is True once the floor's stops
        of its position, with the desk's exits, no longer exceed the position (the stops
        withdrawn for it have ended at the broker, cancelled or filled), False after
        ``withdraw_wait_s`` (said as ``exits.stop_not_withdrawn``)."""
        if not self.enabled or not order.reduce_only or order.protective:
            return None
        key = (order.account, order.symbol)
        if key in self._due and self._started:
            self._rebalance(key)  # its withdrawal not yet sent: send it now
        if self._excess(key) <= 0:
            return None
        loop = asyncio.get_running_loop()
        cleared: asyncio.Future[bool] = loop.create_future()
        self._clearing.setdefault(key, []).append(cleared)

        def too_late() -> None:
            if cleared.done():
                return
            cleared.set_result(False)
            stops = [o.command_id for o in self._floor_stops(key) if not o.done]
            detail = {"command_id": order.command_id, "account": key[0], "symbol": key[1], "stops": stops}
            why = (
                f"the floor's stops did not end at the broker within {self._withdraw_wait_s:g} s; the"
                " exit was not sent so the position is not sold twice; the stops still protect it:"
                " send the exit again"
            )
            log.error("%s: %s %s", STOP_NOT_WITHDRAWN, detail, why)
            self._record_ops(STOP_NOT_WITHDRAWN, "critical", {**detail, "advice": why})

        timer = loop.call_later(self._withdraw_wait_s, too_late)
        cleared.add_done_callback(lambda _: timer.cancel())
        return cleared

    def _excess(self, key: Key) -> int:
        """Shares the floor's stops (working, being withdrawn, or sent and not yet working) and
        the desk's working exits would sell beyond the position if all of them filled."""
        account, symbol = key
        position = self._book.position(account, symbol)
        if position == 0:
            return 0
        closing = Side.SELL if position > 0 else Side.BUY
        desk_exits = self._book.working_qty(account, symbol, closing, exits_only=True)
        floor = sum(_remaining(o) for o in self._floor_stops(key) if o.side is closing and not o.done)
        floor += sum(p.quantity for p in self._pending.values() if p.key == key and p.side is closing)
        return desk_exits + floor - abs(position)

    def _floor_stops(self, key: Key) -> list[FloorOrder]:
        """The floor's stops of a position the broker may still fill: working, or withdrawn and
        not yet confirmed ended."""
        stops = dict(self._stops.get(key, {}))
        for command_id in self._cancelling:
            order = self._orders.get(command_id)
            if order is not None and (order.account, order.symbol) == key:
                stops[command_id] = order
        return list(stops.values())

    def _clear(self, key: Key) -> None:
        waiting = self._clearing.get(key)
        if not waiting or self._excess(key) > 0:
            return
        del self._clearing[key]
        for cleared in waiting:
            if not cleared.done():
                cleared.set_result(True)

    def lost(self, order: FloorOrder, rule: StopRule) -> None:
        """One of the floor's stops ended without the floor asking: the next stop for its
        position carries on from its level and rule."""
        key = (order.account, order.symbol)
        self._desk_cancelled.pop(key, None)
        position = self._book.position(*key)
        at, count = self._losses.get(key, (position, 0))
        count = count + 1 if at == position else 1
        self._losses[key] = (position, count)
        if count > MAX_LOSSES:
            # A broker that ends every stop sent: no more sending, somebody must look.
            self._failed[key] = position
            detail = {
                "command_id": order.command_id,
                "account": key[0],
                "symbol": key[1],
                "position": position,
            }
            self._unprotected(
                detail, f"lost {count} stops in a row: find why the broker ends them; place one by hand"
            )
            return
        self._carried[key] = (rule, order.command_id)
        self._failed.pop(key, None)
        self._schedule(key)

    def replace(self, command: Command, lost: dict[str, Any]) -> bool:
        """Send ``command`` (a desk's lost stop placed again) as one of the floor's stops.
        False (and ``exits.unprotected``) if it cannot be."""
        why = self._cannot_send()
        if why is not None:
            self._unprotected(lost, why)
            return False
        assert command.symbol is not None and command.side is not None and command.quantity is not None
        self._sign_and_send(command, (command.account, command.symbol), STOP_REPLACED, "warning", lost)
        return True

    def start(self) -> None:
        """Start-up is over (positions and orders are the broker's): protect what needs it."""
        self._started = True
        for key in list(self._due):
            self._rebalance(key)

    def rearmed(self) -> None:
        """If the floor is no longer halted, protect the positions the halt left without stops
        (the breaker's global cancel took them): each is looked at again."""
        if self._halted() or not self._while_halted:
            return
        keys, self._while_halted = self._while_halted, set()
        for key in keys:
            self._failed.pop(key, None)
            self._schedule(key)

    async def run(self, poll_s: float = REARM_POLL_S) -> None:
        """Notice a re-arm (a signed command, decided by intake) within ``poll_s``."""
        while True:
            await asyncio.sleep(poll_s)
            self.rearmed()

    # --- the rule ----------------------------------------------------------------------------

    def _schedule(self, key: Key) -> None:
        if key in self._due:
            return
        self._due.add(key)
        if self._started:
            asyncio.get_running_loop().call_soon(self._rebalance, key)

    def _rebalance(self, key: Key) -> None:
        self._due.discard(key)
        if not self.enabled:
            return
        account, symbol = key
        position = self._book.position(account, symbol)
        closing = Side.SELL if position > 0 else Side.BUY
        stops = self._working_stops(key)
        for order in [o for o in stops if position == 0 or o.side is not closing]:
            self._withdraw(order, "the position is flat or on the other side")
            stops.remove(order)
        if position == 0:
            self._failed.pop(key, None)
            return
        cancelled = self._desk_cancelled.pop(key, None)
        if cancelled is not None:
            # The desk cancelled the floor's stop (cancel, cancel_all): not placed again at this
            # position, but said (the next fill or exit of the position protects it again).
            self._failed[key] = position
            detail = {"command_id": cancelled, "account": account, "symbol": symbol, "position": position}
            self._unprotected(detail, "the desk cancelled the position's stop: send an exit stop", "warning")
        desk_exits = self._book.working_qty(account, symbol, closing, exits_only=True)
        need = max(0, abs(position) - desk_exits)
        pending = sum(p.quantity for p in self._pending.values() if p.key == key and p.side is closing)
        have = sum(_remaining(o) for o in stops) + pending
        while have > need and stops:
            newest = stops.pop()
            self._withdraw(newest, f"the desk's exits cover {desk_exits} of {abs(position)} shares")
            have -= _remaining(newest)
        if have >= need or self._failed.get(key) == position:
            return
        self._protect(key, position, closing, need - have)

    def _covered(self, key: Key) -> bool:
        account, symbol = key
        position = self._book.position(account, symbol)
        if position == 0:
            return True
        closing = Side.SELL if position > 0 else Side.BUY
        desk_exits = self._book.working_qty(account, symbol, closing, exits_only=True)
        pending = sum(p.quantity for p in self._pending.values() if p.key == key and p.side is closing)
        have = sum(_remaining(o) for o in self._working_stops(key) if o.side is closing) + pending
        return have >= abs(position) - desk_exits

    def _working_stops(self, key: Key) -> list[FloorOrder]:
        stops = self._stops.get(key, {})
        for command_id in [c for c, o in stops.items() if o.done or c in self._cancelling]:
            del stops[command_id]
        return list(stops.values())

    def _rule(self, key: Key, position: int) -> StopRule | None:
        carried = self._carried.get(key)
        if carried is not None:
            return carried[0]
        opening = Side.BUY if position > 0 else Side.SELL
        entries = self._entries.get(key, {})
        for command_id in [c for c, o in entries.items() if o.done and o.filled_qty == 0]:
            del entries[command_id]
        for entry in reversed(entries.values()):
            if entry.side is opening and entry.filled_qty > 0:
                return entry_rule(entry)
        return None

    def _protect(self, key: Key, position: int, closing: Side, quantity: int) -> None:
        account, symbol = key
        detail: dict[str, Any] = {
            "account": account,
            "symbol": symbol,
            "position": position,
            "uncovered": quantity,
        }
        rule = self._rule(key, position)
        why = self._cannot_send()
        if rule is None:
            why = "no stop is known for this position (an entry without a stop): send an exit stop for it"
        if why is not None:
            self._failed[key] = position
            if rule is not None and self._halted():
                self._while_halted.add(key)
            self._unprotected(detail, why, severity="warning" if rule is None else "critical")
            return
        assert rule is not None
        carried = self._carried.pop(key, None)
        command = Command(
            kind=CommandKind.EXIT,
            command_id=f"{rule.source}.stop-{uuid.uuid4().hex[:8]}",
            agent_id=self.agent_id,
            account=account,
            nonce=uuid.uuid4().hex,
            issued_at=utc_now_ms(),
            symbol=symbol,
            side=closing,
            order_type=OrderType.TRAIL,
            stop_price=rule.stop,
            trail_amount=rule.trail_amount,
            trail_percent=rule.trail_percent,
            tif=TimeInForce.GTC,
            quantity=quantity,
        )
        detail.update(stop=str(rule.stop), trail_amount=_text(rule.trail_amount), from_command=rule.source)
        if carried is not None:
            self._sign_and_send(command, key, STOP_REPLACED, "warning", {**detail, "command_id": carried[1]})
        else:
            self._sign_and_send(command, key, PROTECTED, "info", detail)

    def _refused(self, key: Key, order: FloorOrder) -> None:
        """A stop of the floor's that intake ended before the broker saw it: said at once (not
        ``confirm_s`` later) and not tried again at this position; after a halt, once re-armed."""
        pending = self._pending.pop(order.command_id, None)
        if pending is None or self._covered(key):
            return
        position = self._book.position(*key)
        self._failed[key] = position
        if self._halted():
            self._while_halted.add(key)
        detail = {
            "account": key[0],
            "symbol": key[1],
            "position": position,
            "stop_command_id": order.command_id,
            "quantity": pending.quantity,
            "reason": order.machine.reason,
        }
        self._unprotected(detail, f"intake did not send the stop {order.command_id}: place a stop by hand")

    def _cannot_send(self) -> str | None:
        if self._halted():
            return "the breaker halted the floor (intake refuses every order); re-arm it, then place the stop"
        if self._key is None:
            return f"no {self.agent_id} key to sign a stop: provision it (`floor up`); place the stop by hand"
        return None

    def _sign_and_send(
        self, command: Command, key: Key, kind: str, severity: str, detail: dict[str, Any]
    ) -> None:
        assert self._key is not None and command.side is not None and command.quantity is not None
        envelope = sign_command(command, self._key)
        self._pending[command.command_id] = _Pending(key, command.side, command.quantity)
        task = asyncio.get_running_loop().create_task(
            self._send_and_confirm(envelope, key, kind, severity, detail)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_and_confirm(
        self, envelope: SignedCommand, key: Key, kind: str, severity: str, detail: dict[str, Any]
    ) -> None:
        command_id = envelope.command.command_id
        detail = {**detail, "stop_command_id": command_id, "quantity": envelope.command.quantity}
        try:
            await self._send(envelope)
        except Exception as exc:  # noqa: BLE001 - any failure leaves the position unprotected: say so
            self._pending.pop(command_id, None)
            self._clear(key)  # a desk exit waiting on this stop need not any more
            self._failed[key] = self._book.position(*key)
            self._unprotected(detail, f"the stop was not sent ({exc}); place it by hand")
            return
        self._record_ops(kind, severity, detail)
        try:
            await asyncio.sleep(self._confirm_s)  # bounded: intake decides within it, or it failed
        except asyncio.CancelledError:
            return
        if self._pending.pop(command_id, None) is None:
            return  # it started working
        self._clear(key)
        order = self._orders.get(command_id)
        if order is not None and order.machine.state is OrderState.FILLED:
            return
        if self._covered(key):
            return  # refused, but the position no longer needs it (a desk exit, a fill since)
        self._failed[key] = self._book.position(*key)
        why = (
            f"the stop {command_id} is not working {self._confirm_s:g} s after it was sent; its decision"
            " is in the ledger under that id: place a stop by hand"
        )
        self._unprotected(detail, why)

    def _withdraw(self, order: FloorOrder, why: str) -> None:
        self._cancelling.add(order.command_id)
        self._exits.forget(order.symbol, order.command_id)  # the floor's cancel is no lost stop
        try:
            self._cancel(order.command_id)
        except BrokerError as exc:
            log.warning("withdrawing stop %s: %s", order.command_id, exc)
        self._record_ops(
            STOP_WITHDRAWN,
            "info",
            {"command_id": order.command_id, "account": order.account, "symbol": order.symbol, "why": why},
        )

    def _unprotected(self, detail: Mapping[str, Any], advice: str, severity: str = "critical") -> None:
        log.error("position unprotected: %s (%s)", dict(detail), advice)
        self._record_ops(UNPROTECTED, severity, {**detail, "advice": advice})

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _remaining(order: FloorOrder) -> int:
    return max(order.quantity - order.filled_qty, 0)


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)
