"""The circuit breaker's cancel-all at Schwab: every order cancelled one request at a time, within
the app's order limit.

    python -m bench.schwab_breaker [--orders 200] [--limit 120] [--quick]

Schwab has no global cancel, and its app "order limit" counts every place, replace and cancel
per account per minute (120 is what schwab-py advises asking for). This starts a paper venue and
the paper Schwab API (the unchanged schwab-py client's far side, enforcing the limit with 429s)
on free ports under a scratch ``var/bench-*`` directory, connects the floor's Schwab adapter
(``brokers.schwab``) and:

* builds the book: ``--orders`` 1-share buys spread over the venue's five symbols, 5% to 25%
  under the bid (the emulator's and the adapter's limits off while it is built, so the breaker
  starts with a whole minute's budget, as a floor that placed its book over time does);
* sets the limit to ``--limit`` at both ends (the window empty), and calls the adapter's
  ``cancel_all`` (what the breaker calls), then waits for every cancel to be confirmed.

Reported: the time from ``cancel_all`` to the last cancel confirmed, the cancels sent in the
busiest minute against the limit, the 429s Schwab answered (the adapter paces itself: 0
expected), the share of the book cancelled (100% expected), and whether the cancels went out
nearest the market first. With 200 orders at 120 a minute, 120 go at once and the other 80
when the first leave the sliding minute: about a minute, which no client can shorten.
``--quick``: 50 orders at a limit of 30 (about the same shape, a quarter of the size).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from brokers.base import (
    BrokerEvent,
    BrokerNotice,
    BrokerOrder,
    BrokerOrderStatus,
    OrderAccepted,
    OrderStatusChanged,
)
from brokers.schwab import SchwabBroker, SchwabConfig
from brokers.schwab_orders import WINDOW_S
from config.settings import FloorSettings
from floor import services
from floor.paper_cmd import venue_spec
from floor.supervisor import Supervisor
from paper.schwab_api.tokens import write_token_file
from trading.commands import OrderType, Side

SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN", "JPM")
CENT = Decimal("0.01")
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Outcome:
    orders: int
    limit: int
    seconds: float
    busiest_minute: int
    refused_429: int
    cancelled: int
    nearest_first: bool


@contextlib.contextmanager
def stack(limit: int) -> Iterator[FloorSettings]:
    (ROOT / "var").mkdir(exist_ok=True)
    var_dir = Path(tempfile.mkdtemp(prefix="bench-schwab-", dir=ROOT / "var"))
    settings = FloorSettings.on_free_ports(var_dir).model_copy(update={"schwab_order_rate_per_min": limit})
    supervisor = Supervisor(settings.log_dir)
    try:
        supervisor.start(venue_spec(settings, name="bench-venue"))
        supervisor.start(services.schwab_api_spec(settings, prefix="bench"))
        yield settings
    finally:
        supervisor.stop_all()
        shutil.rmtree(var_dir, ignore_errors=True)


class Events:
    def __init__(self) -> None:
        self.accepted: set[str] = set()
        self.cancelled: dict[str, int] = {}
        self.refused = 0
        self.changed = asyncio.Event()

    def __call__(self, event: BrokerEvent) -> None:
        if isinstance(event, OrderAccepted):
            self.accepted.add(event.order_ref)
        elif isinstance(event, OrderStatusChanged) and event.status is BrokerOrderStatus.CANCELLED:
            self.cancelled.setdefault(event.order_ref, time.perf_counter_ns())
        elif isinstance(event, BrokerNotice) and event.code == 429:
            self.refused += 1
        self.changed.set()

    async def until(self, done: object, timeout: float) -> None:  # noqa: ASYNC109 - a deadline for the whole wait
        async def wait() -> None:
            while not done():  # type: ignore[operator]
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(wait(), timeout)


async def emulator_limit(settings: FloorSettings, per_minute: int) -> None:
    auth = (settings.schwab_app_key, settings.schwab_app_secret)
    async with httpx.AsyncClient(timeout=10.0, auth=auth) as client:
        url = f"http://{settings.host}:{settings.schwab_api_port}/emulator/v1/order-limit"
        (await client.post(url, json={"per_minute": per_minute})).raise_for_status()


async def run(orders: int, limit: int) -> Outcome:
    with stack(limit) as settings:
        account = settings.schwab_accounts.split(",")[0].strip()
        token = write_token_file(
            settings.var_dir / "schwab-token.json", settings.schwab_app_key, settings.schwab_app_secret
        )
        broker = SchwabBroker(
            SchwabConfig(
                token_path=token,
                app_key=settings.schwab_app_key,
                app_secret=settings.schwab_app_secret,
                accounts=(account,),
                base_url=f"http://{settings.host}:{settings.schwab_api_port}",
                order_limit_per_min=0,
            )
        )
        events = Events()
        broker.set_event_handler(events)
        await broker.connect()
        try:
            for symbol in SYMBOLS:
                await broker.subscribe_quotes(symbol, lambda _: events.changed.set())
            await events.until(lambda: all(broker.market.mid(s) for s in SYMBOLS), 10.0)
            await emulator_limit(settings, 0)
            book: list[BrokerOrder] = []
            for n in range(orders):
                symbol = SYMBOLS[n % len(SYMBOLS)]
                mid = broker.market.mid(symbol)
                assert mid is not None
                share = Decimal("0.95") - Decimal("0.20") * n / max(1, orders - 1)
                price = (mid * share).quantize(CENT, ROUND_DOWN)
                order = BrokerOrder(
                    f"bench-{n}", account, symbol, Side.BUY, 1, OrderType.LMT, limit_price=price
                )
                broker.place(order)
                book.append(order)
            await events.until(lambda: len(events.accepted) >= orders, 60.0)
            await emulator_limit(settings, limit)
            broker.set_order_limit(limit)
            mids = {s: broker.market.mid(s) or Decimal(0) for s in SYMBOLS}
            start = time.perf_counter_ns()
            broker.cancel_all()
            await events.until(
                lambda: len(events.cancelled) >= orders, 3 * WINDOW_S * (1 + orders // max(1, limit))
            )
            end = max(events.cancelled.values())
        finally:
            await broker.close()
        writes = sorted(broker.last_write_ns(o.order_ref) for o in book)
        busiest = max(sum(1 for w in writes if t <= w < t + int(60e9)) for t in writes)
        # Nearest first by the distance from the mid at the call, as the adapter ranked them.
        by_write = sorted(book, key=lambda o: broker.last_write_ns(o.order_ref))
        gaps = [abs((o.limit_price or Decimal(0)) - mids[o.symbol]) for o in by_write]
        nearest_first = all(a <= b for a, b in zip(gaps, gaps[1:], strict=False))
        return Outcome(
            orders=orders,
            limit=limit,
            seconds=(end - start) / 1e9,
            busiest_minute=busiest,
            refused_429=events.refused,
            cancelled=len(events.cancelled),
            nearest_first=nearest_first,
        )


def report(outcome: Outcome, console: Console) -> None:
    table = Table(
        title=f"Breaker cancel-all at Schwab: {outcome.orders} orders, order limit {outcome.limit}/min"
    )
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("cancel_all -> last cancel confirmed", f"{outcome.seconds:.1f} s")
    table.add_row("cancels in the busiest minute (limit)", f"{outcome.busiest_minute} ({outcome.limit})")
    table.add_row("429s answered by Schwab", str(outcome.refused_429))
    table.add_row("share cancelled", f"{100 * outcome.cancelled / outcome.orders:.0f}%")
    table.add_row("nearest the market first", "yes" if outcome.nearest_first else "no")
    console.print(table)
    floor_s = max(0.0, (outcome.orders - 1) // max(1, outcome.limit) * WINDOW_S)
    console.print(
        f"The limit allows {outcome.limit} requests in any {WINDOW_S:.2f} s, so {outcome.orders} cancels "
        f"need at least {floor_s:.0f} s after the first; the breaker halts intake first, so no new order "
        f"competes for the budget meanwhile."
    )


def main(argv: list[str] | None = None) -> Outcome:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--limit", type=int, default=120)
    parser.add_argument("--quick", action="store_true", help="50 orders at a limit of 30")
    args = parser.parse_args(argv)
    orders, limit = (50, 30) if args.quick else (args.orders, args.limit)
    logging.basicConfig(level=logging.WARNING)
    console = Console()
    console.print(f"building a book of {orders} orders at the paper Schwab API ...")
    outcome = asyncio.run(run(orders, limit))
    report(outcome, console)
    return outcome


if __name__ == "__main__":
    main()
