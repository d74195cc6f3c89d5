"""An attacker holding the database (superuser) truncates the ledger's tail or rewrites an entry
and re-chains the rest: the chain checks out on its own, and the floor's signed checkpoints,
kept outside the database, catch it and name the entry."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from bus.kafka import start_producer
from bus.topics import LEDGER_CHECKPOINTS
from config.settings import FloorSettings
from floor.keys import write_private_key
from floor.ledger_cmd import app as ledger_app
from floor.ledger_cmd import topic_checkpoints
from hotpath.checkpoints import LedgerCheckpointer
from ledger.append import Decision, append_command
from ledger.checkpoints import (
    CHECKPOINT_AGENT,
    CHECKPOINTS_FILE,
    Checkpoint,
    append_checkpoint,
    read_checkpoints,
    sign_checkpoint,
)
from ledger.keys import register_key
from ledger.verify import verify_ledger
from tests.factories import Agent
from tests.ledger.conftest import as_role
from tests.ledger.helpers import registered_agent, signed_enter
from tests.ledger.test_tamper import RECHAIN_FROM_2, tamper
from trading.signing import generate_private_key, private_key_to_pem, public_key_bytes

TRUNCATE_TO_4 = (
    "DELETE FROM ledger_entries WHERE seq > 4;"
    " UPDATE ledger_head SET seq = 4, entry_hash = (SELECT entry_hash FROM ledger_entries WHERE seq = 4)"
)


async def floor_ledger_key(db: asyncpg.Connection) -> Ed25519PrivateKey:
    key = generate_private_key()
    await register_key(db, CHECKPOINT_AGENT, public_key_bytes(key), "service", ["*"])
    return key


async def append(db: asyncpg.Connection, agent: Agent, decisions: str) -> None:
    """One entry per letter: a = accepted, r = rejected."""
    for letter in decisions:
        rejected = letter == "r"
        await append_command(
            db,
            signed_enter(agent),
            decision=Decision.REJECTED if rejected else Decision.ACCEPTED,
            reason="risk.max_position" if rejected else None,
        )


async def checkpointed(db: asyncpg.Connection, path: Path, *batches: str) -> Agent:
    """A ledger of ``batches`` (see :func:`append`), checkpointed after each by the hot path's
    checkpointer (the last as it stops); returns the agent that signed the entries."""
    checkpointer = LedgerCheckpointer(db, await floor_ledger_key(db), path, None, every=1)
    alpha = await registered_agent(db)
    for batch in batches[:-1]:
        await append(db, alpha, batch)
        await checkpointer.checkpoint()
    await append(db, alpha, batches[-1])
    await checkpointer.close()
    return alpha


async def test_tail_truncation_is_caught_and_the_first_missing_entry_named(
    db: asyncpg.Connection, ledger_dsn: str, tmp_path: Path
) -> None:
    path = tmp_path / "checkpoints.jsonl"
    await checkpointed(db, path, "aaa", "aaa")
    assert [line.checkpoint.seq for line in read_checkpoints(path) if line.checkpoint] == [3, 6]

    await tamper(db, TRUNCATE_TO_4)
    assert (await verify_ledger(ledger_dsn)).ok  # consistent on its own: the head was moved too
    report = await verify_ledger(ledger_dsn, checkpoints=read_checkpoints(path))
    assert report.first_bad is not None and report.first_bad.seq == 5
    assert "missing" in report.first_bad.problem and "up to seq 6" in report.first_bad.problem
    assert report.entries == 4


async def test_a_rechained_rewrite_is_caught_at_the_first_checkpoint_after_it(
    db: asyncpg.Connection, ledger_dsn: str, tmp_path: Path
) -> None:
    path = tmp_path / "checkpoints.jsonl"
    await checkpointed(db, path, "aa", "ra")

    # Entry 3 was a refusal; the attacker makes it look accepted and re-chains 3 and 4 and the head.
    await tamper(
        db,
        "UPDATE ledger_entries SET decision = 'accepted', reason = NULL WHERE seq = 3;"
        + RECHAIN_FROM_2.replace("seq >= 2", "seq >= 3"),
    )
    assert (await verify_ledger(ledger_dsn)).ok
    report = await verify_ledger(ledger_dsn, checkpoints=read_checkpoints(path))
    assert report.first_bad is not None and report.first_bad.seq == 4
    assert "rewritten at or before this entry, after seq 2" in report.first_bad.problem
    assert report.checkpoints == 2


async def test_a_truncation_that_grew_back_past_the_checkpoint_is_a_rewrite(
    db: asyncpg.Connection, ledger_dsn: str, tmp_path: Path
) -> None:
    path = tmp_path / "checkpoints.jsonl"
    alpha = await checkpointed(db, path, "aaaaaa")
    await tamper(db, TRUNCATE_TO_4)
    await append(db, alpha, "rr")  # the floor appends on; seq 5 and 6 exist again, different

    report = await verify_ledger(ledger_dsn, checkpoints=read_checkpoints(path))
    assert report.first_bad is not None and report.first_bad.seq == 6
    assert "signed checkpoint" in report.first_bad.problem


async def test_a_forged_or_foreign_checkpoint_line_is_reported(
    db: asyncpg.Connection, ledger_dsn: str, tmp_path: Path
) -> None:
    path = tmp_path / "checkpoints.jsonl"
    key = await floor_ledger_key(db)
    alpha = await registered_agent(db)
    await append(db, alpha, "aa")
    genuine = sign_checkpoint(key, 2, (await db.fetchval("SELECT entry_hash FROM ledger_head")))
    append_checkpoint(path, genuine)
    # A checkpoint claiming more history than there is, its signature copied from the real one.
    append_checkpoint(
        path, Checkpoint(9, genuine.entry_hash, genuine.taken_at, genuine.signer, genuine.signature)
    )
    append_checkpoint(path, sign_checkpoint(generate_private_key(), 2, genuine.entry_hash))
    with path.open("a") as f:
        f.write("not json\n")

    report = await verify_ledger(ledger_dsn, checkpoints=read_checkpoints(path))
    assert report.first_bad is None and report.checkpoints == 1
    assert report.problems == (
        "checkpoint line 2: signature does not verify (forged or altered)",
        f"checkpoint line 3 is not signed by a registered {CHECKPOINT_AGENT} key",
        "checkpoint line 4 is unreadable (not JSON: Expecting value: line 1 column 1 (char 0))",
    )


async def test_floor_ledger_verify_reads_the_checkpoint_file_and_names_the_missing_entry(
    db: asyncpg.Connection, ledger_dsn: str, floor_settings: FloorSettings, tmp_path: Path
) -> None:
    key = await floor_ledger_key(db)
    (tmp_path / "keys").mkdir()
    write_private_key(tmp_path / "keys" / f"{CHECKPOINT_AGENT}.key", private_key_to_pem(key))
    checkpointer = LedgerCheckpointer(db, key, tmp_path / CHECKPOINTS_FILE, None, every=1)
    alpha = await registered_agent(db)
    await append(db, alpha, "aaaaa")
    await checkpointer.checkpoint()
    cli = CliRunner(
        env={
            "FLOOR_VAR_DIR": str(tmp_path),
            "FLOOR_CLI_DATABASE_URL": as_role(floor_settings, "cli", ledger_dsn),
            "COLUMNS": "200",
        }
    )
    intact = await asyncio.to_thread(cli.invoke, ledger_app, ["verify"])
    assert intact.exit_code == 0 and "5 entries" in intact.output and "1 signed checkpoints" in intact.output

    await tamper(db, TRUNCATE_TO_4)
    broken = await asyncio.to_thread(cli.invoke, ledger_app, ["verify"])
    assert broken.exit_code == 1
    assert "first bad entry is seq 5: missing" in broken.output


async def test_verify_can_read_the_checkpoints_back_from_the_topic(kafka_bootstrap: str) -> None:
    checkpoint = sign_checkpoint(generate_private_key(), 7, b"\x07" * 32)
    producer = await start_producer(kafka_bootstrap, "test-topic-checkpoints")
    try:
        await producer.send_and_wait(LEDGER_CHECKPOINTS, checkpoint.to_json(), key=b"ledger")
        await producer.send_and_wait(LEDGER_CHECKPOINTS, b"garbage", key=b"ledger")
    finally:
        await producer.stop()
    lines = await topic_checkpoints(kafka_bootstrap)
    assert checkpoint in [line.checkpoint for line in lines]
    assert lines[-1].checkpoint is None and lines[-1].where.startswith(f"{LEDGER_CHECKPOINTS}[0] offset ")
