"""Recording the hot path's refusals: every one named, in the ledger, and where a genuine
command concerns an order on ``orders.events``; those that smell of forgery or replay also as
security events.

* Sentry refusals (forged, unknown, revoked, replayed, stale, ...) are security events. An
  envelope a registered key really signed (revoked, replayed, stale, for an account it may not
  trade, ...) is also appended to the ledger *unauthenticated*, as evidence: such an entry
  never occupies a genuine command's signature, nonce or id, and ``floor ledger verify`` does
  not take its signature for authority. One that no registered key signed (no signature, an
  unknown key, a signature that does not verify) proves nothing about anyone and anyone can
  make a million of them: it is a security event only, never a ledger row.
* Security events name the Kafka partition a record came from as their source (the offset is
  in the detail), so the process's :class:`~observability.flood.FloodSummary` records a flood
  from one partition as a few events and a count per window, not one row per record.
* Every later refusal (``breaker.halted``, ``sizing.*``, ``risk.*``) is an authenticated
  ledger entry with the reason (the command was genuine; the floor said no).
* An envelope the ledger already decided on, delivered again, changes nothing: a warning-level
  security event and no record that could contradict the order's own.
* A failure intake did not foresee (an exception in any step, other than the ledger being
  unreachable, which holds the record instead) is ``intake.internal_error``, its detail naming
  the exception: a genuine command's refusal like any other; a critical ops event when the
  command was already ledgered as accepted (the order's own records say what became of it);
  a security event when it came before the envelope was admitted.
* A command the sentry refused never speaks for an order: no ``rejected`` record and no
  order-state row under its id, whatever id it names. Its id is the sender's choice and
  unauthenticated: a forgery could name a live order's id, or an id the floor will use later
  (an iceberg's next slice, ``iceberg-<id>.s0002``), and a record under it would mark that
  order rejected to the order-state rows, recovery and its lifecycle workflow. The security
  event is its only record; the agent that really sent it reads it there.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable

from hotpath.floor_orders import refusal_event
from hotpath.outcomes import Outcome
from hotpath.ports import HotLedger, RefusedByLedger
from observability.security import SecurityRecorder
from observability.security import refusal_event as security_refusal
from observability.telemetry import Metrics
from trading.commands import Command, CommandInvalid
from trading.order_events import OrderEvent
from trading.security_events import SecurityEvent
from trading.sentry import REPLAYED_SIGNATURE, REVOKED_KEY, UNATTRIBUTED, Verdict
from trading.signing import SignedCommand

log = logging.getLogger(__name__)

MALFORMED = "intake.malformed"
DUPLICATE_DELIVERY = "intake.duplicate_delivery"
INTERNAL_ERROR = "intake.internal_error"
"""An exception intake did not foresee, in any step: the command is refused under this name."""
DETAIL_CHARS = 500


class Refusals:
    def __init__(
        self,
        ledger: HotLedger,
        security: SecurityRecorder,
        metrics: Metrics,
        publish: Callable[[OrderEvent], Awaitable[None]],
        on_revoked: Callable[[str], None] | None = None,
    ) -> None:
        self._ledger = ledger
        self._security = security
        self._metrics = metrics
        self._publish = publish
        self._on_revoked = on_revoked
        """Told the key id when the ledger refused a key the caller's registry still held."""

    async def floor(self, envelope: SignedCommand, reason: str, detail: dict[str, object]) -> Outcome:
        """A genuine command the floor said no to (breaker, sizing, risk, unsupported)."""
        command = envelope.command
        try:
            await self._ledger.append_rejected(envelope, reason, detail)
        except RefusedByLedger as exc:
            # A key revoked since the registry was loaded, or a replay only the ledger's unique
            # indexes caught: that, not ``reason``, is the news.
            return await self.by_ledger(exc, envelope, "")
        self._metrics.commands_refused.add(1, {"reason": reason})
        event = refusal_event(command, reason, _int_or_none(detail.get("quantity")))
        if event is not None:
            await self._publish(event)
        return Outcome(command.command_id, reason)

    async def internal_error(self, envelope: SignedCommand, exc: BaseException) -> Outcome:
        """``envelope``'s handling failed with ``exc``: refused as ``intake.internal_error``. If
        the ledger already holds it as accepted (the failure came after the write-ahead entry),
        that entry stands and the failure is a critical ops event instead."""
        command = envelope.command
        detail = failure_detail(exc)
        try:
            await self._ledger.append_rejected(envelope, INTERNAL_ERROR, detail)
        except RefusedByLedger as refused:
            if refused.reason != REPLAYED_SIGNATURE:
                return await self.by_ledger(refused, envelope, "")
            await self._ledger.record_ops_event(
                INTERNAL_ERROR,
                "critical",
                {
                    "command_id": command.command_id,
                    "agent_id": command.agent_id,
                    "after": "accepted",
                    **detail,
                },
            )
            return Outcome(command.command_id, INTERNAL_ERROR)
        self._metrics.commands_refused.add(1, {"reason": INTERNAL_ERROR})
        event = refusal_event(command, INTERNAL_ERROR)
        if event is not None:
            await self._publish(event)
        return Outcome(command.command_id, INTERNAL_ERROR)

    async def unexpected(self, exc: BaseException, source: str) -> Outcome:
        """A failure before any envelope was admitted: nothing genuine to refuse in the ledger,
        so a security event names it (and where the record sits in Kafka)."""
        self._metrics.commands_refused.add(1, {"reason": INTERNAL_ERROR})
        detail = failure_detail(exc)
        await self._record(
            source,
            security_refusal(
                reason=INTERNAL_ERROR,
                severity="error",
                source="hotpath",
                source_address=None,
                detail=f"{detail['exception']}: {detail['detail']}",
            ),
        )
        return Outcome(None, INTERNAL_ERROR)

    async def by_ledger(self, exc: RefusedByLedger, envelope: SignedCommand, source: str) -> Outcome:
        """The ledger refused an authenticated append the sentry had let through: a replay its
        unique indexes caught, or a key revoked after the registry was last loaded.

        The very signature already ledgered is the very envelope: a delivery retried after a
        first attempt whose commit went through though its caller never heard back."""
        if exc.reason == REPLAYED_SIGNATURE:
            return await self.redelivered(envelope, source)
        if exc.reason == REVOKED_KEY and self._on_revoked is not None:
            self._on_revoked(envelope.signer)
        verdict = Verdict(exc.reason, envelope.command.agent_id, exc.detail)
        return await self.sentry(verdict, envelope.command, None, source, envelope)

    async def sentry(
        self,
        verdict: Verdict,
        command: Command | None,
        data: object,
        source: str,
        envelope: SignedCommand | None = None,
    ) -> Outcome:
        """A command the sentry refused; ``envelope`` is None when it did not even decode."""
        assert verdict.reason is not None and verdict.severity is not None
        self._metrics.commands_refused.add(1, {"reason": verdict.reason})
        self._metrics.security_events.add(1, {"reason": verdict.reason, "severity": verdict.severity.value})
        signer = data.get("signer") if isinstance(data, dict) else None
        if envelope is not None:
            signer = envelope.signer
        # The evidence first: whoever reads the security event finds it in the ledger.
        if command is not None and envelope is not None and verdict.reason not in UNATTRIBUTED:
            try:
                await self._ledger.append_rejected(
                    envelope, verdict.reason, {"detail": verdict.detail}, authenticated=False
                )
            except RefusedByLedger:
                log.warning("unauthenticated refusal of %s not ledgered twice", command.command_id)
        await self._record(
            source,
            security_refusal(
                reason=verdict.reason,
                severity=verdict.severity.value,
                source="hotpath",
                source_address=None,
                agent_id=verdict.agent_id,
                key_id=signer if isinstance(signer, str) else None,
                command_id=command.command_id if command else None,
                signature_hash=envelope.signature_hash if envelope is not None else None,
                claimed_agent_id=command.agent_id if command else None,
                detail=verdict.detail,
            ),
        )
        return Outcome(command.command_id if command else None, verdict.reason)

    async def _record(self, source: str, event: SecurityEvent) -> None:
        """Record ``event`` as from ``source``'s partition (``topic[p]@offset``), its offset in
        the detail: a flood from one partition is one source to the flood summary."""
        partition, at, offset = source.partition("@")
        detail = {**event.detail, "offset": offset} if at else event.detail
        await self._security.record(
            dataclasses.replace(event, source_address=partition or None, detail=detail)
        )

    async def redelivered(self, envelope: SignedCommand, source: str) -> Outcome:
        """The very envelope the ledger already decided on: Kafka delivering it again (after a
        restart or a rebalance), or someone replaying a captured record. Either way the decision
        stands and the order's own events already tell its story; publishing a rejection would
        contradict them. A warning-level security event keeps the replay visible."""
        command = envelope.command
        self._metrics.commands_refused.add(1, {"reason": DUPLICATE_DELIVERY})
        log.warning("%s redelivered at %s; already in the ledger", command.command_id, source)
        await self._record(
            source,
            envelope_event(
                envelope, DUPLICATE_DELIVERY, "warning", "identical to an envelope already in the ledger"
            ),
        )
        return Outcome(command.command_id, DUPLICATE_DELIVERY)

    async def malformed(self, detail: str, source: str) -> Outcome:
        self._metrics.commands_refused.add(1, {"reason": MALFORMED})
        await self._record(
            source,
            security_refusal(
                reason=MALFORMED,
                severity="error",
                source="hotpath",
                source_address=None,
                detail=detail,
            ),
        )
        return Outcome(None, MALFORMED)


def loose_command(data: object) -> Command | None:
    """The command inside an envelope refused before decoding, if it decodes on its own."""
    if not isinstance(data, dict):
        return None
    try:
        return Command.from_json_dict(data.get("command"))
    except (CommandInvalid, TypeError, ValueError):
        return None


def failure_detail(exc: BaseException) -> dict[str, object]:
    """What an ``intake.internal_error`` records of its exception: the type and the message."""
    return {"exception": type(exc).__name__, "detail": str(exc)[:DETAIL_CHARS]}


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) else None


def envelope_event(envelope: SignedCommand, reason: str, severity: str, detail: str) -> SecurityEvent:
    """The hot path's security event about a decoded, signed envelope: its signer, command and
    signature named (the source partition is added where the record came from Kafka)."""
    command = envelope.command
    return security_refusal(
        reason=reason,
        severity=severity,
        source="hotpath",
        source_address=None,
        agent_id=command.agent_id,
        key_id=envelope.signer,
        command_id=command.command_id,
        signature_hash=envelope.signature_hash,
        detail=detail,
    )
