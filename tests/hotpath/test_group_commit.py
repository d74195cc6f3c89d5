"""A burst of commands through intake while the ledger's commits are slow: the next order is
decided while the previous commit is in flight and the queued entries are committed together,
yet every order reaches the broker only once its own entry is committed (write-ahead), the
chain holds the records' order, the account's limits hold across the overlapping orders, and a
command that reads what an earlier one changes (a cancel) waits for it.

Intake runs in this process (:mod:`tests.hotpath.in_process`) over the real ledger; the test's
broker asks Postgres, from a connection of its own, whether an order's entry is committed at
the moment the order is placed.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import asyncpg
import pytest
from aiokafka import TopicPartition

from brokers.base import BrokerOrder, Placement
from hotpath.command_loop import consume_commands
from hotpath.decided_offsets import DecidedOffsets
from hotpath.ledger_store import LedgerStore
from hotpath.ports import Ledgered, RefusedByLedger
from ledger.append import AppendEntry, LedgerRecord
from ledger.risk_profiles import set_profile
from tests.factories import Agent, cancel_command, enter_command, risk_profile
from tests.hotpath.in_process import in_process_intake
from trading import sentry
from trading.order_events import OrderEvent
from trading.risk import Refusal

T = TypeVar("T")

COMMIT_STALL_S = 0.15
"""How long each commit stalls before it is written (a slow disk, a busy server)."""


class _SlowLedger(LedgerStore):
    """Every commit, alone or grouped, stalls first: the commands behind it queue up."""

    async def _append_one(self, entry: AppendEntry) -> LedgerRecord:
        await asyncio.sleep(COMMIT_STALL_S)
        return await super()._append_one(entry)

    async def _append_many(self, entries: Sequence[AppendEntry]) -> list[LedgerRecord]:
        await asyncio.sleep(COMMIT_STALL_S)
        return await super()._append_many(entries)


class _Committed:
    """Answers, from its own connection on its own thread, whether a command's accepted entry is
    committed: what another session sees is what survives a crash of this process."""

    def __init__(self, dsn: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._conn: asyncpg.Connection = self._run(asyncpg.connect(dsn))

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    def __call__(self, command_id: str) -> bool:
        query = "SELECT decision FROM ledger_entries WHERE command_id = $1 AND authenticated"
        return self._run(self._conn.fetchval(query, command_id)) == "accepted"

    def close(self) -> None:
        self._run(self._conn.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


class _Broker:
    """Places every order, noting whether its entry was committed when it was placed."""

    def __init__(self, committed: _Committed) -> None:
        self._committed = committed
        self.placed: list[tuple[str, bool]] = []
        self.cancels: list[str] = []

    async def net_liquidation(self, account: str) -> Decimal:
        return Decimal("1000000")

    def place(self, order: BrokerOrder) -> Placement:
        self.placed.append((order.order_ref, self._committed(order.order_ref)))
        return Placement(order.order_ref, True, time.perf_counter_ns(), "test", 1, len(self.placed))

    def cancel(self, order_ref: str) -> int:
        self.cancels.append(order_ref)
        return 1


@dataclass
class _Record:
    value: bytes
    offset: int
    topic: str = "agent.commands"
    partition: int = 0
    timestamp: int = 0


async def _burst(*values: bytes) -> AsyncIterator[_Record]:
    """Records all there at once, as a fetch hands a backlog over."""
    for offset, value in enumerate(values):
        yield _Record(value, offset)


@pytest.fixture
def committed(postgres_url: str) -> Iterator[_Committed]:
    probe = _Committed(postgres_url)
    yield probe
    probe.close()


@pytest.fixture
async def account(ledger_pool: asyncpg.Pool, operator: Agent) -> str:
    """A fresh account whose profile allows three open orders."""
    name = f"DU-BURST-{uuid.uuid4().hex[:6]}"
    profile = risk_profile(max_open_orders=3, staleness_ms=60_000)
    await set_profile(
        ledger_pool, name, profile, operator_id=operator.agent_id, operator_key=operator.private_key
    )
    return name


class _Offsets:
    def __init__(self) -> None:
        self.marked: list[int] = []

    def decided(self, topic: str, partition: int, offset: int) -> None:
        self.marked.append(offset)


async def test_orders_decided_during_a_commit_are_committed_together_each_before_its_broker_write(
    agent: Agent, ledger_pool: asyncpg.Pool, committed: _Committed, account: str
) -> None:
    broker, emitted = _Broker(committed), list[OrderEvent]()
    ledger = _SlowLedger(ledger_pool)
    intake = in_process_intake(ledger, broker, emitted)
    await intake.warm()
    envelopes = [agent.sign(enter_command(agent.agent_id, account=account, quantity=1)) for _ in range(3)]
    ids = [e.command.command_id for e in envelopes]
    offsets = _Offsets()

    await consume_commands(intake, _burst(*(e.to_wire() for e in envelopes)), offsets)  # type: ignore[arg-type]

    # Write-ahead, each order: its own entry committed before the broker saw it.
    assert broker.placed == [(cid, True) for cid in ids]
    rows = await ledger_pool.fetch(
        "SELECT command_id, xmin::text::bigint AS tx FROM ledger_entries"
        " WHERE command_id = ANY($1) ORDER BY seq",
        ids,
    )
    assert [r["command_id"] for r in rows] == ids  # the chain in the records' order
    # The first commit stalled; the two orders decided meanwhile went in one transaction.
    assert len({r["tx"] for r in rows}) == 2
    assert ledger.appends.stats.groups == 1 and ledger.appends.stats.grouped == 2
    assert offsets.marked == [0, 1, 2]


async def test_orders_decided_during_a_commit_hold_the_account_limits(
    agent: Agent, ledger_pool: asyncpg.Pool, committed: _Committed, account: str
) -> None:
    """Each order counts as working from the moment it is decided, not from its broker write,
    so the orders decided while the first commit is in flight see it (three open orders)."""
    broker, emitted = _Broker(committed), list[OrderEvent]()
    intake = in_process_intake(_SlowLedger(ledger_pool), broker, emitted)
    await intake.warm()
    envelopes = [agent.sign(enter_command(agent.agent_id, account=account, quantity=1)) for _ in range(5)]

    await consume_commands(intake, _burst(*(e.to_wire() for e in envelopes)))

    assert [ref for ref, _ in broker.placed] == [e.command.command_id for e in envelopes[:3]]
    refused = [(e.command_id, e.reason) for e in emitted if e.kind.value == "rejected"]
    assert refused == [(e.command.command_id, Refusal.MAX_OPEN_ORDERS.value) for e in envelopes[3:]]
    assert intake.book.open_orders(account) == 3


async def test_a_cancel_behind_its_order_in_one_burst_waits_for_it_and_finds_it(
    agent: Agent, ledger_pool: asyncpg.Pool, committed: _Committed, account: str
) -> None:
    broker, emitted = _Broker(committed), list[OrderEvent]()
    intake = in_process_intake(_SlowLedger(ledger_pool), broker, emitted)
    await intake.warm()
    order = agent.sign(enter_command(agent.agent_id, account=account, quantity=1))
    cancel = agent.sign(cancel_command(agent.agent_id, order.command.command_id, account=account))

    await consume_commands(intake, _burst(order.to_wire(), cancel.to_wire()))

    assert broker.placed == [(order.command.command_id, True)]
    assert broker.cancels == [order.command.command_id]
    decisions = await ledger_pool.fetch(
        "SELECT command_id, decision FROM ledger_entries WHERE command_id = ANY($1) ORDER BY seq",
        [order.command.command_id, cancel.command.command_id],
    )
    assert [(r["command_id"], r["decision"]) for r in decisions] == [
        (order.command.command_id, "accepted"),
        (cancel.command.command_id, "accepted"),
    ]


class _NoCommits:
    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        raise AssertionError("this test commits nothing")


async def test_records_handed_out_are_settled_only_once_each_is_decided(
    agent: Agent, ledger_pool: asyncpg.Pool, committed: _Committed, account: str
) -> None:
    """What a consumer about to give a partition up waits for: the loop has taken every record
    of the burst while the first commit still stalls, and none may be committed as decided
    until its order is ledgered and sent."""
    broker, emitted = _Broker(committed), list[OrderEvent]()
    intake = in_process_intake(_SlowLedger(ledger_pool), broker, emitted)
    await intake.warm()
    envelopes = [agent.sign(enter_command(agent.agent_id, account=account, quantity=1)) for _ in range(3)]
    offsets = DecidedOffsets(_NoCommits())
    tp = TopicPartition("agent.commands", 0)

    loop = asyncio.create_task(consume_commands(intake, _burst(*(e.to_wire() for e in envelopes)), offsets))
    try:
        assert not await offsets.until_decided({tp: 3}, timeout_s=COMMIT_STALL_S / 3)
        assert await offsets.until_decided({tp: 3}, timeout_s=10.0)
        assert [ref for ref, _ in broker.placed] == [e.command.command_id for e in envelopes]
    finally:
        await loop


async def test_a_group_the_ledger_refuses_an_entry_of_is_appended_one_by_one_each_with_its_answer(
    agent: Agent, ledger_pool: asyncpg.Pool, account: str
) -> None:
    """Behind a stalled commit, a genuine order and a copy of an already ledgered one queue
    together: the database refuses the group, and each is then appended alone, so the genuine
    one is committed and only the copy is refused (as a replay, named)."""
    ledger = _SlowLedger(ledger_pool)
    first, genuine = (agent.sign(enter_command(agent.agent_id, account=account)) for _ in range(2))

    results = await asyncio.gather(
        ledger.append_accepted(first, 1, {"quantity": 1}),
        ledger.append_accepted(genuine, 1, {"quantity": 1}),
        ledger.append_accepted(first, 1, {"quantity": 1}),
        return_exceptions=True,
    )

    assert isinstance(results[0], Ledgered) and isinstance(results[1], Ledgered)
    assert isinstance(results[2], RefusedByLedger) and results[2].reason == sentry.REPLAYED_SIGNATURE
    assert results[0].seq < results[1].seq
    assert ledger.appends.stats.refused_groups == 1
    rows = await ledger_pool.fetch(
        "SELECT command_id FROM ledger_entries WHERE command_id = ANY($1) ORDER BY seq",
        [first.command.command_id, genuine.command.command_id],
    )
    assert [r["command_id"] for r in rows] == [first.command.command_id, genuine.command.command_id]


async def test_a_redelivered_order_another_process_placed_stays_counted_when_the_ledger_refuses_it(
    agent: Agent, ledger_pool: asyncpg.Pool, committed: _Committed, account: str
) -> None:
    """A hot path that takes over an account counts the orders the previous owner left working;
    a command of theirs delivered again (its offset not committed before that owner died) is
    refused by the ledger as a duplicate, and must not take the previous owner's order out of
    the count: the account's open-order limit (three) still holds."""
    survivor_broker, survivor_events = _Broker(committed), list[OrderEvent]()
    survivor = in_process_intake(LedgerStore(ledger_pool), survivor_broker, survivor_events)
    await survivor.warm()  # started before the other process's orders were ledgered
    victim = in_process_intake(LedgerStore(ledger_pool), _Broker(committed), [])
    await victim.warm()
    placed = [agent.sign(enter_command(agent.agent_id, account=account, quantity=1)) for _ in range(2)]
    await consume_commands(victim, _burst(*(e.to_wire() for e in placed)))
    for envelope in placed:  # what the handover counts, from the state rows and the ledger
        survivor.book.order_working(victim.orders[envelope.command.command_id])
    fresh = [agent.sign(enter_command(agent.agent_id, account=account, quantity=1)) for _ in range(2)]

    await consume_commands(survivor, _burst(placed[1].to_wire(), *(e.to_wire() for e in fresh)))

    assert [ref for ref, _ in survivor_broker.placed] == [fresh[0].command.command_id]
    refused = {e.command_id: e.reason for e in survivor_events if e.kind.value == "rejected"}
    assert refused.get(fresh[1].command.command_id) == Refusal.MAX_OPEN_ORDERS.value, refused
    assert survivor.book.open_orders(account) == 3
