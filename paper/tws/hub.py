"""The gateway's state: connected clients, routing of venue events, and request handling.

One hub per gateway process. It owns the venue connection (through ``VenueClient``), knows
which session holds which client id, and turns each decoded client message into venue calls
and TWS replies. Order events go to the client id that placed the order and to the master
client (id 0), as at IB; executions and commissions follow the same route.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from paper.tws import incoming as im
from paper.tws import outgoing
from paper.tws.accounts import AccountFeeds
from paper.tws.market import MarketData
from paper.tws.orders import Refusal, to_venue
from paper.tws.ports import Client
from paper.tws.what_if import estimate
from paper.venue import events as ve
from paper.venue import messages as vm
from paper.venue.client import UnknownSymbol, VenueClient, VenueDisconnected, VenueError

log = logging.getLogger(__name__)

MASTER_CLIENT_ID = 0

FARM_NOTICES = (
    (2104, "Market data farm connection is OK:usfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefnj"),
)
CONNECTIVITY_LOST = 1100
CONNECTIVITY_RESTORED_DATA_LOST = 1101
CONNECTIVITY_RESTORED = 1102
ERR_NO_SECURITY = 200
ERR_CANCELLED = 202
ERR_NOT_SUPPORTED = 322
ERR_CANT_FIND_TICKER = 300
ERR_READING_REQUEST = 320
DEFAULT_TICK = Decimal("0.01")
NO_SECURITY_TEXT = "No security definition has been found for the request"

Handler = Callable[[Client, Any], Coroutine[Any, Any, None] | None]


class Hub:
    """The :class:`~paper.tws.ports.SessionHost` of this gateway's client sessions."""

    def __init__(
        self,
        venue: VenueClient,
        name: str,
        *,
        trusted: frozenset[str] = frozenset({"127.0.0.1"}),
        pacing: bool = True,
    ) -> None:
        self.venue = venue
        self.name = name
        self.trusted = trusted
        self.pacing = pacing
        assert venue.welcome is not None
        self.accounts: tuple[str, ...] = venue.welcome.accounts
        self.sessions: set[Client] = set()
        self.by_client: dict[int, Client] = {}
        self.contracts: dict[str, vm.ContractInfo] = {}
        self.by_con_id: dict[int, vm.ContractInfo] = {}
        self.market = MarketData(venue)
        self.account_feeds = AccountFeeds(self)
        self.exec_route: dict[str, int] = {}
        self.frozen_until = 0.0
        self.venue_up = True
        self._tasks: set[asyncio.Task[None]] = set()
        self._remove_listener = venue.add_listener(self.on_venue_event)
        feeds = self.account_feeds
        self._handlers: dict[type, Handler] = {
            im.PlaceOrder: self._place_order,
            im.CancelOrder: self._cancel_order,
            im.ReqGlobalCancel: self._global_cancel,
            im.ReqOpenOrders: self._open_orders,
            im.ReqAllOpenOrders: self._all_open_orders,
            im.ReqAutoOpenOrders: _ignore,
            im.ReqCompletedOrders: self._completed_orders,
            im.ReqExecutions: self._executions,
            im.ReqIds: self._req_ids,
            im.ReqManagedAccts: self._managed_accounts,
            im.ReqCurrentTime: self._current_time,
            im.ReqMarketDataType: _ignore,
            im.ReqContractDetails: self._contract_details,
            im.ReqPositions: feeds.positions,
            im.CancelPositions: feeds.cancel_positions,
            im.ReqPositionsMulti: feeds.positions_multi,
            im.CancelPositionsMulti: _ignore,
            im.ReqAccountUpdates: feeds.account_updates,
            im.ReqAccountUpdatesMulti: feeds.account_updates_multi,
            im.CancelAccountUpdatesMulti: feeds.cancel_account_updates_multi,
            im.ReqAccountSummary: feeds.account_summary,
            im.CancelAccountSummary: _ignore,
            im.ReqMktData: self._mkt_data,
            im.CancelMktData: self._cancel_mkt_data,
            im.ReqMktDepth: self._mkt_depth,
            im.CancelMktDepth: self._cancel_mkt_depth,
            im.ReqMktDepthExchanges: self._mkt_depth_exchanges,
            im.Unsupported: self._unsupported,
            im.StartApi: self._second_start_api,
        }

    async def load_contracts(self) -> None:
        for contract in await self.venue.contracts():
            self._remember(contract)

    def _remember(self, contract: vm.ContractInfo) -> None:
        self.contracts[contract.symbol] = contract
        self.by_con_id[contract.con_id] = contract

    # ------------------------------------------------------------------ sessions

    def admits(self, peer: str) -> bool:
        return peer in self.trusted

    def frozen_for(self) -> float:
        return max(0.0, self.frozen_until - asyncio.get_running_loop().time())

    def attach(self, session: Client) -> None:
        self.sessions.add(session)

    def detach(self, session: Client) -> None:
        self.sessions.discard(session)
        if self.by_client.get(session.client_id) is session:
            del self.by_client[session.client_id]
        self.account_feeds.drop_session(session)
        self.market.drop_session(session)

    def claim_client_id(self, session: Client) -> bool:
        holder = self.by_client.get(session.client_id)
        if holder is not None and not holder.closed:
            return False
        self.by_client[session.client_id] = session
        return True

    def start_api(self, session: Client) -> None:
        async def greet() -> None:
            try:
                next_id = await self.venue.next_valid_id(session.client_id)
            except (VenueDisconnected, VenueError) as exc:
                # Without the venue there is no safe next order id (it must never go
                # backwards): refuse the connection rather than guess; the client retries.
                log.warning("%r refused: venue unavailable (%s)", session, exc)
                session.send(outgoing.error(-1, CONNECTIVITY_LOST, LOST_TEXT))
                session.close(flush=True)
                return
            frames = [outgoing.managed_accounts(self.accounts), outgoing.next_valid_id(next_id)]
            frames += [outgoing.error(-1, code, text) for code, text in FARM_NOTICES]
            if not self.venue_up:
                frames.append(outgoing.error(-1, CONNECTIVITY_LOST, LOST_TEXT))
            session.send_many(frames)
            log.info("%r connected (server version %d)", session, session.server_version)

        self._run(session, -1, greet())

    def handle(self, session: Client, message: im.ClientMessage) -> None:
        handler = self._handlers[type(message)]
        result = handler(session, message)
        if result is not None:
            self._run(session, _request_id(message), result)

    def _run(self, session: Client, req_id: int, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(self._guard(session, req_id, coro))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guard(
        self, session: Client, req_id: int, coro: Coroutine[Any, Any, None]
    ) -> None:
        try:
            await coro
        except UnknownSymbol:
            session.send(outgoing.error(req_id, ERR_NO_SECURITY, NO_SECURITY_TEXT))
        except VenueDisconnected:
            session.send(outgoing.error(req_id, CONNECTIVITY_LOST, LOST_TEXT))
        except VenueError as exc:
            # The venue's 321 (malformed) is a warning to ib_async and would leave the request
            # open; report it as the read error it is.
            code = ERR_READING_REQUEST if exc.code in (0, 321) else exc.code
            session.send(outgoing.error(req_id, code, exc.message))
        except Exception:
            log.exception("%r: request %d failed", session, req_id)
            session.send(outgoing.error(req_id, ERR_NOT_SUPPORTED, "Error processing request"))

    # ------------------------------------------------------------------ routing

    def _order_targets(self, client_id: int) -> list[Client]:
        targets = []
        owner = self.by_client.get(client_id)
        if owner is not None:
            targets.append(owner)
        if client_id != MASTER_CLIENT_ID:
            master = self.by_client.get(MASTER_CLIENT_ID)
            if master is not None:
                targets.append(master)
        return targets

    def contract_for(self, symbol: str, con_id: int) -> vm.ContractInfo:
        contract = self.contracts.get(symbol) or self.by_con_id.get(con_id)
        if contract is None:
            contract = vm.ContractInfo(symbol, con_id, "SMART", "", "USD", DEFAULT_TICK, 1, symbol)
            self._remember(contract)
        return contract

    def _order_frames(self, u: vm.OrderUpdate, sv: int) -> list[bytes]:
        contract = self.contract_for(u.symbol, u.con_id)
        return [outgoing.open_order(u, contract, sv), outgoing.order_status(u)]

    def on_venue_event(self, event: ve.VenueEvent) -> None:
        if isinstance(event, ve.DepthEvent):
            self.market.on_depth(event)
        elif isinstance(event, ve.TickEvent):
            self.market.on_tick(event.tick)
        elif isinstance(event, ve.TradeEvent):
            self.market.on_trades(event.symbol, event.prints)
        elif isinstance(event, ve.OrderEvent):
            u = event.update
            if u.account not in self.accounts:
                return  # a sub-account's order (the paper Schwab API's): another broker's
            for session in self._order_targets(u.client_id):
                frames = self._order_frames(u, session.server_version)
                if u.status == "Cancelled" and session.client_id == u.client_id:
                    frames.append(outgoing.error(u.order_id, ERR_CANCELLED, "Order Canceled - reason:"))
                session.send_many(frames)
        elif isinstance(event, ve.ExecutionEvent):
            e = event.execution
            if e.account not in self.accounts:
                return  # its commission report then finds no route either
            self.exec_route[e.exec_id] = e.client_id
            contract = self.contract_for(e.symbol, e.con_id)
            for session in self._order_targets(e.client_id):
                session.send(outgoing.exec_details(-1, e, contract, session.server_version))
        elif isinstance(event, ve.CommissionEvent):
            client_id = self.exec_route.pop(event.report.exec_id, None)
            if client_id is not None:
                frame = outgoing.commission_report(event.report)
                for session in self._order_targets(client_id):
                    session.send(frame)
        elif isinstance(event, ve.PositionEvent):
            self.account_feeds.on_position(event.position)
        elif isinstance(event, ve.AccountEvent):
            self.account_feeds.on_account(event.snapshot)
        elif isinstance(event, ve.DepthSnapshotEvent):
            self.market.on_depth_snapshot(event.snapshot)
        elif isinstance(event, (ve.DropClients, ve.FreezeGateway, ve.KillGateway, ve.LoseUpstream)):
            if event.gateway == self.name:
                self._on_control(event)
        elif isinstance(event, ve.VenueReset):
            log.warning("venue reset to seed %d", event.seed)

    def _on_control(
        self, event: ve.DropClients | ve.FreezeGateway | ve.KillGateway | ve.LoseUpstream
    ) -> None:
        if isinstance(event, ve.LoseUpstream):
            self._lose_upstream(event)
        elif isinstance(event, ve.KillGateway):
            log.warning("control: kill")
            os.kill(os.getpid(), signal.SIGKILL)
        elif isinstance(event, ve.DropClients):
            log.warning("control: dropping %d client connection(s)", len(self.sessions))
            for session in list(self.sessions):
                session.close()
        else:
            log.warning("control: freezing for %.3f s", event.seconds)
            loop = asyncio.get_running_loop()
            self.frozen_until = loop.time() + event.seconds
            for session in list(self.sessions):
                session.freeze(event.seconds)

    def _lose_upstream(self, event: ve.LoseUpstream) -> None:
        log.warning(
            "control: upstream lost for %.3f s (market data %s)",
            event.seconds,
            "dropped" if event.data_lost else "kept",
        )
        sessions = [s for s in self.sessions if s.ready]
        lost = outgoing.error(-1, CONNECTIVITY_LOST, LOST_TEXT)
        for session in sessions:
            session.send(lost)
            if event.data_lost:
                self.market.drop_session(session)
        back = (
            outgoing.error(-1, CONNECTIVITY_RESTORED_DATA_LOST, RESTORED_LOST_TEXT)
            if event.data_lost
            else outgoing.error(-1, CONNECTIVITY_RESTORED, RESTORED_TEXT)
        )

        def restore() -> None:
            for session in sessions:
                if not session.closed:
                    session.send(back)

        asyncio.get_running_loop().call_later(event.seconds, restore)

    # ------------------------------------------------------------------ venue connectivity

    def venue_lost(self) -> None:
        self.venue_up = False
        frame = outgoing.error(-1, CONNECTIVITY_LOST, LOST_TEXT)
        for session in self.sessions:
            if session.ready:
                session.send(frame)

    def venue_restored(self, venue: VenueClient) -> None:
        self._remove_listener()
        self.venue = venue
        if venue.welcome is not None:
            self.accounts = venue.welcome.accounts
        old_market, self.market = self.market, MarketData(venue)
        self._remove_listener = venue.add_listener(self.on_venue_event)
        self.venue_up = True

        async def restore() -> None:
            # Subscriptions lived on the old venue connection: renew them, then tell clients
            # whether their market data carried over (1102) or must be re-requested (1101).
            maintained = await self.market.adopt(old_market)
            frame = (
                outgoing.error(-1, CONNECTIVITY_RESTORED, RESTORED_TEXT)
                if maintained
                else outgoing.error(-1, CONNECTIVITY_RESTORED_DATA_LOST, RESTORED_LOST_TEXT)
            )
            for session in self.sessions:
                if session.ready:
                    session.send(frame)

        task = asyncio.ensure_future(restore())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ orders

    async def _place_order(self, session: Client, msg: im.PlaceOrder) -> None:
        request = to_venue(msg, session.client_id)
        if isinstance(request, Refusal):
            session.send(outgoing.error(msg.order_id, request.code, request.message))
            return
        if msg.what_if:
            await self._what_if(session, msg, request)
            return
        reply = await self.venue.place_order(request)
        if isinstance(reply, vm.OrderReject):
            session.send(outgoing.error(msg.order_id, reply.code, reply.message))

    async def _what_if(self, session: Client, msg: im.PlaceOrder, request: vm.PlaceOrder) -> None:
        contract = await self._resolve(msg.contract)
        tick = await self.market.current_tick(contract.symbol)
        positions = await self.venue.positions(request.account)
        held = sum(p.position for p in positions if p.symbol == contract.symbol)
        snap = await self.venue.account_values(request.account)
        values: dict[str, Decimal] = {}
        for v in snap.values:
            if v.currency in ("USD", "") and v.key not in values:
                try:
                    values[v.key] = Decimal(v.value)
                except ArithmeticError:
                    continue
        state = estimate(request.order, tick, held, values)
        update = vm.OrderUpdate(
            account=snap.account, client_id=session.client_id, order_id=msg.order_id, perm_id=0,
            symbol=contract.symbol, con_id=contract.con_id, order=request.order,
            status="PreSubmitted", filled=0, remaining=request.order.total_qty,
            avg_fill_price=None, last_fill_price=None, time_ns=snap.time_ns,
        )  # fmt: skip
        session.send(outgoing.what_if_order(update, contract, state.fields(), session.server_version))

    async def _cancel_order(self, session: Client, msg: im.CancelOrder) -> None:
        result = await self.venue.cancel_order(session.client_id, msg.order_id)
        if not result.ok:
            session.send(outgoing.error(msg.order_id, result.code, result.message))

    async def _global_cancel(self, session: Client, msg: im.ReqGlobalCancel) -> None:
        # This gateway's accounts only, as at IB: a sub-account's orders are another broker's.
        count = sum([await self.venue.global_cancel(account) for account in self.accounts])
        log.info("%r: global cancel cancelled %d order(s)", session, count)

    async def _send_open_orders(self, session: Client, client_id: int | None) -> None:
        orders = await self.venue.open_orders(client_id)
        frames: list[bytes] = []
        for u in orders:
            if u.account in self.accounts:
                frames += self._order_frames(u, session.server_version)
        frames.append(outgoing.open_order_end())
        session.send_many(frames)

    def _open_orders(self, session: Client, msg: im.ReqOpenOrders) -> Coroutine[Any, Any, None]:
        master = session.client_id == MASTER_CLIENT_ID
        return self._send_open_orders(session, None if master else session.client_id)

    def _all_open_orders(
        self, session: Client, msg: im.ReqAllOpenOrders
    ) -> Coroutine[Any, Any, None]:
        return self._send_open_orders(session, None)

    async def _completed_orders(self, session: Client, msg: im.ReqCompletedOrders) -> None:
        master = session.client_id == MASTER_CLIENT_ID
        done = await self.venue.completed_orders(None if master else session.client_id)
        frames = [
            outgoing.completed_order(u, self.contract_for(u.symbol, u.con_id), session.server_version)
            for u in done
            if u.account in self.accounts
        ]
        frames.append(outgoing.completed_orders_end())
        session.send_many(frames)

    async def _executions(self, session: Client, msg: im.ReqExecutions) -> None:
        client_filter: int | None = msg.client_id or None
        if session.client_id != MASTER_CLIENT_ID:
            # A client sees its own executions; only the master client sees everyone's.
            if client_filter not in (None, session.client_id):
                session.send(outgoing.exec_details_end(msg.req_id))
                return
            client_filter = session.client_id
        side = {"BUY": "BOT", "SELL": "SLD"}.get(msg.side.upper(), msg.side.upper())
        try:
            since_ns = parse_filter_time(msg.time)
        except ValueError as exc:
            session.send(outgoing.error(msg.req_id, ERR_READING_REQUEST, f"Error reading request: {exc}"))
            return
        flt = vm.ExecutionFilter(
            client_id=client_filter,
            account=msg.account,
            since_ns=since_ns,
            symbol=msg.symbol,
            side=side,
        )
        reports = await self.venue.executions(flt)
        frames: list[bytes] = []
        for report in reports:
            e = report.execution
            if msg.sec_type not in ("", "STK") or msg.exchange not in ("", e.exchange):
                continue
            if e.account not in self.accounts:
                continue
            contract = self.contract_for(e.symbol, e.con_id)
            frames.append(outgoing.exec_details(msg.req_id, e, contract, session.server_version))
            frames.append(outgoing.commission_report(report.commission))
        frames.append(outgoing.exec_details_end(msg.req_id))
        session.send_many(frames)

    # ------------------------------------------------------------------ session requests

    async def _req_ids(self, session: Client, msg: im.ReqIds) -> None:
        session.send(outgoing.next_valid_id(await self.venue.next_valid_id(session.client_id)))

    def _managed_accounts(self, session: Client, msg: im.ReqManagedAccts) -> None:
        session.send(outgoing.managed_accounts(self.accounts))

    async def _current_time(self, session: Client, msg: im.ReqCurrentTime) -> None:
        session.send(outgoing.current_time(await self.venue.current_time()))

    async def _resolve(self, ref: im.ContractRef) -> vm.ContractInfo:
        if ref.sec_type not in ("", "STK"):
            raise UnknownSymbol(ERR_NO_SECURITY, NO_SECURITY_TEXT)
        contract = self.by_con_id.get(ref.con_id) if ref.con_id else self.contracts.get(ref.symbol)
        if contract is None:
            if ref.con_id:
                contract = await self.venue.contract_by_con_id(ref.con_id)
            else:
                contract = await self.venue.contract(ref.symbol)
            self._remember(contract)
        if ref.currency not in ("", contract.currency):
            raise UnknownSymbol(ERR_NO_SECURITY, NO_SECURITY_TEXT)
        return contract

    async def _contract_details(self, session: Client, msg: im.ReqContractDetails) -> None:
        contract = await self._resolve(msg.contract)
        session.send_many(
            (outgoing.contract_details(msg.req_id, contract), outgoing.contract_details_end(msg.req_id))
        )

    def _unsupported(self, session: Client, msg: im.Unsupported) -> None:
        if msg.req_id is not None:
            session.send(
                outgoing.error(
                    msg.req_id, ERR_NOT_SUPPORTED, f"Error processing request: message {msg.msg_id} "
                    "is not supported by the paper venue"
                )
            )

    def _second_start_api(self, session: Client, msg: im.StartApi) -> None:
        session.send(outgoing.error(-1, ERR_NOT_SUPPORTED, "Error processing request: already started"))

    # ------------------------------------------------------------------ market data

    async def _mkt_data(self, session: Client, msg: im.ReqMktData) -> None:
        contract = await self._resolve(msg.contract)
        await self.market.subscribe_ticks(session, msg.req_id, contract, msg.snapshot, msg.generic_ticks)

    def _cancel_mkt_data(self, session: Client, msg: im.CancelMktData) -> None:
        self.market.unsubscribe_ticks(session, msg.req_id)

    async def _mkt_depth(self, session: Client, msg: im.ReqMktDepth) -> None:
        contract = await self._resolve(msg.contract)
        await self.market.subscribe_depth(session, msg.req_id, contract, msg.num_rows)

    def _mkt_depth_exchanges(self, session: Client, msg: im.ReqMktDepthExchanges) -> None:
        listings = sorted({c.primary_exchange for c in self.contracts.values() if c.primary_exchange})
        session.send(outgoing.mkt_depth_exchanges(("SMART", "STK", x, "Deep", 1) for x in listings))

    async def _cancel_mkt_depth(self, session: Client, msg: im.CancelMktDepth) -> None:
        await self.market.unsubscribe_depth(session, msg.req_id)


LOST_TEXT = "Connectivity between IB and Trader Workstation has been lost."
RESTORED_TEXT = "Connectivity between IB and Trader Workstation has been restored - data maintained."
RESTORED_LOST_TEXT = "Connectivity between IB and Trader Workstation has been restored - data lost."


def _ignore(session: Client, msg: object) -> None:
    return None


def _request_id(message: im.ClientMessage) -> int:
    for attr in ("order_id", "req_id"):
        value = getattr(message, attr, None)
        if isinstance(value, int):
            return value
    return -1


def parse_filter_time(text: str) -> int | None:
    """ExecutionFilter time to ns since the epoch.

    TWS accepts ``yyyymmdd hh:mm:ss`` optionally followed by a time zone name, and
    ``yyyymmdd-hh:mm:ss`` meaning UTC. Without a zone the time is read as UTC (the paper
    venue's clock has no other zone). Unparsable text raises ValueError.
    """
    text = text.strip()
    if not text:
        return None
    zone: Any = UTC
    if "-" in text[:9]:
        stamp = datetime.strptime(text, "%Y%m%d-%H:%M:%S")
    else:
        parts = text.split(" ", 2)
        stamp = datetime.strptime(" ".join(parts[:2]), "%Y%m%d %H:%M:%S")
        if len(parts) == 3:
            try:
                zone = ZoneInfo(parts[2])
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {parts[2]!r}") from None
    return int(stamp.replace(tzinfo=zone).timestamp()) * 1_000_000_000
