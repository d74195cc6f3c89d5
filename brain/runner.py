"""The demo brain's I/O: verified prices and order events in, signed commands out.

It reads ``market.depth`` and ``orders.events`` from their ends, believes a record only when the
hot path signed it (:class:`~bus.signed_records.RecordVerifier`, as the API hub does), and
publishes each agent's commands, signed with the agent's own key, to ``agent.commands``. What to
do is decided in :mod:`trading.demo_rules`; this module only carries it out.

Each symbol belongs to one agent (round robin), so one agent's exits never meet another agent's
position in the same symbol at the risk gate (exits are reduce-only against the account's net).
What the brain counts (entries, round trips) is what it *believes*; the floor's records are the
only evidence anyone should audit.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Any

import asyncpg

from brain.agents import BrainAgent, load_agents
from brain.records import BrainRecords, LedgerSecurityStore, claimed
from bus.command_keys import command_key
from bus.kafka import consumer, start_producer
from bus.signed_records import RecordVerifier
from bus.topics import AGENT_COMMANDS, MARKET_DEPTH, ORDERS_EVENTS, SECURITY_EVENTS
from config.settings import FloorSettings
from ledger.db import Db
from ledger.record_keys import writer_keys
from observability.security import SecurityLog
from trading.commands import Command, CommandKind, OrderType, Side, TimeInForce, utc_now_ms
from trading.demo_rules import (
    CENT,
    DEFAULT_THRESHOLD,
    DEFAULT_WINDOW,
    ENTRY_ORDER_TYPES,
    EntryChooser,
    EntryPlan,
    Phase,
    Position,
    PriceWindow,
    Quote,
    exit_signal,
    price_unit,
    signal,
    trail_distance,
)
from trading.order_events import FILL_KINDS, TERMINAL_KINDS, EventKind, OrderEvent
from trading.risk import Refusal
from trading.round_trips import root_command_id
from trading.signing import sign_command
from trading.symbols import parse_symbols

log = logging.getLogger(__name__)

# Outcomes the brain names when something does not go as planned (logged and counted).
ENTRY_REFUSED = "brain.entry_refused"
EXIT_REFUSED = "brain.exit_refused"
ENTRY_UNANSWERED = "brain.entry_unanswered"
"""An entry no order event ever answered (not even its cancel): given up on."""
EXIT_GIVEN_UP = "brain.exit_given_up"
"""A position whose exits the floor kept refusing: dropped, then taken up again from the net of
the brain's fills in the symbol and exited afresh before anything new is opened there."""

MAX_EXIT_REFUSALS = 3
STATUS_EVERY_S = 10.0
"""How often the brain logs what it has done and what it holds."""


@dataclass(frozen=True)
class RoundTrip:
    """A position the brain believes it opened and closed."""

    agent_id: str
    symbol: str
    side: Side
    """The entry's side."""
    quantity: int
    entry_id: str
    exit_id: str
    entry_order_type: OrderType
    exit_order_type: OrderType
    caps_binding: bool
    mid_at_signal: Decimal


@dataclass
class _Slot:
    """One symbol: its prices, the agent that trades it and that agent's position."""

    agent: BrainAgent
    window: PriceWindow
    position: Position
    quote: Quote | None = None
    sampled_at: float = 0.0
    cancel_sent: str | None = None
    """The command id whose cancel is out (entry or exit), so it is sent once."""
    exit_refusals: int = 0
    exit_type: OrderType | None = None
    exit_chunk: int | None = None
    """The most shares one exit is sent for: halved from the refused exit's quantity each time
    Max Trade Size refuses one (an exit pays the far side of the touch, a little more than its
    entry cost); None: the whole position."""
    net: int = 0
    """The signed sum of every fill of the brain's orders in the symbol: the account's position
    as far as the brain made it."""
    trail_tried: bool = False
    """This position's TRAIL exit was sent (and, if it is held again, did not close it)."""
    stopped_out: bool = False
    """The floor's protective stop closed the position while the brain's own exit was working:
    that exit is cancelled."""


class DemoBrain:
    """Stand-in agents trading ``symbols`` on ``account`` until ``run``'s ``stop`` is set.

    ``on_round_trip`` is called for each position the brain believes closed; ``entries``,
    ``round_trips`` and ``outcomes`` count what it did and what went wrong."""

    def __init__(
        self,
        settings: FloorSettings,
        agents: Sequence[BrainAgent] | None = None,
        *,
        seed: int = 0,
        caps_binding_share: Decimal = Decimal("0.2"),
        on_round_trip: Callable[[RoundTrip], None] | None = None,
        account: str | None = None,
        symbols: Sequence[str] | None = None,
        db: Db | None = None,
        window: int = DEFAULT_WINDOW,
        threshold: Decimal = DEFAULT_THRESHOLD,
        sample_s: float = 0.2,
        max_hold_s: float = 5.0,
        entry_timeout_s: float = 5.0,
        exit_timeout_s: float = 20.0,
        order_types: Sequence[OrderType] = ENTRY_ORDER_TYPES,
    ) -> None:
        self.settings = settings
        self.agents = list(agents) if agents is not None else load_agents(settings)
        if not self.agents:
            raise ValueError("the brain needs at least one agent")
        self.account = account or settings.accounts[0]
        symbols = list(symbols) if symbols is not None else parse_symbols(settings.hotpath_symbols)
        self._slots = {
            symbol: _Slot(self.agents[i % len(self.agents)], PriceWindow(window), Position(symbol))
            for i, symbol in enumerate(symbols)
        }
        self._chooser = EntryChooser(random.Random(seed), caps_binding_share, order_types)
        self._on_round_trip = on_round_trip
        self._db = db
        self._threshold = threshold
        self._sample_s = sample_s
        self._max_hold_s = max_hold_s
        self._entry_timeout_s = entry_timeout_s
        self._exit_timeout_s = exit_timeout_s
        self._filled: dict[str, int] = {}
        """command id -> shares filled so far, to add each fill to the symbol's net once."""
        self._orders: dict[str, str] = {}
        """command id -> symbol, for every order the brain sent."""
        self.plans: dict[str, EntryPlan] = {}
        """command id -> the entry's plan (its mid at the signal, whether it was meant to bind)."""
        self.entries = 0
        self.round_trips = 0
        self.outcomes: Counter[str] = Counter()
        self._producer: Any = None
        self.on_started: Callable[[], None] | None = None
        """Called once the brain reads the market and can publish."""
        self.winding_down = False
        """Set by :meth:`wind_down`: no new entries; working entries are cancelled and every
        position is exited at once."""

    def wind_down(self) -> None:
        """Stop opening positions and close the ones held, so a run ends flat (:attr:`flat`)."""
        self.winding_down = True

    @property
    def flat(self) -> bool:
        """Every symbol flat by the brain's own fills, with nothing of its working."""
        return all(s.position.phase is Phase.FLAT and s.net == 0 for s in self._slots.values())

    # --- the loop -----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Trade until ``stop`` is set. Orders still working then are left to the floor."""
        pool: asyncpg.Pool | None = None
        db = self._db
        if db is None:
            pool = await asyncpg.create_pool(self.settings.role_url("brain"), min_size=1, max_size=2)
            db = pool
        verifier = RecordVerifier(lambda: writer_keys(db))
        reader = consumer(
            self.settings.kafka,
            MARKET_DEPTH,
            ORDERS_EVENTS,
            group_id=None,
            from_start=False,
            fetch_max_wait_ms=50,
        )
        self._producer = await start_producer(self.settings.kafka, "floor-brain")
        security = SecurityLog(LedgerSecurityStore(db), self._producer, SECURITY_EVENTS)
        judge = BrainRecords(verifier, security, self.outcomes)
        try:
            await reader.start()
            if self.on_started is not None:
                self.on_started()
            reported = time.monotonic()
            while not stop.is_set():
                batch = await reader.getmany(timeout_ms=100)
                books: dict[str, tuple[str, bytes]] = {}
                for tp, fetched in batch.items():
                    for record in fetched:
                        if record.value is None:
                            continue
                        if tp.topic == MARKET_DEPTH:
                            # A book is the symbol's whole top: only the newest of a fetch matters.
                            symbol = claimed(record.value, "symbol")
                            if symbol in self._slots:
                                books[symbol] = (f"{tp.topic}[{tp.partition}]@{record.offset}", record.value)
                        else:
                            where = f"{tp.topic}[{tp.partition}]@{record.offset}"
                            await self._on_event_record(judge, where, record.value)
                for where, raw in books.values():
                    await self._on_book_record(judge, where, raw)
                now = time.monotonic()
                await self._decide(now)
                if now - reported >= STATUS_EVERY_S:
                    reported = now
                    log.info(
                        "brain: %d entries, %d round trips, %s; %s",
                        self.entries, self.round_trips, dict(self.outcomes) or "no refusals", self.state(),
                    )  # fmt: skip
        finally:
            await reader.stop()
            await self._producer.stop()
            if pool is not None:
                await pool.close()

    async def _on_book_record(self, records: BrainRecords, where: str, raw: bytes) -> None:
        quote = await records.quote(where, raw)
        if quote is not None and quote.symbol in self._slots:
            self._slots[quote.symbol].quote = quote

    async def _on_event_record(self, records: BrainRecords, where: str, raw: bytes) -> None:
        if claimed(raw, "command_id") not in self._orders:
            return  # not ours: not worth a signature check
        event = await records.event(where, raw)
        if event is not None:
            self._on_event(event, time.monotonic())

    def _on_event(self, event: OrderEvent, now: float) -> None:
        symbol = self._orders.get(event.command_id)
        floors_stop = False
        if symbol is None:
            # The floor's protective stop on one of the brain's positions is the brain's too.
            symbol = self._orders.get(root_command_id(event.command_id))
            floors_stop = True
        if symbol is None:
            return
        slot = self._slots[symbol]
        pos = slot.position
        fresh = event.filled_qty - self._filled.get(event.command_id, 0)
        if fresh > 0:
            self._filled[event.command_id] = event.filled_qty
            slot.net += fresh * (1 if event.side == Side.BUY else -1)
        if floors_stop:
            if fresh > 0:
                self._stopped_out(slot, event.command_id, fresh, now)
            return
        filled = max(event.filled_qty, event.broker_filled_qty or 0)
        if pos.phase is Phase.ENTERING and event.command_id == pos.entry_id:
            if event.kind in FILL_KINDS or event.kind in TERMINAL_KINDS:
                pos.entry_filled(filled)
            if event.kind is EventKind.REJECTED:
                self._outcome(ENTRY_REFUSED, f"{event.command_id}: {event.reason}")
            if event.kind in TERMINAL_KINDS:
                slot.cancel_sent = None
                pos.entry_ended(now)
        elif pos.phase is Phase.EXITING and event.command_id == pos.exit_id:
            if event.kind in FILL_KINDS or event.kind in TERMINAL_KINDS:
                pos.exit_filled_to(filled)
            if event.kind is EventKind.REJECTED:
                if event.reason == Refusal.MAX_TRADE_SIZE.value and event.quantity > 1:
                    # Smaller exits; not a refusal that gives the position up.
                    slot.exit_chunk = -(-event.quantity // 2)
                else:
                    slot.exit_refusals += 1
                self._outcome(EXIT_REFUSED, f"{event.command_id}: {event.reason}")
            if event.kind in TERMINAL_KINDS:
                self._exit_ended(slot, event.command_id, now)

    def _stopped_out(self, slot: _Slot, stop_id: str, shares: int, now: float) -> None:
        """The floor's protective stop took ``shares`` out of the position. Held: a round trip
        closed by the floor's stop. Exiting: the brain's own exit is now for shares no longer
        held, so it is cancelled (by :meth:`_decide`); its end closes the position."""
        pos = slot.position
        entry, side, quantity, entry_id = pos.entry, pos.side, pos.quantity, pos.entry_id
        if pos.stopped_out(shares):
            self._closed(slot, entry, side, quantity, entry_id, stop_id, OrderType.TRAIL)
        elif pos.phase is Phase.EXITING and pos.quantity <= 0:
            slot.stopped_out = True

    def _exit_ended(self, slot: _Slot, exit_id: str, now: float) -> None:
        pos = slot.position
        entry, side, quantity, entry_id = pos.entry, pos.side, pos.quantity, pos.entry_id
        slot.cancel_sent = None
        if pos.exit_ended(now):
            slot.exit_refusals = 0
            self._closed(slot, entry, side, quantity, entry_id, exit_id, slot.exit_type or OrderType.LMT)
        elif slot.exit_refusals >= MAX_EXIT_REFUSALS:
            self._outcome(
                EXIT_GIVEN_UP, f"{pos.symbol}: {pos.quantity} held after {slot.exit_refusals} refusals"
            )
            slot.exit_refusals = 0
            pos.reset()

    def _closed(
        self,
        slot: _Slot,
        entry: EntryPlan | None,
        side: Side | None,
        quantity: int,
        entry_id: str | None,
        exit_id: str,
        exit_type: OrderType,
    ) -> None:
        """A position the brain opened is closed: one round trip."""
        slot.stopped_out = False
        if entry is None or side is None or entry_id is None:
            return  # an adopted remainder: closed, but no round trip of the brain's
        self.round_trips += 1
        trip = RoundTrip(
            slot.agent.agent_id, slot.position.symbol, side, quantity, entry_id, exit_id, entry.order_type,
            exit_type, entry.caps_binding, entry.mid,
        )  # fmt: skip
        if self._on_round_trip is not None:
            self._on_round_trip(trip)

    # --- decisions ----------------------------------------------------------------------------

    async def _decide(self, now: float) -> None:
        for slot in self._slots.values():
            quote = slot.quote
            if quote is None:
                continue
            if now - slot.sampled_at >= self._sample_s:
                slot.window.add(quote.mid)
                slot.sampled_at = now
            pos = slot.position
            if pos.phase is Phase.FLAT and slot.net != 0:
                # What a given-up exit left: exit it before anything new is opened.
                pos.adopt(Side.BUY if slot.net > 0 else Side.SELL, abs(slot.net), now)
            elif pos.phase is Phase.FLAT and self.winding_down:
                continue
            elif pos.phase is Phase.FLAT:
                side = signal(slot.agent.rule, slot.window, self._threshold)
                if side is not None:
                    await self._enter(slot, quote, side, now)
            elif pos.phase is Phase.IN:
                await self._maybe_exit(slot, quote, now)
            elif now - pos.since > self._timeout(pos) or (
                (self.winding_down or slot.stopped_out) and self._waiting_on(slot)
            ):
                await self._overdue(slot, now)

    def _waiting_on(self, slot: _Slot) -> bool:
        """An order that may not fill soon on its own: an entry not yet filled, or a TRAIL exit
        waiting for its trigger. Winding down cancels it (once) rather than wait it out."""
        pos = slot.position
        if slot.cancel_sent is not None:
            return False
        return pos.phase is Phase.ENTERING or slot.exit_type is OrderType.TRAIL or slot.stopped_out

    def _timeout(self, pos: Position) -> float:
        return self._entry_timeout_s if pos.phase is Phase.ENTERING else self._exit_timeout_s

    async def _enter(self, slot: _Slot, quote: Quote, side: Side, now: float) -> None:
        plan = self._chooser.plan(quote, side)
        command = self._command(
            slot.agent, CommandKind.ENTER, plan.symbol, side, plan.order_type, tif=plan.tif, edge=plan.edge,
            limit_price=plan.limit_price, stop_price=plan.stop_price, trail_amount=plan.trail_amount,
        )  # fmt: skip
        self.plans[command.command_id] = plan
        slot.trail_tried = False
        slot.exit_chunk = None
        slot.position.entering(plan, command.command_id, now)
        self.entries += 1
        await self._send(slot, command)

    async def _maybe_exit(self, slot: _Slot, quote: Quote, now: float) -> None:
        pos = slot.position
        assert pos.side is not None
        unit = price_unit(quote)
        side = pos.exit_side
        quantity = pos.quantity if slot.exit_chunk is None else min(pos.quantity, slot.exit_chunk)
        if pos.entry is not None and pos.entry.trail_exit and not slot.trail_tried and not self.winding_down:
            slot.trail_tried = True
            # The Exit Manager trails it from the touch and the venue triggers it.
            command = self._command(
                slot.agent, CommandKind.EXIT, pos.symbol, side, OrderType.TRAIL, quantity=quantity,
                trail_amount=trail_distance(quote),
            )  # fmt: skip
        elif (
            self.winding_down
            or exit_signal(slot.agent.rule, pos.side, slot.window, self._threshold)
            or now - pos.since > self._max_hold_s
        ):
            # Through the touch: a limit that fills at once, and never worse than one unit.
            near = quote.bid if side is Side.SELL else quote.ask
            limit = (near + side.sign * unit).quantize(CENT, ROUND_FLOOR)
            if limit <= 0:
                command = self._command(
                    slot.agent, CommandKind.EXIT, pos.symbol, side, OrderType.MKT, quantity=quantity
                )
            else:
                command = self._command(
                    slot.agent, CommandKind.EXIT, pos.symbol, side, OrderType.LMT, quantity=quantity,
                    limit_price=limit,
                )  # fmt: skip
        else:
            return
        assert command.order_type is not None
        slot.exit_type = command.order_type
        pos.exiting(command.command_id, now)
        await self._send(slot, command)

    async def _overdue(self, slot: _Slot, now: float) -> None:
        """An entry not done within its timeout, or an exit: cancel it once; when even the cancel
        brings no answer, give the entry up (an exit stays: its position is real)."""
        pos = slot.position
        target = pos.entry_id if pos.phase is Phase.ENTERING else pos.exit_id
        assert target is not None
        if slot.cancel_sent != target:
            slot.cancel_sent = target
            pos.since = now
            cancel = self._command(slot.agent, CommandKind.CANCEL, None, None, None, target_command_id=target)
            await self._send(slot, cancel)
        elif pos.phase is Phase.ENTERING and pos.quantity == 0:
            self._outcome(ENTRY_UNANSWERED, f"{target}: no terminal order event after its cancel")
            slot.cancel_sent = None
            pos.reset()

    # --- commands -----------------------------------------------------------------------------

    def _command(
        self,
        agent: BrainAgent,
        kind: CommandKind,
        symbol: str | None,
        side: Side | None,
        order_type: OrderType | None,
        **fields: Any,
    ) -> Command:
        if kind is not CommandKind.CANCEL:
            fields.setdefault("tif", TimeInForce.DAY)
        return Command(
            kind=kind, command_id=f"demo-{uuid.uuid4().hex}", agent_id=agent.agent_id, account=self.account,
            nonce=uuid.uuid4().hex, issued_at=utc_now_ms(), symbol=symbol, side=side, order_type=order_type,
            **fields,
        )  # fmt: skip

    async def _send(self, slot: _Slot, command: Command) -> None:
        if command.symbol is not None:
            self._orders[command.command_id] = command.symbol
        envelope = sign_command(command, slot.agent.key)
        await self._producer.send_and_wait(AGENT_COMMANDS, envelope.to_wire(), key=command_key(command))

    def state(self) -> dict[str, str]:
        """Each symbol's position as the brain believes it (for messages and the HUD's log)."""
        return {
            symbol: f"{slot.position.phase} {slot.position.side} {slot.position.quantity} "
            f"mid={slot.quote.mid if slot.quote else None} "
            f"entry={slot.position.entry_id} exit={slot.position.exit_id} cancel={slot.cancel_sent}"
            for symbol, slot in self._slots.items()
        }

    def _outcome(self, name: str, detail: str) -> None:
        self.outcomes[name] += 1
        log.warning("%s: %s", name, detail)
