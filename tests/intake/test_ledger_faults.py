"""The hot path process against Postgres faults on its own connections (the database itself and
every other process stay up): a commit whose answer is lost, and a kill while a command is held
because Postgres is gone. Each command is decided exactly once, at the paper venue and in the
ledger."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Awaitable, Callable
from decimal import ROUND_DOWN, Decimal
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bus.kafka import consumer as kafka_consumer
from bus.topics import AGENT_COMMANDS
from tests.factories import Agent, enter_command
from tests.fixtures.hotpath import send
from tests.fixtures.paper import PaperStack
from tests.fixtures.pg_proxy import PgProxy
from tests.helpers import eventually
from tests.hotpath.conftest import VENUE_ACCOUNT, HotPathProcess
from tests.hotpath.live_floor import CENT, kinds_of
from trading.signing import SignedCommand

AUTO_COMMIT_INTERVAL_S = 5.0
"""aiokafka's default auto-commit interval: a held record must stay uncommitted beyond it."""


async def _resting_buy(paper: PaperStack, agent: Agent, quantity: int) -> SignedCommand:
    bid, _ = await paper.quote("AAPL")
    limit = (bid * Decimal("0.8")).quantize(CENT, ROUND_DOWN)
    return agent.sign(
        enter_command(agent.agent_id, account=VENUE_ACCOUNT, limit=limit, stop=limit - 5, quantity=quantity)
    )


async def _accepted_entries(pool: asyncpg.Pool, command_id: str) -> list[str]:
    rows = await pool.fetch(
        "SELECT decision FROM ledger_entries WHERE command_id = $1 AND authenticated", command_id
    )
    return [r["decision"] for r in rows]


async def _submitted(pool: asyncpg.Pool, command_id: str) -> bool:
    return "submitted" in await kinds_of(pool, command_id)


async def _at_the_venue_once(paper: PaperStack, pool: asyncpg.Pool, command_id: str) -> None:
    """The order works at the venue, once: the venue holds one order under its id, open, and
    the floor recorded one ``submitted``. (By its own id, not the venue's open-order count: the
    session's other processes may place or end orders of their own meanwhile.)"""
    await eventually(lambda: _submitted(pool, command_id), timeout=30.0)
    rows: list[dict[str, Any]] = await eventually(lambda: paper.orders_with_ref(command_id), timeout=10.0)
    assert [row["status"] for row in rows] == ["Submitted"], rows
    assert (await kinds_of(pool, command_id)).count("submitted") == 1
    assert await _accepted_entries(pool, command_id) == ["accepted"]


async def test_an_order_whose_ledger_commit_lost_its_answer_reaches_the_venue_once(
    proxied_hotpath: HotPathProcess,
    pg_proxy: PgProxy,
    paper: PaperStack,
    agent: Agent,
    command_producer: AIOKafkaProducer,
    ledger_pool: asyncpg.Pool,
) -> None:
    """Postgres commits the write-ahead entry; the connection drops before the hot path hears.
    Its retry finds the entry and sends the order now, not at the next restart."""
    env = await _resting_buy(paper, agent, 2)
    cid = env.command.command_id
    pg_proxy.drop_after_commit(cid.encode())

    await send(command_producer, env)

    await eventually(pg_proxy.dropped.is_set, timeout=10.0)
    await _at_the_venue_once(paper, ledger_pool, cid)


@pytest.mark.long
async def test_a_command_held_through_a_postgres_outage_survives_a_kill(
    proxied_hotpath: HotPathProcess,
    pg_proxy: PgProxy,
    paper: PaperStack,
    agent: Agent,
    command_producer: AIOKafkaProducer,
    ledger_pool: asyncpg.Pool,
    kafka_bootstrap: str,
) -> None:
    """Postgres goes away for the hot path; a command arrives and is held; the process is killed
    with SIGKILL while holding it; Postgres comes back and the process is started again. Its
    offset was never committed, so the new process reads it again and decides it, once."""
    env = await _resting_buy(paper, agent, 3)
    cid = env.command.command_id
    group = _group_of(proxied_hotpath)
    offsets = await _group_reader(kafka_bootstrap, group)
    try:
        pg_proxy.cut()
        tried = pg_proxy.connections
        offset = await _send(command_producer, env)
        await eventually(lambda: pg_proxy.connections > tried + 1, timeout=10.0)  # held, retrying
        # Longer than an auto-commit interval: what was handed out is not what is decided.
        await _stays(lambda: _committed_before(offsets, offset), AUTO_COMMIT_INTERVAL_S + 1)
        held = (await proxied_hotpath.health())["intake_held"]
        assert isinstance(held, dict) and held["source"] == f"{AGENT_COMMANDS}[0]@{offset}", held
    finally:
        await offsets.stop()

    async def postgres_back() -> None:
        pg_proxy.restore()

    _kill(proxied_hotpath)
    await proxied_hotpath.restart(while_down=postgres_back)

    await _at_the_venue_once(paper, ledger_pool, cid)


def _kill(process: HotPathProcess) -> None:
    """SIGKILL, as the kernel's OOM killer does: no shutdown, no last commit."""
    assert process.service is not None
    os.killpg(process.service.pid, signal.SIGKILL)
    process.service.process.wait(timeout=10.0)  # gone, its ports with it


def _group_of(process: HotPathProcess) -> str:
    assert process.service is not None
    argv = list(process.service.spec.argv)
    return argv[argv.index("--group-id") + 1]


async def _group_reader(bootstrap: str, group: str) -> AIOKafkaConsumer:
    """A client of ``group`` that only reads its committed offsets (it never joins)."""
    reader = kafka_consumer(bootstrap, group_id=group, auto_commit=False)
    await reader.start()
    return reader


async def _send(producer: AIOKafkaProducer, env: SignedCommand) -> int:
    command = env.command
    meta = await producer.send_and_wait(
        AGENT_COMMANDS, env.to_wire(), key=f"{command.account}/{command.symbol}".encode()
    )
    return int(meta.offset)


async def _committed_before(reader: AIOKafkaConsumer, offset: int) -> bool:
    committed = await reader.committed(TopicPartition(AGENT_COMMANDS, 0))
    return committed is None or committed <= offset


async def _stays(predicate: Callable[[], Awaitable[bool]], seconds: float) -> None:
    """``predicate`` holds throughout ``seconds`` (checked every 100 ms)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert await predicate()
        await asyncio.sleep(0.1)
