"""What the emulator does for each Trader API call, over one venue connection.

The HTTP layer (:mod:`paper.schwab_api.app`) checks tokens and shapes responses; this module
holds the state (accounts, orders, limiter) and talks to the venue, where each Schwab account
is the sub-account of the same number. A lost venue connection is retried in the background;
meanwhile every call that needs the venue answers 503.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from paper.gateway import RECONNECT_BACKOFF, connect_venue
from paper.schwab_api.accounts import account_json
from paper.schwab_api.errors import ServiceError, bad_request, not_found
from paper.schwab_api.limits import OrderRateLimiter, retry_after_header
from paper.schwab_api.order_model import SchwabOrder
from paper.schwab_api.orders import ParsedOrder, not_cancelable, parse_order
from paper.schwab_api.state import FIRST_ORDER_ID, VENUE_CLIENT_ID, OrderBook
from paper.schwab_api.tokens import TokenIssuer
from paper.venue.client import VenueClient, VenueDisconnected, VenueError
from paper.venue.events import TickEvent, VenueEvent
from paper.venue.messages import (
    CancelResult,
    ContractInfo,
    ExecutionFilter,
    OrderReject,
    OrderSpec,
    PlaceOrder,
    Tick,
)

log = logging.getLogger("paper.schwab_api")

VENUE_CONNECTION_NAME = "schwab-api"


class MissingVenueAccounts(RuntimeError):
    """The venue was started without the Schwab accounts as sub-accounts; the message says how."""


def account_hash(account_number: str) -> str:
    """The stable ``hashValue`` of a paper account (Schwab's are 64 hex digits)."""
    return hashlib.sha256(f"paper-schwab-account:{account_number}".encode()).hexdigest().upper()


@dataclass(frozen=True, slots=True)
class EmulatorConfig:
    host: str
    port: int
    venue_host: str
    venue_port: int
    accounts: tuple[str, ...]
    app_key: str
    app_secret: str
    order_rate_per_min: int = 120
    heartbeat_s: float = 10.0
    venue_client_id: int = VENUE_CLIENT_ID

    @property
    def stream_url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws"


class Emulator:
    """The emulator's state and its venue connection."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.tokens = TokenIssuer(config.app_key, config.app_secret)
        self.limiter = OrderRateLimiter(config.order_rate_per_min)
        self.client_id = config.venue_client_id
        self.book = OrderBook(config.venue_client_id)
        self.by_hash = {account_hash(a): a for a in config.accounts}
        self.contracts: dict[str, ContractInfo] = {}
        self.ticks: dict[str, Decimal] = {}
        """Tick size per symbol."""
        self.quotes: dict[str, Tick] = {}
        """Every symbol's latest L1 (the emulator keeps all of them subscribed: quotes, marks and
        the streamer's LEVELONE_EQUITIES read them here without a venue round trip)."""
        self.customer_id = hashlib.sha256(f"paper-schwab-customer:{config.app_key}".encode()).hexdigest()
        self._venue: VenueClient | None = None
        self._next_id = FIRST_ORDER_ID
        self._id_lock = asyncio.Lock()
        self.venue_listeners: list[Callable[[VenueEvent], None]] = [self._on_quote, self.book.on_venue_event]
        self.on_venue_restored: list[Callable[[VenueClient], Any]] = []
        self._watcher: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ venue connection

    async def start(self, within: float = 15.0) -> None:
        """Connect to the venue (retrying for ``within`` s: it may still be starting) and keep
        the connection up from then on."""
        config = self.config
        venue = await connect_venue(config.venue_host, config.venue_port, VENUE_CONNECTION_NAME, within)
        await self._use(venue)
        self._watcher = asyncio.create_task(self._keep_venue())

    async def _use(self, venue: VenueClient) -> None:
        assert venue.welcome is not None
        missing = set(self.config.accounts) - {*venue.welcome.accounts, *venue.welcome.sub_accounts}
        if missing:
            raise MissingVenueAccounts(
                f"the venue has no account {', '.join(sorted(missing))}: start it with "
                f"--sub-accounts {','.join(self.config.accounts)} (floor up does)"
            )
        venue.add_listener(self._dispatch)
        self.contracts = {c.symbol: c for c in await venue.contracts()}
        self.ticks = {s: c.tick_size for s, c in self.contracts.items()}
        for symbol in self.contracts:
            self.quotes[symbol] = await venue.subscribe_ticks(symbol)
        open_orders = await venue.open_orders(self.client_id)
        done = await venue.completed_orders(self.client_id)
        reports = await venue.executions(ExecutionFilter(client_id=self.client_id))
        executions = tuple(r.execution for r in reports)
        adopted = self.book.adopt((*done, *open_orders), executions)
        # Orders known from before a venue outage: what happened to them meanwhile.
        lost = self.book.catch_up((*done, *open_orders), executions)
        self._next_id = max(self._next_id, FIRST_ORDER_ID, await venue.next_valid_id(self.client_id))
        self._venue = venue
        if adopted:
            log.info("adopted %d orders from the venue", adopted)
        if lost:
            log.warning("the venue no longer has %d working orders (restarted?): they are CANCELED", lost)

    def _on_quote(self, event: VenueEvent) -> None:
        if isinstance(event, TickEvent):
            self.quotes[event.tick.symbol] = event.tick

    def _dispatch(self, event: VenueEvent) -> None:
        for listener in tuple(self.venue_listeners):
            try:
                listener(event)
            except Exception:
                log.exception("venue event handler failed on %s", type(event).__name__)

    async def _keep_venue(self) -> None:
        while True:
            venue = self._venue
            assert venue is not None
            await venue.wait_closed()
            log.warning("venue connection lost; reconnecting")
            self._venue = None
            attempt = 0
            while True:
                await asyncio.sleep(RECONNECT_BACKOFF[min(attempt, len(RECONNECT_BACKOFF) - 1)])
                attempt += 1
                try:
                    fresh = await VenueClient.connect(
                        self.config.venue_host, self.config.venue_port, VENUE_CONNECTION_NAME
                    )
                    await self._use(fresh)
                except MissingVenueAccounts as exc:
                    await fresh.close()
                    log.warning("venue back but unusable: %s", exc)
                    continue
                except Exception as exc:  # whatever the failure, keep trying: clients wait on it
                    log.info("venue still unreachable: %s", exc)
                    continue
                log.warning("venue connection restored")
                for restored in tuple(self.on_venue_restored):
                    result = restored(fresh)
                    if asyncio.iscoroutine(result):
                        await result
                break

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
        if self._venue is not None:
            await self._venue.close()

    def venue(self) -> VenueClient:
        if self._venue is None or not self._venue.connected:
            raise ServiceError(
                503, "Service temporarily unavailable", ["the paper venue is unreachable; retry"]
            )
        return self._venue

    # ------------------------------------------------------------------ accounts

    def account_number(self, hash_value: str) -> str:
        number = self.by_hash.get(hash_value)
        if number is None:
            raise not_found(
                "Account not found", f"no account has the hash {hash_value!r}; GET /trader/v1/accounts/"
                "accountNumbers lists them"
            )  # fmt: skip
        return number

    def account_numbers(self) -> list[dict[str, str]]:
        return [{"accountNumber": a, "hashValue": account_hash(a)} for a in self.config.accounts]

    async def account_json(self, number: str, positions: bool) -> dict[str, Any]:
        """The venue's view of the account of the same number (a sub-account of its own)."""
        venue = self.venue()
        snapshot = await venue.account_values(number)
        held = await venue.positions(number) if positions else None
        return account_json(number, snapshot, held)

    # ------------------------------------------------------------------ orders

    def charge(self, hash_value: str) -> None:
        """Count one order request against the account's limit, or refuse it with 429."""
        wait = self.limiter.try_acquire(hash_value, time.monotonic())
        if wait is not None:
            limit = self.limiter.per_minute
            raise ServiceError(
                429, "Too many requests",
                [f"order request limit of {limit} per minute exceeded; retry after {wait:.1f} s"],
                headers={"Retry-After": retry_after_header(wait)},
            )  # fmt: skip

    def order(self, number: str, order_id: int) -> SchwabOrder:
        order = self.book.orders.get(order_id)
        if order is None or order.account_number != number:
            raise not_found("Order not found", f"no order {order_id} in this account")
        return order

    async def _new_id(self) -> int:
        async with self._id_lock:
            order_id = self._next_id
            self._next_id += 1
            return order_id

    async def place(self, number: str, body: bytes, parent: SchwabOrder | None = None) -> SchwabOrder:
        parsed = parse_order(body, self.ticks)
        return await self._send(number, parsed, parent)

    def parse(self, body: bytes) -> ParsedOrder:
        return parse_order(body, self.ticks)

    async def _send(self, number: str, parsed: ParsedOrder, parent: SchwabOrder | None) -> SchwabOrder:
        venue = self.venue()
        order = SchwabOrder(
            order_id=await self._new_id(),
            account_number=number,
            symbol=parsed.symbol,
            con_id=self.contracts[parsed.symbol].con_id,
            instruction=parsed.instruction,
            spec=parsed.spec,
            echo=parsed.echo,
            entered=time.time(),
            parent_id=None if parent is None else parent.order_id,
        )
        order.spec = _with_ref(parsed, order.order_ref())
        # Known before it is sent: the venue's events about it arrive before its reply.
        self.book.add(order)
        try:
            reply = await venue.place_order(
                PlaceOrder(
                    self.client_id,
                    order.order_id,
                    order.spec,
                    symbol=order.symbol,
                    account=number,
                )
            )
        except (VenueDisconnected, VenueError) as exc:
            self.book.discard(order.order_id)
            unavailable = [f"the paper venue failed: {exc}; retry"]
            raise ServiceError(503, "Service temporarily unavailable", unavailable) from None
        if isinstance(reply, OrderReject):
            self.book.discard(order.order_id)
            raise bad_request("Order rejected", f"{reply.message} (venue code {reply.code})")
        return order

    async def cancel(self, order: SchwabOrder) -> None:
        if not order.is_open:
            raise not_cancelable(order.order_id, order.status)
        venue = self.venue()
        order.cancel_requested = True
        result = await self._cancel_at_venue(venue, order)
        if not result.ok and order.is_open:
            order.cancel_requested = False
            raise not_cancelable(order.order_id, order.status)

    async def replace(self, number: str, order: SchwabOrder, body: bytes) -> SchwabOrder:
        """Schwab's replace: the old order is cancelled (REPLACED) and a new one, with a new id,
        takes its place. The new order is checked first, so a bad body changes nothing; if the
        venue then refuses the new one (buying power), the old one stays cancelled (CANCELED,
        ``statusDescription`` says why) and the 400 says so."""
        parsed = self.parse(body)
        if parsed.symbol != order.symbol:
            raise bad_request("Invalid order", f"a replace must keep the symbol {order.symbol}")
        if not order.is_open:
            raise not_cancelable(order.order_id, order.status)
        venue = self.venue()
        order.replacing = True
        order.status = "PENDING_REPLACE"
        try:
            result = await self._cancel_at_venue(venue, order)
        except ServiceError:
            order.replacing = False
            if order.status == "PENDING_REPLACE":
                order.status = "WORKING"
            raise
        if not result.ok:
            order.replacing = False
            if order.status == "PENDING_REPLACE":
                order.status = "WORKING"
            raise not_cancelable(order.order_id, order.status)
        try:
            successor = await self._send(number, parsed, order)
        except ServiceError as refused:
            # The old order is gone and nothing replaced it: it ends CANCELED, saying why.
            order.replacing = False
            order.status = "CANCELED"
            order.description = f"Replacement refused: {'; '.join(refused.errors) or refused.message}"
            self.book.emit(order, "OrderUROutCompleted")
            refused.errors.append(f"order {order.order_id} was cancelled and nothing replaced it")
            raise
        order.replaced_by = successor.order_id
        self.book.emit(successor, "ChangeCreated")
        return successor

    async def _cancel_at_venue(self, venue: VenueClient, order: SchwabOrder) -> CancelResult:
        try:
            return await venue.cancel_order(self.client_id, order.order_id)
        except (VenueDisconnected, VenueError) as exc:
            raise ServiceError(
                503, "Service temporarily unavailable", [f"the paper venue failed: {exc}; retry"]
            ) from None

    def orders_between(
        self, number: str | None, since: float, until: float, status: str | None, max_results: int
    ) -> list[dict[str, Any]]:
        # schwab-py sends whole seconds: an order entered during the "to" second is in range.
        rows = [
            o for o in self.book.orders.values()
            if (number is None or o.account_number == number) and since <= o.entered < until + 1
            and (status is None or o.status == status)
        ]  # fmt: skip
        rows.sort(key=lambda o: o.entered, reverse=True)
        return [o.to_json(self.book.successor(o)) for o in rows[:max_results]]


def _with_ref(parsed: ParsedOrder, ref: str) -> OrderSpec:
    return replace(parsed.spec, order_ref=ref)
