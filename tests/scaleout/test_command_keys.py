"""``agent.commands`` records are keyed by account, so one partition (one hot path) holds every
command of an account, whatever its symbol."""

from __future__ import annotations

import time

import httpx
from aiokafka.partitioner import DefaultPartitioner

from bus.command_keys import account_key, command_key, partition_of
from bus.kafka import consumer
from bus.topics import AGENT_COMMANDS
from tests.factories import Agent, cancel_all_command, enter_command
from tests.fixtures.hotpath import command_id_of


def test_every_command_of_an_account_has_the_accounts_key() -> None:
    commands = [
        enter_command("a1", account="DU7", symbol="AAPL"),
        enter_command("a1", account="DU7", symbol="MSFT"),
        cancel_all_command("a1", account="DU7"),
    ]
    assert {command_key(c) for c in commands} == {account_key("DU7")} == {b"DU7"}


def test_partition_of_is_the_partition_kafkas_default_partitioner_picks() -> None:
    partitioner = DefaultPartitioner()
    for partitions in (1, 2, 3, 4, 8, 12):
        every = list(range(partitions))
        for i in range(200):
            account = f"DU{i:05d}"
            assert partition_of(account, partitions) == partitioner(account_key(account), every, every)


async def test_the_door_publishes_an_accounts_commands_under_the_account_key(
    api_url: str, kafka_bootstrap: str, agent: Agent
) -> None:
    reader = consumer(kafka_bootstrap, AGENT_COMMANDS, group_id=None, from_start=False, fetch_max_wait_ms=50)
    await reader.start()
    try:
        await reader.getmany(timeout_ms=200)  # positioned at the end before anything is posted
        sent = {}
        async with httpx.AsyncClient(base_url=api_url, timeout=10.0) as client:
            for symbol in ("AAPL", "MSFT"):
                env = agent.sign(enter_command(agent.agent_id, account="DU100", symbol=symbol))
                response = await client.post(
                    "/v1/commands", content=env.to_wire(), headers={"Content-Type": "application/json"}
                )
                assert response.status_code == 202, response.text
                sent[env.command.command_id] = symbol
        keys: dict[str, bytes | None] = {}
        deadline = time.monotonic() + 15.0
        while set(keys) != set(sent) and time.monotonic() < deadline:
            for records in (await reader.getmany(timeout_ms=200)).values():
                for record in records:
                    command_id = command_id_of(record.value) if record.value is not None else None
                    if command_id in sent:
                        keys[command_id] = record.key
    finally:
        await reader.stop()
    assert keys == dict.fromkeys(sent, b"DU100")
