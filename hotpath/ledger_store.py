"""The hot path's ledger adapter: :class:`~hotpath.ports.HotLedger` over an asyncpg pool.

Appends go through :mod:`ledger.append` (hash chain, unique indexes); keys, risk profiles,
order state rows and security events through their :mod:`ledger` modules. Every call outside
an explicit transaction is committed when it returns, which is what makes the accepted entry a
write-ahead record; appends that queue behind a commit in flight are committed together, each
caller returning once the transaction holding its own entry has committed
(:mod:`hotpath.group_commit`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from hotpath.group_commit import GroupCommit
from hotpath.ports import Ledgered, RefusedByLedger, ReplayKey
from ledger import iceberg_parents, security_events
from ledger.append import (
    AppendEntry,
    BatchDb,
    Decision,
    LedgerRecord,
    ReplayRefused,
    SignerRevoked,
    append_entries,
    append_entry,
    command_entry,
    load_replay_keys,
    refusal_entry,
)
from ledger.db import Db
from ledger.key_trust import trusted_key, trusted_keys
from ledger.ops_events import record_ops_event
from ledger.order_events import known_orders, record_order_event
from ledger.risk_profiles import all_profiles, get_profile
from trading import sentry
from trading.iceberg_parents import Parent
from trading.order_events import OrderEvent
from trading.security_events import SecurityEvent
from trading.sentry import RegisteredKey
from trading.signing import SignedCommand
from trading.sizing import RiskProfile

_REPLAY_REASON = {
    "signature_hash": sentry.REPLAYED_SIGNATURE,
    "nonce": sentry.REPLAYED_NONCE,
    "command_id": sentry.REPLAYED_COMMAND_ID,
}


class LedgerStore:
    def __init__(self, db: Db, writer: BatchDb | None = None) -> None:
        """``writer`` takes the ledger appends (the write-ahead step on the order path); ``db``
        everything else. Appends that queue behind a commit in flight are committed together
        (:mod:`hotpath.group_commit`), in the order they came."""
        self._db: Db = db
        # asyncpg's pools and connections run one statement for many argument sets too.
        self._writer: BatchDb = writer if writer is not None else cast(BatchDb, db)
        self.appends = GroupCommit(self._append_one, self._append_many)

    async def _append_one(self, entry: AppendEntry) -> LedgerRecord:
        return await append_entry(self._writer, entry)

    async def _append_many(self, entries: Sequence[AppendEntry]) -> list[LedgerRecord]:
        return await append_entries(self._writer, entries)

    async def keys(self) -> Sequence[RegisteredKey]:
        """The trusted keys only: a row whose registration does not verify is no key here."""
        return [record.registered() for record in (await trusted_keys(self._db)).values()]

    async def key(self, key_id: str) -> RegisteredKey | None:
        record = await trusted_key(self._db, key_id)
        return None if record is None else record.registered()

    async def risk_profile(self, account: str) -> RiskProfile | None:
        return await get_profile(self._db, account)

    async def risk_profiles(self) -> Mapping[str, RiskProfile]:
        return await all_profiles(self._db)

    async def recent_commands(self, since: datetime) -> Sequence[ReplayKey]:
        return [
            ReplayKey(k.agent_id, k.nonce, k.signature_hash, k.issued_at)
            for k in await load_replay_keys(self._db, since)
        ]

    async def holds_signature(self, signature_hash: str) -> bool:
        return bool(
            await self._db.fetchval(
                "SELECT EXISTS (SELECT 1 FROM ledger_entries WHERE signature_hash = $1 AND authenticated)",
                signature_hash,
            )
        )

    async def iceberg_parent(self, command_id: str) -> Parent | None:
        return await iceberg_parents.load_parent(self._db, command_id)

    async def iceberg_slices(self, parent_id: str) -> Sequence[iceberg_parents.SliceState]:
        return await iceberg_parents.slice_states(self._db, parent_id)

    async def icebergs_signed_by(self, key_id: str) -> Sequence[str]:
        return await iceberg_parents.parents_signed_by(self._db, key_id)

    async def append_accepted(
        self, envelope: SignedCommand, sized_quantity: int, detail: Mapping[str, Any]
    ) -> Ledgered:
        entry = command_entry(envelope, decision=Decision.ACCEPTED, detail=_json(detail))
        try:
            # Queued before the first await: the order of appends is the order of these calls.
            record = await self.appends.append(entry)
        except (ReplayRefused, SignerRevoked) as exc:
            raise _refused(exc) from None
        return Ledgered(record.seq, time.perf_counter_ns())

    async def append_rejected(
        self, envelope: SignedCommand, reason: str, detail: Mapping[str, Any], *, authenticated: bool = True
    ) -> Ledgered:
        if authenticated:
            entry = command_entry(envelope, decision=Decision.REJECTED, reason=reason, detail=_json(detail))
        else:
            entry = refusal_entry(
                payload=envelope.canonical,
                signer=envelope.signer,
                signature=envelope.signature,
                reason=reason,
                scheme=envelope.scheme,
                detail=_json(detail),
            )
        try:
            record = await self.appends.append(entry)
        except (ReplayRefused, SignerRevoked) as exc:
            raise _refused(exc) from None
        return Ledgered(record.seq, time.perf_counter_ns())

    async def record_order_event(self, event: OrderEvent) -> None:
        await record_order_event(self._db, event)

    async def known_orders(self, command_ids: Sequence[str]) -> set[str]:
        return await known_orders(self._db, command_ids)

    async def record_ops_event(self, kind: str, severity: str, detail: Mapping[str, Any]) -> None:
        await record_ops_event(self._db, "hotpath", kind, severity, detail)

    async def record_security_event(self, event: SecurityEvent) -> None:
        await security_events.record_security_event(self._db, event)


def _refused(exc: ReplayRefused | SignerRevoked) -> RefusedByLedger:
    if isinstance(exc, SignerRevoked):
        return RefusedByLedger(sentry.REVOKED_KEY, str(exc))
    return RefusedByLedger(_REPLAY_REASON.get(exc.field, sentry.REPLAYED_NONCE), str(exc))


def _json(detail: Mapping[str, Any]) -> dict[str, Any]:
    """The ledger's detail holds JSON values only: decimals (and anything else) as strings."""
    return {k: v if isinstance(v, str | int | bool | type(None)) else str(v) for k, v in detail.items()}
