"""What the hot path needs from the ledger and Kafka, as narrow protocols.

The concrete ledger adapter (:mod:`hotpath.ledger_store`) implements :class:`HotLedger`; tests
of pure pieces may pass something smaller.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from ledger.iceberg_parents import SliceState
from trading.iceberg_parents import Parent
from trading.order_events import OrderEvent
from trading.security_events import SecurityEvent
from trading.sentry import RegisteredKey
from trading.signing import SignedCommand
from trading.sizing import RiskProfile


@dataclass(frozen=True)
class Ledgered:
    """A committed ledger entry: ``seq`` is its position in the chain."""

    seq: int
    committed_ns: int
    """``time.perf_counter_ns()`` right after the commit returned (for the write-ahead proof)."""


@dataclass(frozen=True)
class ReplayKey:
    agent_id: str
    nonce: str
    signature_hash: str
    issued_at: datetime


class HotLedger(Protocol):
    async def keys(self) -> Sequence[RegisteredKey]:
        """Every registered key, revoked ones included."""
        ...

    async def key(self, key_id: str) -> RegisteredKey | None: ...

    async def risk_profile(self, account: str) -> RiskProfile | None: ...

    async def risk_profiles(self) -> Mapping[str, RiskProfile]:
        """Every account's current risk profile."""
        ...

    async def recent_commands(self, since: datetime) -> Sequence[ReplayKey]:
        """Nonces and signature hashes of entries issued at or after ``since`` (to warm the
        replay guard)."""
        ...

    async def holds_signature(self, signature_hash: str) -> bool:
        """True when an authenticated entry with this signature hash is in the ledger."""
        ...

    async def iceberg_parent(self, command_id: str) -> Parent | None:
        """The accepted iceberg ``command_id``, its accepted controls applied (None: no such
        parent in the ledger)."""
        ...

    async def iceberg_slices(self, parent_id: str) -> Sequence[SliceState]:
        """The slices of ``parent_id`` the order-state rows know."""
        ...

    async def icebergs_signed_by(self, key_id: str) -> Sequence[str]:
        """Command ids of the accepted icebergs ``key_id`` signed."""
        ...

    async def append_accepted(
        self, envelope: SignedCommand, sized_quantity: int, detail: Mapping[str, Any]
    ) -> Ledgered:
        """Append the command as accepted (about to be sent); returns once committed.

        Raises :class:`RefusedByLedger` if the signature hash or (agent, nonce) is already
        there (the unique indexes are the last replay guard) or the signer's key is revoked
        (the ledger checks the registry itself, whatever this process has cached)."""
        ...

    async def append_rejected(
        self, envelope: SignedCommand, reason: str, detail: Mapping[str, Any], *, authenticated: bool = True
    ) -> Ledgered:
        """Append the command as refused with the reason. ``authenticated`` False for a command
        the sentry refused (its signature is evidence, not authority; replays may repeat)."""
        ...

    async def record_order_event(self, event: OrderEvent) -> None:
        """One ``orders.events`` record as a state row of the order (append-only)."""
        ...

    async def record_security_event(self, event: SecurityEvent) -> None: ...

    async def known_orders(self, command_ids: Sequence[str]) -> set[str]:
        """Which of ``command_ids`` are the floor's orders (ended ones too)."""
        ...

    async def record_ops_event(self, kind: str, severity: str, detail: Mapping[str, Any]) -> None:
        """An operational event (broker session change, breaker trip) for ops to read."""
        ...


class RefusedByLedger(Exception):
    """The ledger refused the append: a sentry ``reason`` (a replay caught by a unique index,
    or a revoked signer) and what the ledger said."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class EventProducer(Protocol):
    async def send(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Any: ...

    async def send_and_wait(self, topic: str, value: bytes, key: bytes | None = None) -> Any: ...
