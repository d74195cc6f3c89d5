"""What Schwab says of the floor's orders, as broker events: the order objects of ``GET …/orders``
compared with the adapter's order map.

Schwab's account-activity stream says *that* an order changed (its payload is Schwab's
internal event model, published nowhere), so the stream is only the prompt: the adapter then
asks for the order (:meth:`OrderSync.refresh`) and reports what differs from what it reported
last (fills by execution, status, a replace's new id). A poll of the day's orders every few
seconds is the safety net for a prompt the stream did not carry, and every new session epoch
starts with the same listing (:meth:`OrderSync.reconcile`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx

from brokers.base import (
    BrokerOrderStatus,
    CommissionReported,
    EpochReconciled,
    Executed,
    OpenOrder,
    OrderAccepted,
    OrderStatusChanged,
)
from brokers.schwab_auth import Unauthorized
from brokers.schwab_context import SchwabContext, log
from brokers.schwab_orders import Tracked
from brokers.schwab_wire import (
    OPEN_STATUSES,
    Fill,
    SchwabOrder,
    error_text,
    loads,
    matches,
    parse_order,
    same_order,
)

LOOKBACK = timedelta(days=1)
"""How far back a listing reaches: the day's orders (and an overnight GTC's recent ones)."""
UNKNOWN_MATCH_SLACK = timedelta(minutes=1)


async def list_orders(
    ctx: SchwabContext, *, open_only: bool = False, since: datetime | None = None
) -> list[SchwabOrder]:
    """The orders of every served account entered since ``since`` (default: a day back)."""
    client = ctx.require_client()
    now = datetime.now(UTC)
    start = since or now - LOOKBACK
    out: list[SchwabOrder] = []
    for account, account_hash in ctx.hashes.items():
        resp = await client.get_orders_for_account(
            account_hash, from_entered_datetime=start, to_entered_datetime=now + timedelta(minutes=1)
        )
        if resp.is_error:
            error = Unauthorized if resp.status_code == httpx.codes.UNAUTHORIZED else ConnectionError
            raise error(f"listing orders of {account}: {error_text(resp.status_code, resp.content)}")
        for raw in loads(resp.content):
            order = parse_order(raw)
            order = order if order.account else _with_account(order, account)
            if not open_only or order.status in OPEN_STATUSES:
                out.append(order)
    return out


def _with_account(order: SchwabOrder, account: str) -> SchwabOrder:
    from dataclasses import replace  # noqa: PLC0415

    return replace(order, account=account)


class OrderSync:
    def __init__(self, ctx: SchwabContext) -> None:
        self._ctx = ctx
        self.resend: Callable[[str], None] = lambda _ref: None
        """Send an order again that Schwab never got (set by the adapter to its order path)."""
        self.found: Callable[[str], None] = lambda _ref: None
        """An order found by its fields now has its id: send what waited on it (a cancel, a
        modify), as the answer of its place would have (set by the adapter to its order path)."""
        self.unfound: set[str] = set()
        """Acknowledged orders without a known id (adopted after a restart) that no listed
        order matched: the next reconciliation reports them lost."""

    async def refresh(self, order_ref: str) -> bool:
        """Ask Schwab for the order's current incarnation and report what changed; False when
        Schwab did not answer with it."""
        tracked = self._ctx.book.get(order_ref)
        if tracked is None or tracked.order_id is None:
            return False
        client = self._ctx.require_client()
        resp = await client.get_order(tracked.order_id, tracked.account_hash)
        if resp.status_code == httpx.codes.UNAUTHORIZED:
            raise Unauthorized(f"order {tracked.order_id}: {error_text(resp.status_code, resp.content)}")
        if resp.is_error:
            log.warning(
                "schwab: order %s (%s): %s",
                order_ref,
                tracked.order_id,
                error_text(resp.status_code, resp.content),
            )
            return False
        self.apply(order_ref, tracked, parse_order(loads(resp.content)))
        return True

    async def refresh_id(self, order_id: int) -> None:
        """An account-activity prompt for ``order_id`` (which may be a replace's new id)."""
        ref = self._ctx.book.ref_of(order_id)
        if ref is not None:
            tracked = self._ctx.book.get(ref)
            if tracked is not None and tracked.order_id != order_id:
                await self._refresh_old(ref, tracked, order_id)
            await self.refresh(ref)

    async def _refresh_old(self, ref: str, tracked: Tracked, order_id: int) -> None:
        client = self._ctx.require_client()
        resp = await client.get_order(order_id, tracked.account_hash)
        if not resp.is_error:
            self.apply(ref, tracked, parse_order(loads(resp.content)))

    async def poll(self) -> list[SchwabOrder]:
        """One pass over the day's orders: every known one's changes reported, unknown places
        looked for. Returns the listing."""
        listed = await self._listing()
        self.apply_listing(listed)
        return listed

    async def _listing(self) -> list[SchwabOrder]:
        """The day's orders, and each of the floor's working orders entered before that (a GTC
        stop placed days ago) asked for by its id: the listing's reach is not an order's age."""
        listed = await list_orders(self._ctx)
        ids = {o.order_id for o in listed}
        client = self._ctx.require_client()
        for _, tracked in self._ctx.book.live():
            if tracked.order_id is None or tracked.order_id in ids:
                continue
            resp = await client.get_order(tracked.order_id, tracked.account_hash)
            if resp.status_code == httpx.codes.NOT_FOUND:
                continue  # Schwab does not know it: lost (see reconcile)
            if resp.is_error:
                error = Unauthorized if resp.status_code == httpx.codes.UNAUTHORIZED else ConnectionError
                raise error(f"order {tracked.order_id}: {error_text(resp.status_code, resp.content)}")
            order = parse_order(loads(resp.content))
            listed.append(order if order.account else _with_account(order, tracked.order.account))
            ids.add(order.order_id)
        return listed

    def apply_listing(self, listed: list[SchwabOrder]) -> None:
        by_id = {o.order_id: o for o in listed}
        book = self._ctx.book
        for ref, tracked in book.live():
            if tracked.order_id is None and tracked.unknown_since is not None:
                self._find(ref, tracked, listed)
            for order_id in list(tracked.ids):
                listed_order = by_id.get(order_id)
                if listed_order is not None:
                    self.apply(ref, tracked, listed_order)

    def _find(self, ref: str, tracked: Tracked, listed: list[SchwabOrder]) -> None:
        """A place whose answer was lost: bind it to the one unclaimed order that matches it,
        entered after it was sent; none matching: Schwab never got it, so it is sent again."""
        assert tracked.unknown_since is not None
        after = tracked.entered_after or tracked.unknown_since - UNKNOWN_MATCH_SLACK
        book = self._ctx.book
        if any(
            other is not tracked and other.in_flight and same_order(other.order, tracked.order)
            for _, other in book.live()
        ):
            # An identical order's place (or replace) is still to be answered: the order listed
            # may be that one's, and taking it would leave two refs on one id (its fills
            # counted twice, this one's own order nobody's). Looked for again at the next sync.
            return
        candidates = [
            o
            for o in listed
            if book.ref_of(o.order_id) is None
            and matches(tracked.order, o)
            and (o.entered is None or o.entered >= after)
        ]
        sent_at, tracked.unknown_since = tracked.unknown_since, None
        if candidates:
            book.bind(ref, candidates[0].order_id)
            log.info("schwab: %s found at Schwab as order %s", ref, candidates[0].order_id)
            self.apply(ref, tracked, candidates[0])
            self.found(ref)
        elif tracked.acknowledged:
            self.unfound.add(ref)  # acknowledged once, listed nowhere: lost (see reconcile)
        elif not tracked.resend_if_missing:
            pass  # held: sent when the floor places it again
        elif datetime.now(UTC) - sent_at < timedelta(seconds=self._ctx.config.request_timeout_s):
            tracked.unknown_since = sent_at  # the request may still be on its way: look again
        else:
            log.warning("schwab: %s is not at Schwab after its place went unanswered: sending it", ref)
            self.resend(ref)

    def apply(self, ref: str, tracked: Tracked, view: SchwabOrder) -> None:
        """Report the difference between ``view`` (one incarnation of the order) and what was
        reported before: new executions, a new id, the status."""
        now = datetime.now(UTC)
        order = tracked.order
        if view.order_id == tracked.order_id and view.replaced_by is not None and view.status == "REPLACED":
            # Replaced by someone else (or our replace's answer is still on its way): follow it.
            self._ctx.book.bind(ref, view.replaced_by)
        current = view.order_id == tracked.order_id and view.status != "REPLACED"
        if current and tracked.accepted_id != view.order_id and view.status != "PENDING_ACKNOWLEDGEMENT":
            # Acknowledged before any of its fills is reported (a marketable order may already be
            # filled when first asked), as a broker's acknowledgement comes before its fills.
            tracked.accepted_id = view.order_id
            acked = BrokerOrderStatus.SUBMITTED if view.floor_status.is_done else view.floor_status
            self._ctx.emit(OrderAccepted(ref, acked, 0, view.order_id, view.order_id, now))
        for fill in view.fills:
            if fill.exec_id in tracked.exec_ids:
                continue
            tracked.exec_ids.add(fill.exec_id)
            tracked.filled += fill.quantity
            tracked.notional += fill.price * fill.quantity
            key = (order.account, order.symbol)
            self._ctx.positions[key] = self._ctx.positions.get(key, 0) + fill.quantity * order.side.sign
            self._ctx.emit(executed(ref, view, fill, tracked.filled, tracked.notional, order.account))
            # Schwab reports no commission per execution; online equity trades are commission-free.
            self._ctx.emit(CommissionReported(fill.exec_id, ref, Decimal(0), "USD", None, fill.time))
        if view.order_id != tracked.order_id:
            return  # an earlier incarnation: only its fills are the order's still
        status = view.floor_status
        if view.status == "REPLACED":
            return  # the successor carries the status on
        tracked.schwab_status = view.status
        if tracked.filled >= order.quantity:
            status = BrokerOrderStatus.FILLED
        tracked.status = status
        if status.is_done:
            tracked.done = True
        if tracked.reported == (status, tracked.filled):
            return
        tracked.reported = (status, tracked.filled)
        self._ctx.emit(
            OrderStatusChanged(
                order_ref=ref,
                status=status,
                filled=tracked.filled,
                remaining=tracked.remaining,
                avg_fill_price=tracked.avg_price,
                client_id=0,
                order_id=view.order_id,
                perm_id=view.order_id,
                time=now,
            )
        )

    async def reconcile(self, epoch: int) -> EpochReconciled:
        """The epoch's listing, after the order map was brought in line with it."""
        listed = await self._listing()
        self.apply_listing(listed)
        listed_ids = {o.order_id for o in listed}
        lost = tuple(
            ref
            for ref, t in self._ctx.book.live()
            if t.acknowledged and ((t.ids and not (set(t.ids) & listed_ids)) or ref in self.unfound)
        )
        self.unfound.clear()
        for ref in lost:
            tracked = self._ctx.book.get(ref)
            if tracked is not None:
                tracked.done = True  # never sent again; the ledger's owner ends it
        open_orders = tuple(self.open_order(o) for o in listed if o.status in OPEN_STATUSES)
        executions = tuple(self.executions_of(listed))
        return EpochReconciled(
            epoch=epoch,
            gateway=self._ctx.config.gateway,
            open_orders=open_orders,
            executions=executions,
            time=datetime.now(UTC),
            lost=lost,
            accounts=tuple(self._ctx.hashes),
        )

    def ref_for(self, order_id: int) -> str:
        return self._ctx.book.ref_of(order_id) or f"schwab:{order_id}"

    def open_order(self, o: SchwabOrder) -> OpenOrder:
        ref = self.ref_for(o.order_id)
        tracked = self._ctx.book.get(ref)
        filled = tracked.filled if tracked is not None else o.filled
        quantity = tracked.order.quantity if tracked is not None else o.quantity
        return OpenOrder(
            order_ref=ref,
            account=o.account,
            symbol=o.symbol,
            side=o.side,
            quantity=quantity,
            order_type=o.order_type,
            limit_price=o.limit_price,
            stop_price=o.stop_price,
            status=o.floor_status,
            filled=filled,
            remaining=max(0, quantity - filled),
            client_id=0,
            order_id=o.order_id,
            perm_id=o.order_id,
        )

    def executions_of(self, listed: list[SchwabOrder], since: datetime | None = None) -> list[Executed]:
        out: list[Executed] = []
        cum: dict[str, tuple[int, Decimal]] = {}
        for o in sorted(listed, key=lambda o: o.order_id):
            ref = self.ref_for(o.order_id)
            for fill in o.fills:
                qty, notional = cum.get(ref, (0, Decimal(0)))
                qty, notional = qty + fill.quantity, notional + fill.price * fill.quantity
                cum[ref] = (qty, notional)
                if since is None or fill.time >= since:
                    out.append(executed(ref, o, fill, qty, notional))
        return out


def executed(
    ref: str, order: SchwabOrder, fill: Fill, cum_quantity: int, cum_notional: Decimal, account: str = ""
) -> Executed:
    """One execution of ``order`` (one incarnation of the floor's ``ref``), with the order's
    cumulative quantity and notional after it; ``account`` the floor's name of the account."""
    return Executed(
        order_ref=ref,
        exec_id=fill.exec_id,
        account=account or order.account,
        symbol=order.symbol,
        side=order.side,
        quantity=fill.quantity,
        price=fill.price,
        cum_quantity=cum_quantity,
        avg_price=cum_notional / cum_quantity,
        time=fill.time,
        perm_id=order.order_id,
        order_id=order.order_id,
        client_id=0,
    )
