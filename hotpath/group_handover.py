"""Accounts handed between the hot paths of a consumer group (group mode).

Commands are keyed by account (:mod:`bus.command_keys`), so a partition carries whole accounts
and the member holding it is the only one deciding them. When the group moves a partition (a
member killed, stopped or joining), two things keep the account's limits whole:

- **Given up** (:meth:`Handover.on_partitions_revoked`): the records being decided are let
  finish (bounded by :data:`REVOKE_WAIT_S`), and every decided offset is committed before the
  partition goes, so the next owner starts after the last command this one decided: none is
  decided twice, none skipped. A record still held by a ledger outage goes undecided; the next
  owner decides it (or finds it in the ledger, a duplicate delivery).
- **Taken** (:meth:`Handover.on_partitions_assigned`): before any record of the new partitions
  is decided, the account book learns what the previous owner left working in those accounts
  (:func:`load_foreign_orders`: the order-state rows, and accepted ledger entries with none yet,
  which a member killed between its ledger commit and its first state row leaves) and the
  broker's positions of them, so the open-order count and gross exposure count the previous
  owner's orders. Those orders stay its broker client's (an IB order is managed by the client
  that placed it), so they are counted, never adopted: a restarted previous owner cancels,
  trails and reconciles them; until then they count as working at their last known state,
  which errs on the side of refusing.

Each hand-over is an ops event: ``hotpath.accounts_released`` and ``hotpath.accounts_taken``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka import ConsumerRebalanceListener, TopicPartition

from brokers.base import Broker
from bus.command_keys import partition_of
from bus.group_consumer import GroupConsumer
from bus.topics import AGENT_COMMANDS
from config.settings import FloorSettings
from hotpath.account import AccountBook
from hotpath.decided_offsets import DecidedOffsets
from hotpath.floor_orders import FloorOrder
from hotpath.recovery import RESEND_HORIZON, ledgered_order, restored_order
from ledger.db import Db
from ledger.order_events import open_orders
from trading.commands import CommandKind

log = logging.getLogger(__name__)

FOREIGN_REFRESH_S = 5.0
"""How often the previous owners' orders in held accounts are read again (a restarted owner
ends or fills them; until read again they count as they were)."""
REVOKE_WAIT_S = 5.0
"""How long a partition being taken away waits for its records in flight to be decided."""
ACCOUNTS_RELEASED = "hotpath.accounts_released"
"""Ops event (info): partitions this hot path gave up, after committing what it decided."""
ACCOUNTS_TAKEN = "hotpath.accounts_taken"
"""Ops event (info): partitions this hot path took, with the accounts' orders it now counts."""
HANDOVER_FAILED = "hotpath.handover_failed"
"""Ops event (critical): taken partitions whose accounts' working orders could not be read;
the hot path exits so the group hands them to a member that can (``floor up`` restarts it)."""

OpsRecorder = Callable[[str, str, Mapping[str, Any]], None]


def group_command_consumer(settings: FloorSettings, group_id: str, handover: Handover) -> GroupConsumer:
    """The ``agent.commands`` consumer of a group-mode hot path: a member of ``group_id``,
    resumed at the group's committed offsets, committing only decided ones (no auto-commit,
    as :func:`hotpath.command_loop.command_consumer` explains)."""
    return GroupConsumer(
        AGENT_COMMANDS,
        handover,
        session_timeout_ms=settings.hotpath_group_session_ms,
        bootstrap_servers=settings.kafka,
        group_id=group_id,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=settings.command_fetch_wait_ms,
    )


class HandoverFailed(RuntimeError):
    """The accounts of taken partitions could not be loaded: deciding their commands without
    the previous owner's orders would let the account past its limits."""


class Handover(ConsumerRebalanceListener):
    """The group's rebalance callbacks for the hot path's command consumer (see the module)."""

    def __init__(
        self,
        db: asyncpg.Pool,
        broker: Broker,
        book: AccountBook,
        own: Mapping[str, FloorOrder],
        record_ops: OpsRecorder,
    ) -> None:
        self._db = db
        self._broker = broker
        self._book = book
        self._own = own
        self._record_ops = record_ops
        self.consumer: GroupConsumer | None = None
        self.offsets: DecidedOffsets | None = None
        self.held: frozenset[TopicPartition] = frozenset()
        self.foreign: dict[str, FloorOrder] = {}
        """Orders of held accounts another member placed, counted by the book (command id ->)."""
        self.failure: HandoverFailed | None = None
        self.failed = asyncio.Event()
        """Set with :attr:`failure`: the process stops (the partitions' records are paused)."""

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        revoked = frozenset(revoked)
        if not revoked or self.consumer is None or self.offsets is None:
            return
        self.consumer.let_go(revoked)
        # Records already taken are still decided meanwhile: the command loop is inside this
        # consumer's poll, so it takes no new ones.
        handed = self.consumer.handed_of(revoked)
        settled = self.consumer.stopping or await self.offsets.until_decided(handed, REVOKE_WAIT_S)
        committed = await self.offsets.flush()
        self._record_ops(
            ACCOUNTS_RELEASED,
            "info" if settled and committed else "warning",
            {
                "partitions": sorted(tp.partition for tp in revoked),
                "records_decided": settled,
                "offsets_committed": committed,
            },
        )

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        assigned = frozenset(assigned)
        taken = assigned - self.held
        self.held = assigned
        if not taken:
            if self.consumer is not None:
                self.consumer.take_up(assigned)
            return
        numbers = {tp.partition for tp in taken}
        started = time.perf_counter()
        try:
            counted = await self._count_foreign(taken)
            accounts = await self._load_positions(self._holds(taken))
        except Exception as exc:
            # Raised here, aiokafka would only log it and hand the partitions over anyway.
            self.failure = HandoverFailed(f"partitions {sorted(numbers)}: {type(exc).__name__}: {exc}")
            if self.consumer is not None:
                self.consumer.pause(*taken)
            self.failed.set()
            self._record_ops(HANDOVER_FAILED, "critical", {"partitions": sorted(numbers), "error": str(exc)})
            log.exception("could not load the accounts of partitions %s", sorted(numbers))
            return
        if self.consumer is not None:
            # Every partition held, kept ones too: a rebalance revokes them all first.
            self.consumer.take_up(assigned)
        self._record_ops(
            ACCOUNTS_TAKEN,
            "info",
            {
                "partitions": sorted(numbers),
                "accounts": sorted(accounts | {o.account for o in counted}),
                "foreign_orders": sorted(o.command_id for o in counted),
                "load_ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )

    async def run(self) -> None:
        """Read the previous owners' orders in the held accounts again every
        :data:`FOREIGN_REFRESH_S`, off the order path, until cancelled."""
        while True:
            await asyncio.sleep(FOREIGN_REFRESH_S)
            if not self.held:
                continue
            try:
                await self._count_foreign(self.held)
            except Exception as exc:
                # Counted as they were: stale counts refuse more, never less.
                log.warning("could not read the held accounts' other orders again (%s); retrying", exc)

    async def _count_foreign(self, partitions: frozenset[TopicPartition]) -> list[FloorOrder]:
        held = self._holds(partitions)
        # One snapshot for both reads: an order whose first state row lands between them
        # would otherwise be in neither (not open at the first read, not row-less at the second).
        async with self._db.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            return await load_foreign_orders(conn, self._book, self._own, self.foreign, held)

    def _holds(self, partitions: frozenset[TopicPartition]) -> Callable[[str], bool]:
        """Whether an account's commands are on one of ``partitions``."""
        topic = next(iter(partitions)).topic
        assert self.consumer is not None
        known = self.consumer.partitions_for_topic(topic)
        count = len(known) if known else max(tp.partition for tp in partitions) + 1
        numbers = frozenset(tp.partition for tp in partitions)
        return lambda account: partition_of(account, count) in numbers

    async def _load_positions(self, held: Callable[[str], bool]) -> set[str]:
        """The broker's positions of the held accounts (every client's fills are in them)."""
        accounts: set[str] = set()
        for position in await self._broker.positions():
            if held(position.account):
                book, p = self._book, position
                book.set_position(p.account, p.symbol, p.quantity, p.avg_cost)
                accounts.add(p.account)
        return accounts


async def load_foreign_orders(
    db: Db,
    book: AccountBook,
    own: Mapping[str, FloorOrder],
    foreign: dict[str, FloorOrder],
    held: Callable[[str], bool],
    now: datetime | None = None,
) -> list[FloorOrder]:
    """Count in ``book`` the working orders of the accounts ``held`` accepts that are not
    ``own`` (this process's): those the state rows show open, and accepted enter/exit entries
    of the resend horizon with no state row at all. ``foreign`` (what an earlier hand-over
    counted) is replaced for those accounts in one step after the reads, so intake never sees
    the accounts with fewer orders than they have. Returns the orders now counted."""
    counted: dict[str, FloorOrder] = {}
    for state in await open_orders(db):
        if held(state.account) and state.command_id not in own:
            counted[state.command_id] = restored_order(state, [])
    since = (now or datetime.now(UTC)) - RESEND_HORIZON
    for row in await db.fetch(
        "SELECT e.command_id, e.account FROM ledger_entries e"
        " WHERE e.authenticated AND e.decision = 'accepted' AND e.kind = ANY($1::text[])"
        " AND e.issued_at >= $2"
        " AND NOT EXISTS (SELECT 1 FROM order_events o WHERE o.command_id = e.command_id)",
        [CommandKind.ENTER.value, CommandKind.EXIT.value],
        since,
    ):
        if not held(row["account"]) or row["command_id"] in own or row["command_id"] in counted:
            continue
        ledgered = await ledgered_order(db, row["command_id"])
        if ledgered is not None:
            counted[row["command_id"]] = FloorOrder.from_command(ledgered.command, ledgered.quantity)
    # No await from here on: the swap is one step for intake.
    for command_id, order in list(foreign.items()):
        if held(order.account) and command_id not in own:
            book.order_done(order.account, command_id)
            del foreign[command_id]
    for command_id, order in counted.items():
        if command_id in own:
            continue  # became this process's meanwhile (a command re-read after the hand-over)
        foreign[command_id] = order
        book.order_working(order)
    return list(counted.values())
