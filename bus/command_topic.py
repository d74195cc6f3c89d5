"""``agent.commands`` made with the partitions the hot paths of a group share.

Every other topic is made with one partition (:func:`bus.kafka.ensure_topics`). The command
topic's partition count is how many hot paths a group can keep busy at once, since one account
is always on one partition (:mod:`bus.command_keys`); it is fixed when the topic is made: Kafka
would send an account's commands to another partition after growing it (and the embedded Tansu
cannot grow one), so it is made right the first time, before anything else makes it.
"""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from bus.topics import AGENT_COMMANDS

log = logging.getLogger(__name__)


async def ensure_command_topic(bootstrap: str, partitions: int) -> int:
    """Make ``agent.commands`` with ``partitions`` partitions if it is missing; return the
    partitions it has (an existing topic keeps its own count, with a warning when it has
    fewer than asked: the group's extra members then stand by with nothing assigned)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        if AGENT_COMMANDS not in set(await admin.list_topics()):
            try:
                topic = NewTopic(AGENT_COMMANDS, num_partitions=partitions, replication_factor=1)
                await admin.create_topics([topic])
            except TopicAlreadyExistsError:
                pass
        described = await admin.describe_topics([AGENT_COMMANDS])
    finally:
        await admin.close()
    have = len(described[0]["partitions"]) if described else 0
    if have < partitions:
        log.warning(
            "%s has %d partitions, not the %d FLOOR_COMMAND_PARTITIONS asks for: at most %d hot paths "
            "of a group get accounts (make the topic again with more, or set the setting to match)",
            AGENT_COMMANDS,
            have,
            partitions,
            have,
        )
    return have


async def ensure_floor_topics(bootstrap: str, command_partitions: int) -> None:
    """Every topic of the floor, ``agent.commands`` first with its partitions (idempotent)."""
    from bus.kafka import ensure_topics

    await ensure_command_topic(bootstrap, command_partitions)
    await ensure_topics(bootstrap)
