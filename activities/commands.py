"""Publishing signed commands to ``agent.commands``: how workflows act on the market.

Workflows never talk to the broker. An iceberg slice or a time-in-force cancel is a command
like any agent's: canonical JSON, signed with the issuing agent's Ed25519 key, produced to
``agent.commands`` and verified, sized, risk-checked and ledgered by the hot path. So every
order the floor sends is in the ledger, whoever issued it.

Every field of a command comes from the request (the workflow supplies ``issued_at`` from
``workflow.now()`` and a command id derived from its own id), so a retried activity produces
byte-identical records and intake dedupes them on the command id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.envelope import cancel_command, order_command, sign_command
from bus.topics import AGENT_COMMANDS


@dataclass(frozen=True)
class OrderCommandRequest:
    command_id: str
    parent_id: str | None
    agent_id: str
    account: str
    symbol: str
    side: str
    quantity: int
    limit_price: Decimal
    tif: str
    issued_at: datetime


@dataclass(frozen=True)
class CancelCommandRequest:
    command_id: str
    target_command_id: str
    agent_id: str
    account: str
    symbol: str
    reason: str
    issued_at: datetime


@dataclass(frozen=True)
class PublishResult:
    command_id: str
    partition: int
    offset: int


class UnknownSigner(ApplicationError):
    def __init__(self, agent_id: str) -> None:
        super().__init__(
            f"no signing key loaded for agent {agent_id!r}", type="UnknownSigner", non_retryable=True
        )


class Producer:
    """The narrow part of ``AIOKafkaProducer`` this module uses."""

    async def send_and_wait(self, topic: str, value: bytes, key: bytes) -> object: ...


class CommandActivities:
    """Holds the worker's producer and the signing keys of the agents the worker acts for."""

    def __init__(self, producer: Producer, keys: Mapping[str, Ed25519PrivateKey]) -> None:
        self._producer = producer
        self._keys = dict(keys)
        self._lock = asyncio.Lock()

    @activity.defn(name="publish_order")
    async def publish_order(self, req: OrderCommandRequest) -> PublishResult:
        return await self._publish(req.agent_id, req.account, req.symbol, order_command(req))

    @activity.defn(name="publish_cancel")
    async def publish_cancel(self, req: CancelCommandRequest) -> PublishResult:
        return await self._publish(req.agent_id, req.account, req.symbol, cancel_command(req))

    async def _publish(
        self, agent_id: str, account: str, symbol: str, command: dict[str, object]
    ) -> PublishResult:
        key = self._keys.get(agent_id)
        if key is None:
            raise UnknownSigner(agent_id)
        record = sign_command(command, agent_id, key)
        meta = await self._producer.send_and_wait(AGENT_COMMANDS, record, key=f"{account}/{symbol}".encode())
        return PublishResult(
            command_id=str(command["command_id"]),
            partition=int(getattr(meta, "partition", -1)),
            offset=int(getattr(meta, "offset", -1)),
        )
