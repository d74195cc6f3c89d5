"""Publishing signed commands to ``agent.commands``: how workflows act on the market.

Workflows never talk to the broker. An iceberg slice or a time-in-force cancel is a command
like any agent's (:class:`trading.commands.Command`), signed with the issuing agent's Ed25519
key (:func:`trading.signing.sign_command`) and produced to ``agent.commands``, where the hot
path verifies, sizes, risk-checks and ledgers it. So every order the floor sends is in the
ledger, whoever issued it.

Every field of a command comes from the request: the workflow supplies ``issued_at`` from
``workflow.now()`` and a command id derived from its own id, and the nonce derives from the
command id. A retried activity therefore produces the very same command, which the ledger's
unique (agent, nonce) index admits once.

Each record carries a W3C trace context in its Kafka headers, which the hot path continues. An
iceberg slice (an order with a ``parent_id``) starts a trace of its own, one per slice, linked to
the span it was published from (the Iceberg's, in its parent command's trace): a parent of a
hundred slices is then a hundred traces a click from the parent, not one trace of thousands of
spans, and each slice's trace reads like any order's. A cancel stays in the trace it was issued
from (the lifecycle's for an expiry cancel, which is its order's trace; the Iceberg's for a
slice cancel). Headers are not signed and decide nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanKind, Tracer
from temporalio import activity
from temporalio.exceptions import ApplicationError

from bus.command_keys import command_key
from bus.topics import AGENT_COMMANDS
from observability.propagation import inject_kafka_headers
from observability.tracing import ATTR_ACCOUNT, ATTR_COMMAND_ID, ATTR_SYMBOL
from trading.commands import Command, CommandInvalid, CommandKind, Edge, OrderType
from trading.signing import sign_command


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
    edge: Edge
    issued_at: datetime


@dataclass(frozen=True)
class CancelCommandRequest:
    command_id: str
    target_command_id: str
    agent_id: str
    account: str
    symbol: str
    """The target's symbol: the record's Kafka key, so the cancel queues behind its order."""
    issued_at: datetime
    reason: str = ""
    """Why, for the workflow's own history; the cancel command itself carries no reason."""


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


SLICE_SPAN = "iceberg.slice"
"""The root span of a slice's own trace: its publication; the hot path's spans follow under it."""
ATTR_PARENT_ID = "floor.parent_id"
ATTR_PARENT_TRACE_ID = "floor.parent_trace_id"
"""The parent's trace (32 hex), beside the link: the span store keeps attributes, not links."""


class Producer(Protocol):
    """The part of ``AIOKafkaProducer`` used here (see :func:`bus.kafka.producer`)."""

    async def send_and_wait(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> object: ...


def nonce_for(command_id: str) -> str:
    return hashlib.sha256(command_id.encode()).hexdigest()[:32]


def whole_ms(ts: datetime) -> datetime:
    """Commands carry UTC with millisecond precision; truncate (never round into the future)."""
    ts = ts.astimezone(UTC)
    return ts.replace(microsecond=ts.microsecond - ts.microsecond % 1000)


def order_command(req: OrderCommandRequest) -> Command:
    return Command(
        kind=CommandKind.ENTER,
        command_id=req.command_id,
        agent_id=req.agent_id,
        account=req.account,
        nonce=nonce_for(req.command_id),
        issued_at=whole_ms(req.issued_at),
        symbol=req.symbol,
        side=req.side,  # type: ignore[arg-type]  # Command converts str to Side
        order_type=OrderType.LMT,
        limit_price=req.limit_price,
        edge=req.edge,
        tif=req.tif,  # type: ignore[arg-type]
        quantity=req.quantity,
        parent_id=req.parent_id,
    )


def cancel_command(req: CancelCommandRequest) -> Command:
    return Command(
        kind=CommandKind.CANCEL,
        command_id=req.command_id,
        agent_id=req.agent_id,
        account=req.account,
        nonce=nonce_for(req.command_id),
        issued_at=whole_ms(req.issued_at),
        target_command_id=req.target_command_id,
    )


class CommandActivities:
    """Holds the worker's producer and the signing keys of the agents the worker acts for."""

    def __init__(
        self, producer: Producer, keys: Mapping[str, Ed25519PrivateKey], tracer: Tracer | None = None
    ) -> None:
        self._producer = producer
        self._keys = dict(keys)
        self._tracer = tracer or trace.get_tracer("activities.commands")

    @activity.defn(name="publish_order")
    async def publish_order(self, req: OrderCommandRequest) -> PublishResult:
        try:
            command = order_command(req)
        except CommandInvalid as exc:
            raise _refused(exc) from exc
        return await self._publish(command)

    @activity.defn(name="publish_cancel")
    async def publish_cancel(self, req: CancelCommandRequest) -> PublishResult:
        try:
            command = cancel_command(req)
        except CommandInvalid as exc:
            raise _refused(exc) from exc
        return await self._publish(command)

    async def _publish(self, command: Command) -> PublishResult:
        key = self._keys.get(command.agent_id)
        if key is None:
            raise UnknownSigner(command.agent_id)
        envelope = sign_command(command, key)
        if command.parent_id is None or command.kind is not CommandKind.ENTER:
            headers = inject_kafka_headers()
            meta = await self._send(envelope.to_wire(), command, headers)
        else:
            with self._slice_trace(command) as slice_context:
                meta = await self._send(envelope.to_wire(), command, inject_kafka_headers(slice_context))
        return PublishResult(
            command_id=command.command_id,
            partition=int(getattr(meta, "partition", -1)),
            offset=int(getattr(meta, "offset", -1)),
        )

    async def _send(self, wire: bytes, command: Command, headers: list[tuple[str, bytes]]) -> object:
        return await self._producer.send_and_wait(
            AGENT_COMMANDS, wire, key=command_key(command), headers=headers or None
        )

    @contextmanager
    def _slice_trace(self, command: Command) -> Iterator[Context]:
        """A new trace for the slice ``command``, its root linked to the current span (the
        publishing activity's, in the parent's trace); yields the context to send with it."""
        here = trace.get_current_span().get_span_context()
        links = [Link(here)] if here.is_valid else []
        attributes = {
            ATTR_COMMAND_ID: command.command_id,
            ATTR_ACCOUNT: command.account,
            ATTR_PARENT_ID: command.parent_id or "",
        }
        if command.symbol is not None:
            attributes[ATTR_SYMBOL] = command.symbol
        if here.is_valid:
            attributes[ATTR_PARENT_TRACE_ID] = format(here.trace_id, "032x")
        with self._tracer.start_as_current_span(
            SLICE_SPAN, context=Context(), kind=SpanKind.PRODUCER, links=links, attributes=attributes
        ) as span:
            yield trace.set_span_in_context(span, Context())


def _refused(exc: CommandInvalid) -> ApplicationError:
    return ApplicationError(
        f"command refused by the schema: {exc}", type="CommandInvalid", non_retryable=True
    )
