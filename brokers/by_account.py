"""One :class:`~brokers.base.Broker` over several: each account's orders go to the broker the
configuration names for it (``FLOOR_BROKER_ACCOUNTS="DU1234567,SCHW0001=schwab"``).

The hot path holds one broker and stays as it is; this module routes each call by the order's
account (``place``, ``adopt``) or by the account of the order an ``order_ref`` names (``cancel``,
``modify``), sends ``cancel_all`` to every broker, and merges what they report:

* each broker's session changes carry its accounts, so the BrokerSession workflow of an IB
  account hears of IB's epochs only, and a reconciliation compares only the accounts its
  listing covers;
* epochs are numbered here, across brokers, and one broker's epoch (from its session change to
  its reconciliation) is passed on whole before another's starts: the hot path reconciles one
  epoch at a time. Only the report waits; the broker itself goes on (its orders flow once its
  own reconciliation is done), and the later report compares against the orders as they
  stand then.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from brokers.base import (
    Broker,
    BrokerEvent,
    BrokerOrder,
    DepthSnapshot,
    EpochReconciled,
    EventHandler,
    Executed,
    NotConnected,
    OpenOrder,
    Placement,
    Position,
    Quote,
    SessionChange,
    SessionChanged,
    Subscription,
    Trade,
    UnknownOrderRef,
)
from brokers.schwab_auth import LoginRequired

log = logging.getLogger(__name__)

EPOCH_STARTS = frozenset({SessionChange.CONNECTED, SessionChange.RECONNECTED, SessionChange.FAILED_OVER})
"""Changes after which the broker reconciles and reports :class:`EpochReconciled`."""


def _drop(_: BrokerEvent) -> None:
    pass


class ByAccountBroker:
    """Routes by account over ``brokers`` (name -> broker); ``accounts`` maps each account to the
    name of its broker. The first broker serves market data (every broker sees the same
    market in paper; in production, the one named first is the data source)."""

    name = "by_account"

    def __init__(self, brokers: Mapping[str, Broker], accounts: Mapping[str, str]) -> None:
        unknown = sorted(set(accounts.values()) - set(brokers))
        if unknown:
            raise ValueError(f"accounts routed to brokers not configured: {', '.join(unknown)}")
        self.brokers = dict(brokers)
        self.accounts = dict(accounts)
        self._served = {
            name: tuple(a for a, b in self.accounts.items() if b == name) for name in self.brokers
        }
        self._refs: dict[str, str] = {}
        self._handler: EventHandler = _drop
        self._epoch = 0
        self._epochs: dict[tuple[str, int], int] = {}
        self._last_epoch: dict[str, int] = {}
        self._owner: str | None = None
        """The broker whose epoch the hot path is reconciling now."""
        self._deferred: deque[tuple[str, SessionChanged | EpochReconciled]] = deque()
        for name, broker in self.brokers.items():
            broker.set_event_handler(self._from(name))

    @property
    def market(self) -> Broker:
        return next(iter(self.brokers.values()))

    # --- events ---------------------------------------------------------------------------

    def _from(self, name: str) -> Callable[[BrokerEvent], None]:
        def handle(event: BrokerEvent) -> None:
            if isinstance(event, SessionChanged | EpochReconciled):
                self._session(name, event)
            else:
                self._handler(event)

        return handle

    def _session(self, name: str, event: SessionChanged | EpochReconciled) -> None:
        if self._owner is not None and self._owner != name:
            self._deferred.append((name, event))
            return
        self._forward(name, event)
        while self._owner is None and self._deferred:
            self._forward(*self._deferred.popleft())

    def _forward(self, name: str, event: SessionChanged | EpochReconciled) -> None:
        served = self._served[name]
        if isinstance(event, SessionChanged):
            if event.change in EPOCH_STARTS:
                self._epoch += 1
                self._epochs[(name, event.epoch)] = self._epoch
                self._owner = name
            elif self._owner == name:
                self._owner = None  # its epoch ended before it reconciled (the hot path notes it)
            epoch = self._epochs.get((name, event.epoch), self._last_epoch.get(name, self._epoch))
            self._last_epoch[name] = epoch
            self._handler(replace(event, epoch=epoch, accounts=served))
            return
        reconciled = self._epochs.pop((name, event.epoch), None)
        if self._owner == name:
            self._owner = None
        if reconciled is None:
            return  # an epoch whose start was not passed on: nothing waits for it
        self._handler(replace(event, epoch=reconciled, accounts=served))

    def set_event_handler(self, handler: EventHandler) -> None:
        self._handler = handler

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return all(b.connected for b in self.brokers.values())

    async def connect(self) -> None:
        """Connect every broker. One that needs a person (Schwab's login expired:
        :class:`~brokers.schwab_auth.LoginRequired`, already reported as its ops event) does not
        stop the others' accounts from trading: its own orders are held until it is fixed and
        the process restarted. Any other failure fails the whole, as one broker's would."""
        results = await asyncio.gather(*(b.connect() for b in self.brokers.values()), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        waiting = [e for e in errors if isinstance(e, LoginRequired)]
        if errors and (len(waiting) < len(errors) or len(waiting) == len(results)):
            await self.close(emit=False)
            raise next((e for e in errors if not isinstance(e, LoginRequired)), errors[0])
        for error in waiting:
            log.critical("%s; the other brokers' accounts trade on", error)

    async def close(self, emit: bool = True) -> None:
        for broker in self.brokers.values():
            close = broker.close
            try:
                await close(emit)  # type: ignore[call-arg]
            except TypeError:
                await close()

    # --- order path -----------------------------------------------------------------------

    def _for_account(self, account: str) -> Broker:
        name = self.accounts.get(account)
        if name is None:
            # An account the configuration does not name goes where the floor's first one goes.
            name = next(iter(self.accounts.values()), next(iter(self.brokers)))
        return self.brokers[name]

    def _name_for(self, account: str) -> str:
        return self.accounts.get(account) or next(iter(self.accounts.values()), next(iter(self.brokers)))

    def _for_ref(self, order_ref: str) -> Broker:
        name = self._refs.get(order_ref)
        if name is None:
            raise UnknownOrderRef(order_ref)
        return self.brokers[name]

    def place(self, order: BrokerOrder) -> Placement:
        name = self._name_for(order.account)
        placement = self.brokers[name].place(order)
        self._refs[order.order_ref] = name
        return placement

    def cancel(self, order_ref: str) -> int:
        return self._for_ref(order_ref).cancel(order_ref)

    def cancel_all(self) -> int:
        """Every broker's; the latest of their writes (IB's global cancel is one write, Schwab's
        is a cancel per order, started or queued within its order limit). This is the breaker's
        kill switch, so a broker that raises does not keep the others' orders working: each is
        tried, and the first error is raised after the last."""
        written: list[int] = []
        failed: list[Exception] = []
        for name, broker in self.brokers.items():
            try:
                written.append(broker.cancel_all())
            except Exception as exc:
                log.error("%s did not cancel its orders: %s", name, exc)
                failed.append(exc)
        if failed:
            raise failed[0]
        return max(written)

    def adopt(
        self,
        order: BrokerOrder,
        filled: int = 0,
        *,
        acknowledged: bool = True,
        listed: OpenOrder | None = None,
        broker_order_id: int | None = None,
        sent_after: datetime | None = None,
    ) -> None:
        name = self._name_for(order.account)
        self.brokers[name].adopt(
            order,
            filled,
            acknowledged=acknowledged,
            listed=listed,
            broker_order_id=broker_order_id,
            sent_after=sent_after,
        )
        self._refs[order.order_ref] = name

    def modify(
        self,
        order_ref: str,
        *,
        quantity: int | None = None,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
        trailing_amount: Decimal | None = None,
        trailing_percent: Decimal | None = None,
    ) -> int:
        return self._for_ref(order_ref).modify(
            order_ref,
            quantity=quantity,
            limit_price=limit_price,
            stop_price=stop_price,
            trailing_amount=trailing_amount,
            trailing_percent=trailing_percent,
        )

    def last_write_ns(self, order_ref: str) -> int:
        name = self._refs.get(order_ref)
        return self.brokers[name].last_write_ns(order_ref) if name is not None else 0

    # --- queries --------------------------------------------------------------------------

    async def net_liquidation(self, account: str) -> Decimal:
        return await self._for_account(account).net_liquidation(account)

    async def open_orders(self) -> list[OpenOrder]:
        out: list[OpenOrder] = []
        for name, broker in self.brokers.items():
            for order in await broker.open_orders():
                self._refs.setdefault(order.order_ref, name)
                out.append(order)
        return out

    async def executions(self, since: datetime | None = None) -> list[Executed]:
        out: list[Executed] = []
        for broker in self.brokers.values():
            out.extend(await broker.executions(since))
        return out

    async def positions(self) -> list[Position]:
        out: list[Position] = []
        for name, broker in self.brokers.items():
            served = set(self._served[name])
            try:
                listed = await broker.positions()
            except NotConnected:
                continue
            out.extend(p for p in listed if p.account in served or not served)
        return out

    async def subscribe_quotes(self, symbol: str, handler: Callable[[Quote], None]) -> Subscription:
        return await self.market.subscribe_quotes(symbol, handler)

    async def subscribe_depth(
        self, symbol: str, handler: Callable[[DepthSnapshot], None], rows: int = 10
    ) -> Subscription:
        return await self.market.subscribe_depth(symbol, handler, rows)

    async def subscribe_trades(self, symbol: str, handler: Callable[[Trade], None]) -> Subscription:
        return await self.market.subscribe_trades(symbol, handler)

    async def unsubscribe(self, subscription: Subscription) -> None:
        await self.market.unsubscribe(subscription)
