"""A hot path killed with ``kill -9`` and started again reads ``agent.commands`` at once: it
takes every partition itself, at the offsets its group committed, instead of waiting for the
group to time out the dead member's session (10-30 s), by which time the commands waiting
would be too old for the sentry."""

from __future__ import annotations

import time
from decimal import Decimal

from aiokafka import AIOKafkaConsumer, TopicPartition

from bus.topics import AGENT_COMMANDS
from config.ports import port_is_free
from tests.helpers import eventually
from tests.hotpath.live_floor import LiveFloor
from trading.order_events import EventKind
from trading.signing import SignedCommand

DECIDED_WITHIN_S = 8.0
"""Generous against a start-up of a second or two; a group rejoin takes 10-30 s."""


async def test_a_command_sent_while_the_hot_path_is_down_is_decided_seconds_after_its_restart(
    live: LiveFloor,
) -> None:
    # Decided before the kill: the group has committed offsets the restart resumes from.
    await live.resting_buy(1)
    sent: list[SignedCommand] = []
    started: list[float] = []

    async def while_down() -> None:
        limit = await live.below_bid(Decimal("0.8"))
        sent.append(await live.submit(live.enter(limit=limit, stop=limit - 5, quantity=1)))
        # The supervisor starts it again once the dead process's ports are free.
        service = live.hotpath.service
        assert service is not None
        for address in service.spec.ports:
            await eventually(lambda a=address: port_is_free(*a), timeout=30.0)
        started.append(time.monotonic())

    await live.hotpath.restart(while_down, kill=True)
    [restarted] = started
    [env] = sent
    command_id = env.command.command_id
    await eventually(lambda: live.entry(command_id), timeout=30.0)
    took = time.monotonic() - restarted
    assert took < DECIDED_WITHIN_S, f"decided {took:.1f} s after the restart"
    assert (await live.event(command_id, EventKind.SUBMITTED, EventKind.REJECTED)).kind == EventKind.SUBMITTED
    # Committed under the group id without membership (generation -1): a restart resumes there.
    service = live.hotpath.service
    assert service is not None
    group_id = service.spec.argv[service.spec.argv.index("--group-id") + 1]
    await eventually(lambda: _all_committed(live.bootstrap, group_id), timeout=10.0)


async def _all_committed(bootstrap: str, group_id: str) -> bool:
    """Whether the group's committed offset is each partition's end (everything decided)."""
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False)
    await reader.start()
    try:
        await reader.topics()  # fresh metadata
        partitions = [
            TopicPartition(AGENT_COMMANDS, p) for p in reader.partitions_for_topic(AGENT_COMMANDS) or ()
        ]
        assert partitions
        reader.assign(partitions)
        ends = await reader.end_offsets(partitions)
        committed = {tp: await reader.committed(tp) for tp in partitions}
        return committed == ends
    finally:
        await reader.stop()
