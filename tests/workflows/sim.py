"""A scripted stand-in for intake + broker, for workflow tests only: activities with the
production names that answer each command the way a venue would, by signalling the workflow
exactly as the bridge does. Real Temporal, real workflow code; only the far side is scripted.

Control goes the production way: :class:`Controller` appends a signed ``iceberg_*`` command to
the real ledger as intake would and signals its id as the bridge would, and the workflow reads
it back through the real ``read_control`` activity (the venue's activities include it)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError

from activities.commands import CancelCommandRequest, OrderCommandRequest, PublishResult
from activities.control import ControlActivities
from activities.iceberg_parent import ParentCheck, ParentCheckRequest
from activities.lifecycle_order import LedgeredOrder, LifecycleOrderRequest
from activities.market import NoQuote, QuoteRequest, QuoteResult
from activities.record_writers import RecordWriter, Writers, WritersRequest
from bus.topics import ORDERS_EVENTS
from ledger.append import Decision, append_command
from tests.factories import Agent
from tests.helpers import eventually
from trading.commands import Command, CommandKind, utc_now_ms
from trading.order_events import EventKind, OrderEvent, encode
from trading.orders import Fill
from trading.record_signing import HOTPATH_WRITER, sign_record
from trading.signing import generate_private_key, key_id, public_key_bytes
from workflows.iceberg import ControlSignal, Iceberg, ProgressQuery
from workflows.signed_events import SignedOrderEvent

WRITER_KEY = generate_private_key()
"""Signs the scripted venue's slice records, as the hot path's key signs the real ones."""


WRITER = RecordWriter(key_id(WRITER_KEY), HOTPATH_WRITER, public_key_bytes(WRITER_KEY).hex())


def signed_event(event: OrderEvent) -> SignedOrderEvent:
    """The record the bridge sends a workflow for ``event``, signed by :data:`WRITER_KEY`."""
    return SignedOrderEvent(sign_record(ORDERS_EVENTS, encode(event), WRITER_KEY).decode())


@activity.defn(name="check_iceberg_parent")
async def check_iceberg_parent(req: ParentCheckRequest) -> ParentCheck:
    """The parent check passes (these tests are about working a genuine parent; the check
    itself is tested against the real ledger) and names :data:`WRITER_KEY` as the writer."""
    return ParentCheck(activity.info().workflow_id or "", None, writers=[WRITER])


@activity.defn(name="record_writers")
async def record_writers(_: WritersRequest) -> Writers:
    """:data:`WRITER_KEY` is the one writer of ``orders.events`` (the registry's answer is tested
    against the real ledger)."""
    return Writers([WRITER])


@dataclass
class LedgerOrders:
    """Stands in for the ledger's order entries, for workflow tests of the lifecycle (the real
    activity is tested against the real ledger): an order added here is held as accepted."""

    orders: dict[str, LedgeredOrder] = field(default_factory=dict)

    def add(
        self,
        command_id: str,
        expires_at: datetime | None,
        *,
        tif: str = "DAY",
        account: str = "DU1",
        symbol: str = "MSFT",
        side: str = "BUY",
    ) -> None:
        self.orders[command_id] = LedgeredOrder(
            command_id, None, account, symbol, side, tif, expires_at, "floor-lifecycle"
        )

    @activity.defn(name="lifecycle_order")
    async def lifecycle_order(self, req: LifecycleOrderRequest) -> LedgeredOrder:
        return self.orders.get(req.command_id) or LedgeredOrder(req.command_id, "not in the ledger")


async def taken_up(handle: WorkflowHandle[Iceberg, Any], command_id: str) -> None:
    """Until the Iceberg has applied the control ``command_id``, or refused it with a note.

    It reads the control from the ledger by an activity, so not at once: a caller that steers
    the workflow mid-activity waits until it has, as a signal applied in place used to."""

    async def noted() -> bool:
        notes = (await handle.query(Iceberg.progress, ProgressQuery())).notes
        return any(command_id in n for n in notes)

    await eventually(noted, timeout=30)


@dataclass(frozen=True)
class Controller:
    """Steers an Iceberg as the floor does: ``agent`` signs an ``iceberg_*`` command, which is
    ledgered as accepted (intake's part) and named to the workflow by the ``control`` signal
    (the bridge's part)."""

    pool: asyncpg.Pool
    agent: Agent
    account: str = "DU1"

    async def ledgered(
        self, workflow_id: str, kind: CommandKind, command_id: str | None = None, **fields: Any
    ) -> str:
        """Only intake's part: the control, accepted, in the ledger. Returns its command id."""
        command = Command(
            kind=kind, command_id=command_id or f"ctl-{uuid.uuid4().hex}", agent_id=self.agent.agent_id,
            account=self.account, nonce=uuid.uuid4().hex, issued_at=utc_now_ms(), parent_id=workflow_id,
            **fields,
        )  # fmt: skip
        await append_command(
            self.pool, self.agent.sign(command), decision=Decision.ACCEPTED, detail={"parent_id": workflow_id}
        )
        return command.command_id

    async def send(self, client: Client, workflow_id: str, kind: CommandKind, **fields: Any) -> str:
        command_id = await self.ledgered(workflow_id, kind, **fields)
        handle = client.get_workflow_handle_for(Iceberg.run, workflow_id)
        await handle.signal(Iceberg.control, ControlSignal(command_id))
        await taken_up(handle, command_id)
        return command_id

    async def pause(self, client: Client, workflow_id: str) -> str:
        return await self.send(client, workflow_id, CommandKind.ICEBERG_PAUSE)

    async def resume(self, client: Client, workflow_id: str) -> str:
        return await self.send(client, workflow_id, CommandKind.ICEBERG_RESUME)

    async def cancel(self, client: Client, workflow_id: str) -> str:
        return await self.send(client, workflow_id, CommandKind.ICEBERG_CANCEL)

    async def amend(self, client: Client, workflow_id: str, **fields: Any) -> str:
        return await self.send(client, workflow_id, CommandKind.ICEBERG_AMEND, **fields)


Behaviour = str
"""``fill`` (fills at once), ``partial:N`` (fills N, then rests), ``rest`` (no fill),
``reject``, ``ignore-cancel`` (rests and never confirms the first cancel), ``stale-copy``
(rests; a refusal of a repeated delivery of it arrives), ``late-fill:N`` (rests; N fill as the
cancel goes in: the cancel confirmation reports them, their execution arrives only after the
next slice is sent, or when the parent has sent no next slice, once everything else is over)."""


@dataclass
class SimVenue:
    bid: Decimal = Decimal("100.00")
    ask: Decimal = Decimal("100.04")
    script: Callable[[int], Behaviour] = lambda n: "fill"
    orders: list[OrderCommandRequest] = field(default_factory=list)
    cancels: list[CancelCommandRequest] = field(default_factory=list)
    filled: dict[str, int] = field(default_factory=dict)
    duplicate_events: bool = True
    on_slice: Callable[[int, OrderCommandRequest], Awaitable[None]] | None = None
    """Called after each new slice is answered: lets a test signal the workflow mid-run."""
    on_quote: Callable[[int, str], Awaitable[None]] | None = None
    """Called during the n-th quote with the workflow id, before the quote is answered: lets a
    test signal the workflow while it awaits the quote."""
    quotes: int = 0
    quote_fails: Callable[[int], bool] = lambda n: False
    """Whether the n-th quote attempt (each activity retry counts) finds no usable book."""
    publish_fails: Callable[[str, int], bool] = lambda suffix, n: False
    """Whether the n-th publish attempt of a command fails as intake unreachable; the command
    is named by what follows the workflow id (``s0002``, ``s0001.x1``)."""
    publish_attempts: dict[str, int] = field(default_factory=dict)
    late: list[tuple[OrderCommandRequest, int]] = field(default_factory=list)
    """Executions racing a cancel, not yet delivered."""
    ledger: asyncpg.Pool | None = None
    """Where ``read_control`` reads controls (None: the workflow gets no control activity)."""
    closes_at: datetime | None = None
    """The session close the parent check gives a DAY parent (None: no expiry)."""
    writers: list[RecordWriter] = field(default_factory=lambda: [WRITER])
    """The registry's unrevoked ``orders.events`` writers, as the parent check and
    ``record_writers`` report them (a test revokes one by removing it)."""
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def activities(self) -> list[Callable[..., object]]:
        @activity.defn(name="get_quote")
        async def get_quote(req: QuoteRequest) -> QuoteResult:
            self.quotes += 1
            if self.on_quote is not None:
                await self.on_quote(self.quotes, activity.info().workflow_id)
            if self.quote_fails(self.quotes):
                raise NoQuote(req.symbol, "one side of the book is empty")
            return QuoteResult(req.symbol, self.bid, self.ask, Decimal("0.01"), datetime.now(UTC))

        @activity.defn(name="publish_order")
        async def publish_order(req: OrderCommandRequest) -> PublishResult:
            self._maybe_unreachable(req.command_id)
            first = all(o.command_id != req.command_id for o in self.orders)
            self.orders.append(req)
            if first:
                await self._answer_order(req)
                await self.deliver_late_fills()
                if self.on_slice is not None:
                    await self.on_slice(int(req.command_id.rsplit(".s", 1)[1]), req)
            return PublishResult(req.command_id, 0, len(self.orders))

        @activity.defn(name="publish_cancel")
        async def publish_cancel(req: CancelCommandRequest) -> PublishResult:
            self._maybe_unreachable(req.command_id)
            self.cancels.append(req)
            order = next(o for o in self.orders if o.command_id == req.target_command_id)
            if self.filled.get(order.command_id, 0) >= order.quantity:
                return PublishResult(req.command_id, 0, len(self.cancels))
            if self._behaviour(order) == "ignore-cancel" and req.command_id.endswith(".x1"):
                return PublishResult(req.command_id, 0, len(self.cancels))
            behaviour = self._behaviour(order)
            if behaviour.startswith("late-fill:"):
                late = min(int(behaviour.split(":")[1]), order.quantity)
                await self._send(order, EventKind.CANCELLED, None, reason=req.reason, broker_filled=late)
                self.late.append((order, late))
                return PublishResult(req.command_id, 0, len(self.cancels))
            await self._send(order, EventKind.CANCELLED, None, reason=req.reason)
            return PublishResult(req.command_id, 0, len(self.cancels))

        @activity.defn(name="check_iceberg_parent")
        async def check_parent(req: ParentCheckRequest) -> ParentCheck:
            """As :func:`check_iceberg_parent`, with this venue's session close as the expiry."""
            return ParentCheck(
                activity.info().workflow_id or "", None, writers=list(self.writers), expires_at=self.closes_at
            )

        @activity.defn(name="record_writers")
        async def current_writers(_: WritersRequest) -> Writers:
            return Writers(list(self.writers))

        controls = [] if self.ledger is None else [ControlActivities(self.ledger).read_control]
        return [get_quote, publish_order, publish_cancel, check_parent, current_writers, *controls]

    async def deliver_late_fills(self, client: Client | None = None) -> None:
        """Send the executions that raced a cancel (``client``: when called outside an activity)."""
        while self.late:
            order, qty = self.late.pop(0)
            kind = EventKind.FILLED if qty == order.quantity else EventKind.PARTIALLY_FILLED
            await self._send(order, kind, qty, client=client)

    def _maybe_unreachable(self, command_id: str) -> None:
        suffix = command_id.split(".", 1)[1]
        n = self.publish_attempts[suffix] = self.publish_attempts.get(suffix, 0) + 1
        if self.publish_fails(suffix, n):
            raise ApplicationError(f"intake unreachable (attempt {n} of {suffix})", type="Unreachable")

    def _behaviour(self, order: OrderCommandRequest) -> Behaviour:
        return self.script(int(order.command_id.rsplit(".s", 1)[1]))

    async def _answer_order(self, order: OrderCommandRequest) -> None:
        behaviour = self._behaviour(order)
        if behaviour == "reject":
            await self._send(order, EventKind.REJECTED, None, reason="risk.max_dollar_risk")
            return
        await self._send(order, EventKind.SUBMITTED, None)
        if behaviour == "stale-copy":
            # The same command delivered again and refused by intake, while the order works on.
            await self._send(order, EventKind.REJECTED, None, reason="sentry.stale")
        if behaviour == "fill":
            await self._send(order, EventKind.FILLED, order.quantity)
        elif behaviour.startswith("partial:"):
            part = min(int(behaviour.split(":")[1]), order.quantity - 1)
            if part > 0:
                await self._send(order, EventKind.PARTIALLY_FILLED, part)

    async def _send(
        self,
        order: OrderCommandRequest,
        kind: EventKind,
        qty: int | None,
        reason: str | None = None,
        broker_filled: int | None = None,
        client: Client | None = None,
    ) -> None:
        n = next(self._ids)
        filled = self.filled.get(order.command_id, 0) + (qty or 0)
        self.filled[order.command_id] = filled
        event = OrderEvent(
            event_id=f"ev-{n}",
            command_id=order.command_id,
            parent_id=order.parent_id,
            kind=kind,
            account=order.account,
            symbol=order.symbol,
            agent_id=order.agent_id,
            side=order.side,
            quantity=order.quantity,
            filled_qty=filled,
            avg_fill_price=order.limit_price if filled else None,
            last_fill=Fill(f"x-{n}", qty, order.limit_price) if qty else None,
            reason=reason,
            ts=datetime.now(UTC),
            limit_price=order.limit_price,
            broker_filled_qty=broker_filled,
        )
        target = order.parent_id or order.command_id
        handle = (client or activity.client()).get_workflow_handle(target)
        signal = "slice_record" if order.parent_id else "record"
        arg = signed_event(event)
        await handle.signal(signal, arg)
        if self.duplicate_events:
            # Kafka redelivers: the same event twice must change nothing.
            await handle.signal(signal, arg)


def pause_at_slice(n: int, control: Controller) -> Callable[[int, OrderCommandRequest], Awaitable[None]]:
    """An ``on_slice`` hook: pause the parent (a ledgered iceberg_pause) as its slice ``n`` is
    published."""

    async def hook(slice_no: int, req: OrderCommandRequest) -> None:
        if slice_no == n:
            await control.pause(activity.client(), str(req.parent_id))

    return hook


def pause_at_quote(n: int, control: Controller) -> Callable[[int, str], Awaitable[None]]:
    """An ``on_quote`` hook: pause the parent while its ``n``-th quote is being answered."""

    async def hook(quote_no: int, workflow_id: str) -> None:
        if quote_no == n:
            await control.pause(activity.client(), workflow_id)

    return hook
