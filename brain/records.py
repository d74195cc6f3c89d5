"""What the brain believes of Kafka: ``market.depth`` and ``orders.events`` records the hot path
signed, and nothing else.

A record is checked against the key registry (:class:`~bus.signed_records.RecordVerifier`) before
the brain acts on it. A forgery is ignored, counted, and recorded as a security event (the
ledger's table and ``security.events``), as the API hub records one; the record is ignored
whether or not the event could be stored.
"""

from __future__ import annotations

import json
import logging
from collections import Counter

from bus.signed_records import RecordVerifier
from bus.topics import MARKET_DEPTH, ORDERS_EVENTS
from ledger.db import Db
from ledger.security_events import record_security_event
from observability.security import SecurityEvent, SecurityRecorder, unverified_record_event
from trading.demo_rules import Quote
from trading.depth_book import DepthRecordError, depth_update
from trading.order_events import OrderEvent, OrderEventError, from_dict
from trading.record_signing import RecordRefused

log = logging.getLogger(__name__)

RECORD_REFUSED = "brain.record_refused"
"""A ``market.depth`` or ``orders.events`` record the hot path did not sign."""
RECORD_UNREADABLE = "brain.record_unreadable"
"""A signed record that does not decode (a newer writer's, say)."""
SOURCE = "brain"
"""The ``source`` of the brain's security events."""


class LedgerSecurityStore:
    """Security events into the ledger's table, as the API stores them."""

    def __init__(self, db: Db) -> None:
        self._db = db

    async def record_security_event(self, event: SecurityEvent) -> None:
        await record_security_event(self._db, event)


class BrainRecords:
    """Verified books and order events out of raw records; ``outcomes`` counts what was not."""

    def __init__(self, verifier: RecordVerifier, security: SecurityRecorder, outcomes: Counter[str]) -> None:
        self._verifier = verifier
        self._security = security
        self.outcomes = outcomes

    async def quote(self, where: str, raw: bytes) -> Quote | None:
        """The touch of a ``market.depth`` record the hot path signed (None: not signed, not
        readable, or a side of the book empty)."""
        try:
            book = depth_update(await self._verifier.verify(MARKET_DEPTH, raw))
        except RecordRefused as exc:
            await self._refused(MARKET_DEPTH, where, raw, exc)
            return None
        except DepthRecordError as exc:
            self._unreadable(where, exc)
            return None
        if not book.bids or not book.asks:
            return None
        return Quote(book.symbol, book.bids[0][0], book.asks[0][0])

    async def event(self, where: str, raw: bytes) -> OrderEvent | None:
        """The ``orders.events`` record as an event if the hot path signed it."""
        try:
            return from_dict(await self._verifier.verify(ORDERS_EVENTS, raw))
        except RecordRefused as exc:
            await self._refused(ORDERS_EVENTS, where, raw, exc)
        except OrderEventError as exc:
            self._unreadable(where, exc)
        return None

    async def _refused(self, topic: str, where: str, raw: bytes, exc: RecordRefused) -> None:
        self.outcomes[RECORD_REFUSED] += 1
        log.warning("%s: %s at %s", RECORD_REFUSED, exc.reason, where)
        try:
            await self._security.record(unverified_record_event(topic, where, raw, exc, source=SOURCE))
        except Exception:
            log.exception("%s refused (%s); its security event was not stored", where, exc.reason)

    def _unreadable(self, where: str, exc: Exception) -> None:
        self.outcomes[RECORD_UNREADABLE] += 1
        log.warning("%s: %s at %s", RECORD_UNREADABLE, exc, where)


def claimed(raw: bytes, key: str) -> str | None:
    """What a record says it is about (``symbol``, ``command_id``), before anyone believes it."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, str) else None
