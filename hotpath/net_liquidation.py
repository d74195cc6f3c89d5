"""The bankroll the Kelly sizer sizes with, written where the API can read it.

The hot path alone talks to the broker, so the API cannot ask for an account's net liquidation;
a trader's sizing suggestion must still use the very value an ``enter`` would be sized with.
This task reads it the way intake does (:meth:`brokers.base.Broker.net_liquidation`: the value
the broker last reported, cached) once every :data:`INTERVAL_S` and writes it to
``account_values`` every time, changed or not: ``reported_at`` is when the hot path last
confirmed the value with a live broker session, so the API can refuse a value nobody vouches for
any more (:data:`trading.sizing_suggestion.STALE_BANKROLL_S`). While the broker is disconnected
the cached value may be hours old, so nothing is written and the row goes stale.
Off the order path: intake never waits for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from brokers.base import Broker, NotConnected
from ledger.account_values import record_net_liquidation
from ledger.db import UNREACHABLE, Db

log = logging.getLogger(__name__)

INTERVAL_S = 1.0


class NetLiquidationReporter:
    def __init__(
        self,
        broker: Broker,
        db: Db,
        accounts: Sequence[str],
        *,
        interval_s: float = INTERVAL_S,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._broker = broker
        self._db = db
        self._accounts = tuple(accounts)
        self._interval_s = interval_s
        self._clock = clock

    async def report_once(self) -> int:
        """Confirms each account's value; returns how many rows were written."""
        if not self._broker.connected:
            return 0  # a cached value is not a confirmed one: let the row age
        written = 0
        for account in self._accounts:
            try:
                value = await self._broker.net_liquidation(account)
            except NotConnected:
                continue  # not reported yet: nothing to show, and the API says so
            await record_net_liquidation(self._db, account, value, self._clock())
            written += 1
        return written

    async def run(self) -> None:
        while True:
            try:
                await self.report_once()
            except UNREACHABLE as exc:
                log.warning("net liquidation not recorded (%s); trying again", exc)
            except Exception:
                log.exception("net liquidation not recorded")
            await asyncio.sleep(self._interval_s)
