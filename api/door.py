"""The REST door for signed commands: verify at the edge, then publish to ``agent.commands``.

The door asks the sentry the same question the hot path asks again later (Kafka is not a trust
boundary). Its replay memory is its own :class:`~trading.sentry.ReplayGuard` (commands it
published and the hot path may not have ledgered yet) plus the ledger (everything committed).
Nothing refused here is produced to Kafka. An order in a symbol the floor does not trade is
refused here too (422 ``unknown_symbol``): the hot path would only refuse it later.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from opentelemetry import trace

from bus.command_keys import command_key
from ledger.db import UNREACHABLE
from observability.security import SecurityRecorder, refusal_event
from observability.telemetry import Metrics
from observability.tracing import ATTR_ACCOUNT, ATTR_COMMAND_ID, ATTR_SYMBOL
from trading import sentry
from trading.commands import Command, CommandInvalid, CommandKind
from trading.sentry import RegisteredKey, ReplayGuard, Verdict
from trading.signing import EnvelopeInvalid, SignedCommand
from trading.symbols import UNKNOWN_SYMBOL, unknown_symbol_detail

log = logging.getLogger(__name__)

AGENT_UNAVAILABLE = "the command bus did not take the command; send it again"
LEDGER_UNAVAILABLE = "ledger_unavailable"
BUS_UNAVAILABLE = "bus_unavailable"
"""Kafka did not acknowledge the command: it may or may not have reached the broker."""
OUTBOX_UNAVAILABLE_DETAIL = (
    "the command could not be kept in the door's outbox (the ledger's Postgres), so nothing was "
    "published: check that Postgres is running and the API's role may write command_outbox "
    "(`floor status`, DATABASE_URL) and send the command again"
)
LEDGER_UNAVAILABLE_DETAIL = (
    "the ledger's database (Postgres) is unreachable, so the command could not be checked and "
    "nothing was published: check that Postgres is running (`floor status`, DATABASE_URL) and send "
    "the command again"
)


class KeyLookup(Protocol):
    async def registered_key(self, key_id: str) -> RegisteredKey | None: ...


class ReplayLookup(Protocol):
    async def already_ledgered(self, agent_id: str, nonce: str, signature_hash: str) -> str | None:
        """The refusal reason if the ledger already holds this nonce or signature, else None."""
        ...


class Publisher(Protocol):
    async def send_and_wait(self, topic: str, value: bytes, key: bytes | None = None) -> Any: ...


class Outbox(Protocol):
    """Commands kept until the ledger decides them (:class:`api.outbox.CommandOutbox`)."""

    async def keep(self, envelope: SignedCommand, partition_key: bytes) -> None:
        """Keep a command about to be published (where the broker puts it is not known yet)."""
        ...

    async def published(self, envelope: SignedCommand, partition: int, offset: int) -> None:
        """Note where the broker acknowledged a kept command."""
        ...

    async def forget(self, envelope: SignedCommand) -> None:
        """Drop a kept command the broker did not take (the client is told to send it again)."""
        ...


@dataclass(frozen=True)
class Published:
    command_id: str
    partition: int
    offset: int


@dataclass(frozen=True)
class Rejected:
    """The door refused: ``status`` is the HTTP status (403 security, 422 bad input, 503 the
    bus or the ledger is down and nothing was published)."""

    status: int
    error: str
    field: str | None = None
    detail: str = ""


class Door:
    def __init__(
        self,
        keys: KeyLookup,
        ledger: ReplayLookup,
        publisher: Publisher,
        security: SecurityRecorder,
        topic: str,
        replay: ReplayGuard | None = None,
        metrics: Metrics | None = None,
        symbols: Iterable[str] | None = None,
        outbox: Outbox | None = None,
    ) -> None:
        self._keys = keys
        self._ledger = ledger
        self._publisher = publisher
        self._security = security
        self._topic = topic
        self._replay = replay or ReplayGuard()
        self._metrics = metrics
        self._symbols = None if symbols is None else frozenset(symbols)
        """The floor's symbol list (``FLOOR_HOTPATH_SYMBOLS``); None: the hot path alone decides."""
        self._outbox = outbox

    async def submit(self, body: bytes, source_address: str | None) -> Published | Rejected:
        try:
            outcome = await self._submit(body, source_address)
        except UNREACHABLE as exc:
            # Before anything was remembered or produced: the key lookup, the replay check or
            # the refusal's security event needed the database.
            log.error("ledger unreachable answering %s: %s: %s", source_address, type(exc).__name__, exc)
            outcome = Rejected(503, LEDGER_UNAVAILABLE, None, LEDGER_UNAVAILABLE_DETAIL)
        if self._metrics is not None:
            self._metrics.commands_received.add(1, {"door": "rest"})
            if isinstance(outcome, Rejected):
                self._metrics.commands_refused.add(1, {"reason": outcome.error})
        return outcome

    async def _submit(self, body: bytes, source_address: str | None) -> Published | Rejected:
        try:
            data = json.loads(body, parse_float=_refuse_float)
        except _FloatRefused as exc:
            return Rejected(422, "schema", "command", f"JSON numbers with fractions are not allowed: {exc}")
        except (ValueError, RecursionError) as exc:
            # JSONDecodeError and UnicodeDecodeError are ValueErrors, as is an integer longer
            # than Python converts; nesting deeper than the parser recurses is a RecursionError.
            return Rejected(422, "malformed_json", "body", str(exc) or type(exc).__name__)
        try:
            envelope = sentry.read_envelope(data)
        except sentry.Refused as exc:
            return await self._refuse(exc.verdict, data, None, source_address)
        except (EnvelopeInvalid, CommandInvalid) as exc:
            return Rejected(422, "schema", exc.field, exc.reason)
        # The request's span names the command: `floor trace` finds the trace by it. The send
        # to agent.commands (instrumented) carries the trace on in the record's headers.
        _name_span(envelope.command)

        now = datetime.now(UTC)
        self._replay.forget_older_than_window(now)
        key = await self._keys.registered_key(envelope.signer)
        verdict = sentry.check(envelope, key, self._replay, now)
        if verdict.accepted:
            command = envelope.command
            ledgered = await self._ledger.already_ledgered(
                command.agent_id, command.nonce, envelope.signature_hash
            )
            if ledgered is not None:
                verdict = Verdict(ledgered, key.agent_id if key else None, "already in the ledger")
        if not verdict.accepted:
            return await self._refuse(verdict, data, envelope, source_address)

        command = envelope.command
        if not self._trades(command):
            assert command.symbol is not None
            detail = unknown_symbol_detail(command.symbol, self._symbols or ())
            return Rejected(422, UNKNOWN_SYMBOL, "symbol", detail)
        # Remember before the produce so a concurrent duplicate request is refused while this one
        # is still in flight.
        self._replay.remember(command.agent_id, command.nonce, envelope.signature_hash, command.issued_at)
        partition_key = command_key(command)
        if self._outbox is not None:
            # Kept before it is produced: a door that dies between the broker's ack and this
            # insert, or an insert failing after it, would leave an acknowledged command that a
            # broker restart loses with nothing to publish it again.
            try:
                await self._outbox.keep(envelope, partition_key)
            except Exception as exc:
                self._replay.release(command.agent_id, command.nonce, envelope.signature_hash)
                log.exception("command %s not kept in the outbox, so not published", command.command_id)
                return Rejected(
                    503, LEDGER_UNAVAILABLE, None, f"{OUTBOX_UNAVAILABLE_DETAIL} ({type(exc).__name__})"
                )
        try:
            record = await self._publisher.send_and_wait(self._topic, envelope.to_wire(), key=partition_key)
        except Exception as exc:
            # Not published, so not a replay if the client sends it again.
            self._replay.release(command.agent_id, command.nonce, envelope.signature_hash)
            log.exception("command %s not published", command.command_id)
            await self._forget(envelope)
            return Rejected(503, BUS_UNAVAILABLE, None, f"{AGENT_UNAVAILABLE}: {type(exc).__name__}")
        published = Published(command.command_id, int(record.partition), int(record.offset))
        if self._outbox is not None:
            try:
                await self._outbox.published(envelope, published.partition, published.offset)
            except Exception:
                # Kept without its place: the outbox's check looks for it in the whole log.
                log.exception(
                    "command %s published, but its offset not noted in the outbox", command.command_id
                )
        return published

    async def _forget(self, envelope: SignedCommand) -> None:
        if self._outbox is None:
            return
        try:
            await self._outbox.forget(envelope)
        except Exception:
            # Kept: the outbox publishes it again unless the broker took it after all (and then
            # the hot path refuses the second copy as a duplicate delivery).
            log.exception(
                "command %s not taken by the broker and not dropped from the outbox",
                envelope.command.command_id,
            )

    async def refused_at_guard(self, reason: str, source_address: str | None, detail: str) -> None:
        """Record a request the guard (rate or body limit) refused before it reached :meth:`submit`."""
        event = refusal_event(
            reason=reason, severity="warning", source="api", source_address=source_address, detail=detail
        )
        await self._security.record(event)
        if self._metrics is not None:
            self._metrics.commands_refused.add(1, {"reason": reason})

    async def _refuse(
        self, verdict: Verdict, data: Any, envelope: SignedCommand | None, source_address: str | None
    ) -> Rejected:
        assert verdict.reason is not None and verdict.severity is not None
        raw_command = data.get("command") if isinstance(data, dict) else None
        claimed = raw_command.get("agent_id") if isinstance(raw_command, dict) else None
        command_id = raw_command.get("command_id") if isinstance(raw_command, dict) else None
        signer = data.get("signer") if isinstance(data, dict) else None
        event = refusal_event(
            reason=verdict.reason,
            severity=verdict.severity.value,
            source="api",
            source_address=source_address,
            agent_id=verdict.agent_id,
            key_id=signer if isinstance(signer, str) else None,
            command_id=command_id if isinstance(command_id, str) else None,
            signature_hash=envelope.signature_hash if envelope is not None else None,
            claimed_agent_id=claimed if isinstance(claimed, str) else None,
            detail=verdict.detail,
        )
        await self._security.record(event)
        if self._metrics is not None:
            self._metrics.security_events.add(1, {"reason": event.reason, "severity": event.severity.value})
        return Rejected(403, verdict.reason, None, verdict.detail)

    def _trades(self, command: Command) -> bool:
        """False for an order in a symbol the floor's list does not hold: it could only be refused
        later, so it is refused here, where the sender still waits for the answer."""
        if self._symbols is None or command.kind not in _ORDER_KINDS:
            return True
        return command.symbol in self._symbols


_ORDER_KINDS = frozenset({CommandKind.ENTER, CommandKind.EXIT, CommandKind.ICEBERG})


def _name_span(command: Command) -> None:
    span = trace.get_current_span()
    if not span.is_recording():
        return
    span.set_attribute(ATTR_COMMAND_ID, command.command_id)
    span.set_attribute(ATTR_ACCOUNT, command.account)
    if command.symbol is not None:
        span.set_attribute(ATTR_SYMBOL, command.symbol)


class _FloatRefused(ValueError):
    pass


def _refuse_float(text: str) -> Any:
    # A binary float never enters the floor: prices are decimal strings.
    raise _FloatRefused(text)
