"""The Router (the design's agent 4.3): which gateway session carries the orders.

Two sessions run at all times, one per gateway (primary and hot standby), with the same client
id by default: IB ties an order to the client id that placed it, so the standby can see, modify
and cancel what the primary placed. One session is *active* and carries orders. When it goes
down (socket closed, or a missed heartbeat, see :mod:`brokers.ib_session`) the other takes over
at once (``FAILED_OVER``); when both are down orders are held (``DISCONNECTED``) and sent when
one is back (``RECONNECTED``). The floor does not fail back: the session that took over stays
active.

Every change of active session opens a new *epoch*: the router reports it as
:class:`~brokers.base.SessionChanged` and runs the epoch's reconciliation
(:mod:`brokers.ib_reconcile`), during which orders are held; the reconciliation calls
:meth:`Router.mark_ready` when orders may flow again. The router decides nothing about orders.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from ib_async import IB

from brokers.base import (
    BrokerEvent,
    ClientIdInUse,
    NotConnected,
    SessionChange,
    SessionChanged,
    SourceAddressRefused,
)
from brokers.ib_session import GatewaySession, SessionConfig
from brokers.ib_transport import OrderWriteHook

log = logging.getLogger(__name__)

EpochRun = Callable[[GatewaySession, int], Coroutine[Any, Any, None]]
"""Reconciles a new epoch on its session; calls :meth:`Router.mark_ready` when done."""


class Router:
    def __init__(
        self,
        sessions: list[SessionConfig],
        *,
        write_hook: Callable[[int], OrderWriteHook],
        wire: Callable[[GatewaySession, IB], None],
        session_up: Callable[[GatewaySession], None],
        reconcile: EpochRun,
        held_orders: Callable[[], int],
        emit: Callable[[BrokerEvent], None],
        settle_timeout: float,
    ) -> None:
        self._wire = wire
        self._on_up = session_up
        self._reconcile_epoch = reconcile
        self._held_orders = held_orders
        self._emit = emit
        self._settle_timeout = settle_timeout
        self.sessions = [GatewaySession(sc, self, write_hook(sc.client_id)) for sc in sessions]
        self.active: GatewaySession | None = None
        self._ready = False
        self._ready_event = asyncio.Event()
        self._epoch = 0
        self._ever_active = False
        self._closing = False
        self._starting = False
        self._reported_down: set[str] = set()
        self._reconcile_task: asyncio.Task[None] | None = None

    # --- state ----------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._ready and self.active is not None and self.active.up

    @property
    def epoch(self) -> int:
        return self._epoch

    def usable(self) -> GatewaySession | None:
        """The active session when orders may be written to it now, else None."""
        session = self.active
        if self._ready and session is not None and session.up and session.ib is not None:
            return session
        return None

    def query_ib(self) -> IB:
        """The active session's ``IB`` for a query; :class:`NotConnected` when none is up."""
        session = self.active
        if session is None or not session.up or session.ib is None:
            raise NotConnected("no IB gateway session is up")
        return session.ib

    def is_current(self, session: GatewaySession, epoch: int) -> bool:
        return epoch == self._epoch and session is self.active

    def mark_ready(self) -> None:
        self._ready = True
        self._ready_event.set()
        if self.active is not None:
            self.active.patience(False)

    async def wait_connected(self) -> None:
        while not self.connected:
            await self._ready_event.wait()

    # --- lifecycle ------------------------------------------------------------------------

    async def connect(self) -> None:
        self._starting = True
        firsts = [s.start() for s in self.sessions]
        errors: list[BaseException] = []
        # The primary gets the first chance to be active; the standby only if it cannot connect.
        for fut in firsts:
            try:
                await fut
            except Exception as exc:  # noqa: BLE001 - collected and reported below
                errors.append(exc)
            else:
                break
        else:
            # A refusal that names its cause (address, client id) says what to fix; say it.
            refused = [e for e in errors if isinstance(e, (SourceAddressRefused, ClientIdInUse))]
            await self.close(emit=False)
            if refused:
                raise refused[0]
            raise ConnectionError(f"no IB gateway reachable: {'; '.join(map(str, errors))}")
        self._starting = False
        up = [s for s in self.sessions if s.up]
        if up:
            self._activate(up[0], SessionChange.CONNECTED, "connected", None)
            for other in up[1:]:
                self._session_event(SessionChange.STANDBY_UP, other, "connected")
        await asyncio.wait_for(self._ready_event.wait(), self._settle_timeout)

    async def close(self, emit: bool = True) -> None:
        self._closing = True
        self._ready = False
        if self._reconcile_task is not None:
            self._reconcile_task.cancel()
        previous = self.active
        for s in self.sessions:
            await s.close()
        self.active = None
        if emit and previous is not None:
            self._session_event(SessionChange.CLOSED, previous, "close() called")

    # --- SessionListener ------------------------------------------------------------------

    def wire(self, session: GatewaySession, ib: IB) -> None:
        self._wire(session, ib)

    def session_up(self, session: GatewaySession) -> None:
        self._on_up(session)
        if self._closing or self._starting:
            return
        if self.active is None:
            change = SessionChange.RECONNECTED if self._ever_active else SessionChange.CONNECTED
            self._activate(session, change, "connected", None)
        else:
            self._reported_down.discard(session.label)
            self._session_event(SessionChange.STANDBY_UP, session, "connected")

    def session_down(self, session: GatewaySession, cause: str) -> None:
        if self._closing or self._starting:
            return
        if session is not self.active:
            self._reported_down.add(session.label)
            self._session_event(SessionChange.STANDBY_DOWN, session, cause)
            return
        self.active = None
        self._ready = False
        self._ready_event.clear()
        other = next((s for s in self.sessions if s is not session and s.up), None)
        if other is not None:
            self._activate(other, SessionChange.FAILED_OVER, cause, session)
        else:
            self._session_event(SessionChange.DISCONNECTED, session, cause)

    def session_failed(self, session: GatewaySession, error: BaseException) -> None:
        log.info("%s: connection attempt failed: %s", session.label, error)
        if self._closing or self._starting or session is self.active or self.active is None:
            return
        if session.label not in self._reported_down:
            # A standby that never came up (or cannot come back) is news once, not per retry.
            self._reported_down.add(session.label)
            self._session_event(SessionChange.STANDBY_DOWN, session, f"cannot connect: {error}")

    # --- epochs ---------------------------------------------------------------------------

    def _activate(
        self, session: GatewaySession, change: SessionChange, cause: str, previous: GatewaySession | None
    ) -> None:
        self.active = session
        self._reported_down.discard(session.label)
        self._ever_active = True
        self._epoch += 1
        self._ready = False
        self._session_event(change, session, cause, previous)
        if self._reconcile_task is not None:
            self._reconcile_task.cancel()
        self._reconcile_task = asyncio.get_running_loop().create_task(self._reconcile(session, self._epoch))

    async def _reconcile(self, session: GatewaySession, epoch: int) -> None:
        """The epoch's reconciliation, with the session's heartbeat patient until orders may
        flow: a gateway listing a day's orders is busy for the floor, not frozen (each listing
        has its own timeout, after which the reconciliation ends the session)."""
        session.patience(True)
        try:
            await self._reconcile_epoch(session, epoch)
        finally:
            session.patience(False)

    def _session_event(
        self,
        change: SessionChange,
        session: GatewaySession,
        cause: str,
        previous: GatewaySession | None = None,
    ) -> None:
        self._emit(
            SessionChanged(
                change=change,
                gateway=session.gateway,
                role=session.role,
                cause=cause,
                epoch=self._epoch,
                time=datetime.now(UTC),
                previous_gateway=previous.gateway if previous is not None else None,
                held_orders=self._held_orders(),
            )
        )
