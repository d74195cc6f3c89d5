"""What ``bench.failover`` watches from outside the floor: the venue's acceptances, the hot
path's session changes, the ledger, and the venue's own record of every order.

* :class:`Acceptances`: one ib_async master client (id 0) per gateway. The paper gateways send
  the master every order event of every client, so each sees every order the venue accepts,
  whichever gateway carried it; the first ``PreSubmitted``/``Submitted`` of each ``orderRef``
  (the command id) is stamped with this process's wall clock on arrival. Each also streams
  the symbol's quotes, so the last byte it had from its gateway tells when a freeze began.
* :class:`SessionLog`: the hot path's session changes as it records them (ops events in
  Postgres, ``broker.*``), each with the time the hot path decided it.
* :func:`venue_orders` and :func:`ledger_decisions`: the two records the lost and duplicated
  counts are checked against.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from ib_async import IB, Stock, Trade

from brokers.ib_transport import BoundConnection, install

MASTER_CLIENT_ID = 0
_WORKING = frozenset({"PreSubmitted", "Submitted"})


class Acceptances:
    """Orders the venue accepted, by ``orderRef``: wall-clock ns of the first sight."""

    def __init__(self, host: str, symbol: str) -> None:
        self.host = host
        self.symbol = symbol
        self.first_seen: dict[str, int] = {}
        self._by_port: dict[int, IB] = {}
        self._conns: dict[int, BoundConnection] = {}
        self._changed = asyncio.Event()

    async def watch(self, port: int) -> None:
        """(Re)connect the master client of the gateway on ``port``."""
        self.forget(port)
        ib = IB()
        conn = install(ib, None)
        ib.openOrderEvent += self._on_trade
        ib.orderStatusEvent += self._on_trade
        await ib.connectAsync(self.host, port, MASTER_CLIENT_ID, timeout=10, readonly=True)
        contract = Stock(self.symbol, "SMART", "USD")
        await ib.qualifyContractsAsync(contract)
        ib.reqMktData(contract)
        self._by_port[port] = ib
        self._conns[port] = conn

    def last_byte_ns(self, port: int) -> int:
        """Wall-clock ns of the last byte the gateway on ``port`` sent its master client."""
        conn = self._conns[port]
        return time.time_ns() - int((time.monotonic() - conn.last_recv) * 1e9)

    def forget(self, port: int) -> None:
        """The gateway on ``port`` is gone (killed): drop its client without a goodbye."""
        ib = self._by_port.pop(port, None)
        self._conns.pop(port, None)
        if ib is not None:
            ib.disconnect()

    def _on_trade(self, trade: Trade) -> None:
        ref = trade.order.orderRef
        if ref and trade.orderStatus.status in _WORKING and ref not in self.first_seen:
            self.first_seen[ref] = time.time_ns()
            self._changed.set()

    async def first_after(self, since_ns: int, timeout: float) -> tuple[str, int] | None:  # noqa: ASYNC109
        """The first order accepted at or after ``since_ns`` (wall ns), waiting up to
        ``timeout`` seconds for one; None if none came."""
        deadline = time.monotonic() + timeout
        while True:
            after = [(t, ref) for ref, t in self.first_seen.items() if t >= since_ns]
            if after:
                t, ref = min(after)
                return ref, t
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                return None

    def any_client(self) -> IB:
        for ib in self._by_port.values():
            if ib.isConnected():
                return ib
        raise ConnectionError("no gateway's master client is connected")

    def close(self) -> None:
        for ib in self._by_port.values():
            ib.disconnect()
        self._by_port.clear()


@dataclass(frozen=True)
class SessionEvent:
    id: int
    kind: str
    """``broker.failed_over``, ``broker.standby_up``, ..."""
    gateway: str
    at_ns: int
    """When the hot path decided it (its wall clock; same machine)."""
    cause: str


class SessionLog:
    """The hot path's ``broker.*`` ops events, newest first read after :meth:`mark`."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._after = 0

    async def mark(self) -> None:
        """Only events recorded from now on count."""
        self._after = int(await self._pool.fetchval("SELECT coalesce(max(id), 0) FROM ops_events"))

    async def count_all(self, kind: str) -> int:
        """``kind`` events of the whole run."""
        return int(await self._pool.fetchval("SELECT count(*) FROM ops_events WHERE kind = $1", kind))

    async def next(self, kind: str, gateway: str | None, timeout: float) -> SessionEvent:  # noqa: ASYNC109
        """The first ``kind`` event (about ``gateway``, if given) since :meth:`mark`."""
        deadline = time.monotonic() + timeout
        while True:
            rows = await self._pool.fetch(
                "SELECT id, kind, detail FROM ops_events WHERE id > $1 AND kind = $2 ORDER BY id",
                self._after,
                kind,
            )
            for row in rows:
                detail: dict[str, Any] = (
                    json.loads(row["detail"]) if isinstance(row["detail"], str) else row["detail"]
                )
                if gateway is None or detail.get("gateway") == gateway:
                    at = datetime.fromisoformat(detail["time"])
                    return SessionEvent(
                        row["id"], row["kind"], detail.get("gateway", ""), int(at.timestamp() * 1e9),
                        detail.get("cause", ""),
                    )  # fmt: skip
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {kind} of {gateway or 'any gateway'} within {timeout:g} s")
            # The hot path announces nothing else: its ops events are polled (each carries its
            # own decision time, so the poll's period does not enter any figure).
            await asyncio.sleep(0.02)


class VenueRecord:
    """Every order the venue held, kept across the venue's resets: what its master client
    listed (open and completed) before each reset and at the end. A reset starts the venue's
    perm ids over, so an order is known by the reset it lived in and its perm id."""

    def __init__(self) -> None:
        self.refs: dict[tuple[int, int], str] = {}
        self.generation = 0

    async def read(self, ib: IB) -> None:
        open_trades = await ib.reqAllOpenOrdersAsync()
        done = await ib.reqCompletedOrdersAsync(apiOnly=False)
        for trade in [*open_trades, *done]:
            if trade.order.orderRef and trade.order.permId:
                self.refs[(self.generation, trade.order.permId)] = trade.order.orderRef

    def reset(self) -> None:
        """The venue starts over: what it lists from now on is a new generation."""
        self.generation += 1

    def counts(self) -> Counter[str]:
        """Orders the venue held per ``orderRef`` (the command id)."""
        return Counter(self.refs.values())


async def ledger_decisions(pool: asyncpg.Pool, agent_id: str) -> dict[str, str]:
    """Each command of ``agent_id`` in the ledger: its decision (``accepted``/``rejected``)."""
    rows = await pool.fetch("SELECT command_id, decision FROM ledger_entries WHERE agent_id = $1", agent_id)
    return {row["command_id"]: row["decision"] for row in rows}
