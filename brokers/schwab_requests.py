"""What each Schwab order request does with Schwab's answer: the place, cancel and replace
requests of :mod:`brokers.schwab_order_path`, and the cancel of orders the adapter did not place.

An answer that says the session has a problem (the login refused, Schwab unreachable, 401,
429, 5xx) puts the request back in the queue, or, for a place that may have arrived, leaves the
order to be looked for by the next sync; a refusal (4xx) is reported as
:class:`~brokers.base.OrderRejected` with Schwab's status and message.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx

from brokers.base import BrokerOrderStatus, OrderRejected, OrderStatusChanged
from brokers.schwab_auth import Unauthorized, is_login_error
from brokers.schwab_context import SchwabContext, log
from brokers.schwab_orders import Tracked
from brokers.schwab_wire import error_text, instruction, order_spec

LOCATION = re.compile(r"/accounts/(\w+)/orders/(\d+)")
CANCEL, PLACE = 0, 1
"""Queue priorities: cancels before places and replaces."""
RATE_LIMITED_CODE = 429
FOREIGN_CANCEL_TRIES = 5
"""A foreign order's cancel that fails for the session's sake (not a 429) is sent this often."""
FOREIGN_CANCEL_BACKOFF_S = 0.5
CANCEL_FAILED = "breaker.cancel_failed"
"""Ops event kind (the breaker sweep's): an open order a cancel-all could not cancel."""
Refresh = Callable[[str], Awaitable[bool]]


class Requests:
    """The requests; :class:`brokers.schwab_order_path.OrderPath` queues them."""

    _ctx: SchwabContext
    _refresh: Refresh
    _on_failure: Callable[[BaseException], None]

    def _requeue(self, order_ref: str, kind: str, priority: int) -> None:
        raise NotImplementedError

    def _submit(self, priority: int, order_ref: str, kind: str) -> int:
        raise NotImplementedError

    async def _call(self, order_ref: str, tracked: Tracked, kind: str, request: Awaitable[Any]) -> Any:
        """The response, or None when the request failed for the session's sake (then the
        order waits: re-queued, or marked unknown for a place that may have arrived)."""
        try:
            resp = await request
        except Exception as exc:  # noqa: BLE001 - every failure is sorted below
            tracked.in_flight = False
            if is_login_error(exc) or isinstance(exc, (httpx.TransportError, OSError)):
                if kind == "place" and not is_login_error(exc):
                    tracked.unknown_since = datetime.now(UTC)  # it may be at Schwab
                elif kind == "place":
                    self._requeue(order_ref, kind, PLACE)
                else:
                    self._requeue(order_ref, kind, CANCEL if kind == "cancel" else PLACE)
                self._on_failure(exc)
                return None
            raise
        status = resp.status_code
        if status == RATE_LIMITED_CODE or status == httpx.codes.UNAUTHORIZED or status >= 500:
            tracked.in_flight = False
            if status == RATE_LIMITED_CODE:
                retry = _retry_after(resp)
                self._ctx.budget(tracked.account_hash).block(retry)
                self._ctx.notice(
                    status,
                    f"order limit reached at Schwab: {error_text(status, resp.content)}; "
                    f"waiting {retry:.1f}s",
                    severity="warning",
                )
            elif status >= 500 and kind == "place":
                tracked.unknown_since = datetime.now(UTC)
                self._ctx.notice(
                    status,
                    f"place of {order_ref} answered {error_text(status, resp.content)}: "
                    "looked for at the next sync",
                    severity="warning",
                )
                return None
            self._requeue(order_ref, kind, CANCEL if kind == "cancel" else PLACE)
            if status == httpx.codes.UNAUTHORIZED:
                self._on_failure(Unauthorized(error_text(status, resp.content)))
            return None
        return resp

    async def _place(self, order_ref: str, tracked: Tracked) -> None:
        order = tracked.order
        position = self._ctx.positions.get((order.account, order.symbol), 0)
        tracked.instruction = instruction(order.side, position, order.quantity)
        tracked.account_hash = self._ctx.hash_of(order.account)
        spec = order_spec(order, position)
        client = self._ctx.require_client()
        tracked.status = BrokerOrderStatus.PENDING_SUBMIT
        resp = await self._call(order_ref, tracked, "place", client.place_order(tracked.account_hash, spec))
        if resp is None:
            return
        tracked.in_flight = False
        if resp.is_error:
            self._rejected(order_ref, tracked, resp, "order_rejected", still_working=False)
            return
        order_id = _order_id(resp)
        if order_id is None:
            tracked.unknown_since = datetime.now(UTC)
            self._ctx.notice(
                0,
                f"place of {order_ref} answered {resp.status_code} without a Location: "
                "looked for at the next sync",
                severity="warning",
            )
            return
        self._ctx.book.bind(order_ref, order_id)
        await self._after_answer(order_ref, tracked)

    async def _after_answer(self, order_ref: str, tracked: Tracked) -> None:
        """The order has its id: report it, then what waited on it (a cancel, a modify), also
        when the report failed (the poll reports it later; a newest stop level must not wait
        for another modify that may never come)."""
        try:
            await self._refresh(order_ref)
        except Exception as exc:  # noqa: BLE001 - reported by the poll; the session's sake below
            self._on_failure(exc)
        if tracked.done:
            return
        if tracked.cancel_wanted:
            self._submit(CANCEL, order_ref, "cancel")
        elif tracked.wanted is not None:
            self._submit(PLACE, order_ref, "replace")

    async def _cancel(self, order_ref: str, tracked: Tracked) -> None:
        if tracked.order_id is None or tracked.done:
            return
        client = self._ctx.require_client()
        resp = await self._call(
            order_ref, tracked, "cancel", client.cancel_order(tracked.order_id, tracked.account_hash)
        )
        if resp is None:
            return
        if resp.is_error:
            self._rejected(order_ref, tracked, resp, "cancel_refused", still_working=True)
        await self._refresh(order_ref)

    async def _replace(self, order_ref: str, tracked: Tracked) -> None:
        desired, old_id = tracked.wanted, tracked.order_id
        if desired is None or old_id is None or tracked.done:
            tracked.in_flight = False
            return
        tracked.wanted = None
        if not await self._heard_fills(order_ref) or tracked.done or tracked.order_id != old_id:
            # Not known what is left (or the order ended, or has another id now): not sent now.
            self._replace_later(order_ref, tracked, desired)
            return
        # The rest of the order at the new price: fills so far stay on the old id. Schwab's
        # replace is a new order of the quantity it names, so "so far" is what Schwab says now,
        # not what the adapter last heard (a fill it had not heard of would be bought again).
        spec = order_spec(replace(desired, quantity=max(1, desired.quantity - tracked.filled)))
        spec["orderLegCollection"][0]["instruction"] = (
            tracked.instruction or spec["orderLegCollection"][0]["instruction"]
        )
        client = self._ctx.require_client()
        call = client.replace_order(tracked.account_hash, old_id, spec)
        resp = await self._call(order_ref, tracked, "replace", call)
        if resp is None:
            tracked.wanted = tracked.wanted or desired
            return
        tracked.in_flight = False
        if resp.is_error:
            self._rejected(order_ref, tracked, resp, "modify_refused", still_working=True)
            await self._refresh(order_ref)
            return
        new_id = _order_id(resp)
        tracked.order = desired
        if new_id is not None:
            self._ctx.book.bind(order_ref, new_id)
            log.info("schwab: %s replaced, order id %s -> %s", order_ref, old_id, new_id)
        await self._after_answer(order_ref, tracked)

    def _replace_later(self, order_ref: str, tracked: Tracked, desired: Any) -> None:
        """The replace did not go: a cancel asked for meanwhile goes instead; else the newest
        level is replaced once REPLACE_INTERVAL_S has passed (an order that ended, nothing)."""
        tracked.in_flight = False
        if tracked.done:
            return
        if tracked.cancel_wanted:
            self._submit(CANCEL, order_ref, "cancel")
            return
        tracked.wanted = tracked.wanted or desired
        self._submit(PLACE, order_ref, "replace")

    async def _heard_fills(self, order_ref: str) -> bool:
        """Read the order at Schwab and report what changed (its fills above all); False when
        the read failed."""
        try:
            return await self._refresh(order_ref)
        except Exception as exc:  # noqa: BLE001 - the session's sake is sorted by on_failure
            self._on_failure(exc)
            return False

    def _rejected(
        self, order_ref: str, tracked: Tracked, resp: Any, category: str, still_working: bool
    ) -> None:
        if not still_working:
            tracked.done = True
            tracked.status = BrokerOrderStatus.INACTIVE
        self._ctx.emit(
            OrderRejected(
                order_ref=order_ref,
                code=resp.status_code,
                reason=error_text(resp.status_code, resp.content),
                category=category,
                order_still_working=still_working,
                time=datetime.now(UTC),
            )
        )

    def _end_locally(self, order_ref: str, tracked: Tracked) -> None:
        tracked.done = True
        tracked.status = BrokerOrderStatus.CANCELLED
        self._ctx.emit(
            OrderStatusChanged(
                order_ref=order_ref,
                status=BrokerOrderStatus.CANCELLED,
                filled=tracked.filled,
                remaining=tracked.remaining,
                avg_fill_price=tracked.avg_price,
                client_id=0,
                order_id=0,
                perm_id=0,
                time=datetime.now(UTC),
            )
        )

    async def _cancel_foreign(self) -> None:
        """Open orders Schwab lists on the accounts that this adapter did not place (another
        app's, or an earlier process's it could not match): cancelled too, nearest first."""
        from brokers.schwab_sync import list_orders  # noqa: PLC0415 - the two modules call each other

        try:
            listed = await list_orders(self._ctx, open_only=True)
        except Exception as exc:  # noqa: BLE001 - the known orders' cancels are out already
            self._ctx.notice(
                0,
                f"cancel all: Schwab's open orders not listed ({exc}); only the floor's were "
                "cancelled: look for others at Schwab (its site or app) and cancel them",
                ops_kind=CANCEL_FAILED,
                severity="critical",
            )
            return
        client = self._ctx.require_client()
        foreign = [o for o in listed if self._ctx.book.ref_of(o.order_id) is None]
        mids = self._ctx.mids

        def distance(o: Any) -> Decimal:
            price, mid = (o.stop_price or o.limit_price), mids(o.symbol)
            return abs(price - mid) if price is not None and mid is not None else Decimal(0)

        for listed_order in sorted(foreign, key=distance):
            await self._cancel_foreign_one(client, listed_order.account, listed_order.order_id)

    async def _cancel_foreign_one(self, client: Any, account: str, order_id: int) -> None:
        """One foreign order's cancel, sent again after a 429 (once its Retry-After has passed)
        or a failure of the session's (up to FOREIGN_CANCEL_TRIES); one that never goes is
        reported as :data:`CANCEL_FAILED`, as the breaker's sweep reports the floor's own."""
        account_hash = self._ctx.hash_of(account)
        problem = ""
        tries = 0
        while tries < FOREIGN_CANCEL_TRIES:
            await self._take(account_hash)
            try:
                resp = await client.cancel_order(order_id, account_hash)
            except Exception as exc:  # noqa: BLE001 - sorted: login refused, or tried again
                problem = f"{type(exc).__name__}: {exc}"
                if is_login_error(exc):
                    self._on_failure(exc)
                    break
                tries += 1
                await asyncio.sleep(FOREIGN_CANCEL_BACKOFF_S * tries)
                continue
            status = resp.status_code
            if status == RATE_LIMITED_CODE:
                retry = _retry_after(resp)
                self._ctx.budget(account_hash).block(retry)
                self._ctx.notice(
                    status,
                    f"cancel of foreign order {order_id}: {error_text(status, resp.content)}; "
                    f"sent again in {retry:.1f}s",
                    severity="warning",
                )
                continue  # not a failure: the order limit paces it
            if status == httpx.codes.UNAUTHORIZED or status >= 500:
                problem = error_text(status, resp.content)
                if status == httpx.codes.UNAUTHORIZED:
                    self._on_failure(Unauthorized(problem))
                tries += 1
                await asyncio.sleep(FOREIGN_CANCEL_BACKOFF_S * tries)
                continue
            if resp.is_error:  # refused for the order's sake (it filled or ended meanwhile)
                self._ctx.notice(
                    status,
                    f"cancel of foreign order {order_id}: {error_text(status, resp.content)}",
                    severity="warning",
                )
            return
        self._ctx.notice(
            0,
            f"cancel all: foreign order {order_id} of {account} could not be cancelled ({problem}): "
            "cancel it at Schwab (its site or app)",
            ops_kind=CANCEL_FAILED,
            severity="critical",
        )

    async def _take(self, account_hash: str) -> None:
        """One request of the account's order limit, waiting while it is spent (the budget is
        looked up again each time: a new order limit replaces it)."""
        while not (budget := self._ctx.budget(account_hash)).try_take():  # noqa: ASYNC110 - frees with time
            await asyncio.sleep(min(1.0, max(0.01, budget.wait_s())))


def _order_id(resp: Any) -> int | None:
    match = LOCATION.search(resp.headers.get("Location", ""))
    return int(match.group(2)) if match else None


def _retry_after(resp: Any) -> float:
    try:
        return max(0.05, float(resp.headers.get("Retry-After", "1")))
    except ValueError:
        return 1.0
