"""The hot path's checkpointer signs the ledger head every N entries, wherever the appends come
from, into the checkpoint file and onto the ``ledger.checkpoints`` topic."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import asyncpg

from bus.kafka import start_producer
from bus.topics import LEDGER_CHECKPOINTS
from hotpath.checkpoints import LedgerCheckpointer
from ledger.append import Decision, append_command, ledger_head
from ledger.checkpoints import Checkpoint, read_checkpoints
from tests.factories import Agent, enter_command
from tests.fixtures.hotpath import read_until
from tests.helpers import eventually
from trading.signing import generate_private_key, public_key_bytes


async def test_checkpoints_every_n_entries_to_the_file_and_the_topic(
    ledger_pool: asyncpg.Pool, agent: Agent, kafka_bootstrap: str, tmp_path: Path
) -> None:
    key = generate_private_key()
    producer = await start_producer(kafka_bootstrap, "test-checkpoints")
    path = tmp_path / "checkpoints.jsonl"
    checkpointer = LedgerCheckpointer(ledger_pool, key, path, producer, every=2, poll_s=0.05)
    await checkpointer.checkpoint()  # the head as it is: the next one is due 2 entries later
    task = asyncio.create_task(checkpointer.run())
    try:
        # Appends made elsewhere (another process, the CLI) count like the hot path's own.
        for _ in range(2):
            await append_command(
                ledger_pool, agent.sign(enter_command(agent.agent_id)), decision=Decision.ACCEPTED
            )
        head, digest = await ledger_head(ledger_pool)

        def written() -> Checkpoint | None:
            lines = [line.checkpoint for line in read_checkpoints(path) if line.checkpoint]
            return next((c for c in lines if c.seq >= head), None)

        checkpoint = await eventually(written, timeout=10)
        if checkpoint.seq == head:
            assert checkpoint.entry_hash == digest
        checkpoint.verify(public_key_bytes(key))

        def is_it(raw: bytes) -> bool:
            return raw == checkpoint.to_json()

        await read_until(kafka_bootstrap, LEDGER_CHECKPOINTS, is_it)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await checkpointer.close()
        await producer.stop()
