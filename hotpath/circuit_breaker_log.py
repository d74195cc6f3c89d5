"""The circuit breaker's side of the ledger, from the hot path: the state it starts in, and
every automatic trip as a signed entry (the breaker itself: :mod:`hotpath.circuit_breaker`,
whose docstring lists every module of the breaker).

At start-up the newest breaker entry decides (:func:`ledger.circuit_breaker.newest_breaker_entry`):
a trip, or an entry that does not verify, starts the hot path HALTED; an operator's arm, or
no entry at all, starts it ACTIVE.

A trip happens inside the tick handler, which must not await; its entry is appended from a
task of its own, signed with the floor's breaker key (:data:`BREAKER_AGENT`, a ``service``
key made by ``floor up``), retried until the ledger takes it. An operator's arm waits for
those appends (:meth:`BreakerLog.settled`), so the ledger never shows an arm before the trip it
re-armed, and a restart never finds a stale trip newer than the arm.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from decimal import Decimal
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hotpath.circuit_breaker import BreakerChange, CircuitBreaker, Trip
from ledger import keys as registry
from ledger.circuit_breaker import BreakerEntry, append_trip, newest_breaker_entry
from ledger.db import UNREACHABLE, Db
from trading.circuit_breaker_state import KIND_TRIPPED, TripRecord
from trading.signing import KeyInvalid, key_id, private_key_from_pem

log = logging.getLogger(__name__)

BREAKER_AGENT = "floor-breaker"
"""The floor service whose key signs automatic trips (``var/keys/floor-breaker.key``)."""

RETRY_FIRST_S = 0.1
RETRY_MAX_S = 5.0


class BreakerKeyMissing(RuntimeError):
    """The hot path cannot sign its trips; the message says how to provide the key."""


async def load_breaker_key(db: Db, keys_dir: Path, agent_id: str = BREAKER_AGENT) -> Ed25519PrivateKey:
    """The breaker's private key, checked against the registry: an active ``service`` key of
    ``agent_id``. A hot path that could not ledger its trips must not start."""
    path = keys_dir / f"{agent_id}.key"
    try:
        key = private_key_from_pem(path.read_bytes())
    except FileNotFoundError:
        raise BreakerKeyMissing(
            f"no breaker signing key at {path}: `floor up` makes and registers it on first run"
        ) from None
    except KeyInvalid as exc:
        raise BreakerKeyMissing(f"{path}: {exc}") from None
    record = await registry.get_key(db, key_id(key))
    if (
        record is None
        or record.revoked
        or record.agent_id != agent_id
        or record.role != registry.ROLE_SERVICE
    ):
        raise BreakerKeyMissing(
            f"{path} is not an active service key of {agent_id} in the registry: restore the "
            f"registered key file, or revoke {agent_id} (`floor keys revoke {agent_id}`) and run "
            "`floor up` to register a new one"
        )
    return key


class BreakerLog:
    def __init__(self, db: Db, key: Ed25519PrivateKey, agent_id: str = BREAKER_AGENT) -> None:
        self._db = db
        self._key = key
        self._agent_id = agent_id
        self._pending: set[asyncio.Task[None]] = set()

    async def restore(self, breaker: CircuitBreaker) -> BreakerEntry | None:
        """Read the newest breaker entry; returns it (None: the floor never tripped). The caller
        halts the breaker when ``entry.state`` is HALTED, once its held orders are placed."""
        entry = await newest_breaker_entry(self._db, self._agent_id)
        if entry is None:
            return None
        if entry.problem is not None:
            log.critical(
                "newest breaker entry (seq %d, %s) does not verify: %s; starting HALTED",
                entry.seq,
                entry.kind,
                entry.problem,
            )
        breaker.last_change = BreakerChange(entry.kind, entry.agent_id, entry.command_id, entry.recorded_at)
        return entry

    def record_trip(
        self, trip: Trip, breaker: CircuitBreaker, *, cancelled_orders: int | None = None
    ) -> None:
        """Ledger ``trip`` from a task of its own (called from the tick handler);
        ``cancelled_orders``: how many of the floor's orders were working when the global cancel
        went out."""
        record = TripRecord(
            command_id=f"trip-{uuid.uuid4().hex}",
            agent_id=self._agent_id,
            nonce=uuid.uuid4().hex,
            issued_at=trip.at.replace(microsecond=trip.at.microsecond - trip.at.microsecond % 1000),
            symbol=trip.symbol,
            reference_high=trip.signal.reference_high,
            price=trip.signal.price,
            drop_pct=trip.signal.drop_pct,
            threshold_pct=trip.signal.threshold_pct or breaker.drop_pct,
            window_ms=trip.signal.window_ms or breaker.window_ms,
            cancelled_orders=cancelled_orders,
            tick_to_cancel_us=Decimal(trip.cancel_written_ns - trip.tick_recv_ns) / 1000,
        )
        breaker.last_change = BreakerChange(KIND_TRIPPED, self._agent_id, record.command_id, record.issued_at)
        # The signed payload holds the move and what the cancel did (the HUD's breaker banner);
        # the detail repeats them for `floor ledger tail`.
        detail: dict[str, object] = {
            "symbol": trip.symbol,
            "drop_pct": str(trip.signal.drop_pct),
            "tick_to_cancel_us": format(record.tick_to_cancel_us, "f"),
        }
        if cancelled_orders is not None:
            detail["cancelled_orders"] = cancelled_orders
        task = asyncio.get_running_loop().create_task(self._append(record, detail), name=record.command_id)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _append(self, record: TripRecord, detail: dict[str, object]) -> None:
        delay = RETRY_FIRST_S
        while True:
            try:
                entry = await append_trip(self._db, record, self._key, detail)
            except UNREACHABLE as exc:
                # The halt already holds in memory; the entry is what keeps it across a restart.
                log.error("trip %s not ledgered yet (%s); retrying in %.1f s", record.command_id, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            except Exception:
                log.exception(
                    "trip %s could not be ledgered; a restart will not know of it", record.command_id
                )
                return
            log.warning("trip %s on %s ledgered at seq %d", record.command_id, record.symbol, entry.seq)
            return

    async def settled(self) -> None:
        """Return once every trip recorded so far is in the ledger (or given up on)."""
        while pending := [task for task in self._pending if not task.done()]:
            await asyncio.gather(*pending, return_exceptions=True)
