"""L2 depth throughput and lag through the paper gateway, as ib_async sees it.

    python -m bench.paper_depth [--rate 5000] [--seconds 10] [--rows 10]

The venue runs its order-flow model at ``--rate`` book updates per second on each of its five
symbols; one ib_async client subscribes to all five through the gateway. An observer connected
straight to the venue records every depth batch with the venue's send time; afterwards the
rows the gateway must have sent are recomputed from those batches and matched one for one
against the rows ib_async received. Lag = ib_async receive time - venue send time (same host
clock). Prints rows/s, p50/p99/max lag and whether every row matched. Goal: 5,000 updates/s
per symbol with lag p99 under 5 ms. Baseline, same run: the observer's own lag (venue send ->
a client connected straight to the venue, no gateway and no TWS decoding), with the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import pickle
import time
from typing import Any

import httpx
import uvloop
from ib_async import IB, Stock
from rich.console import Console
from rich.progress import Progress

from bench.figures import percentile
from bench.paper_stack import HOST, paper_stack
from paper.tws.depth import GatewayBook, Row, apply_change, rows_for_change
from paper.venue.client import VenueClient
from paper.venue.events import DepthEvent, VenueEvent
from paper.venue.messages import DepthSnapshot

SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN", "JPM")


def expected_rows(snapshot: DepthSnapshot, events: list[DepthEvent], rows: int) -> list[tuple[Row, int]]:
    """The rows the gateway sends after ``snapshot`` for these batches, with each batch's time."""
    book = GatewayBook(snapshot)
    out: list[tuple[Row, int]] = []
    for event in events:
        for change in event.changes:
            if change.seq <= book.seq:
                continue
            moved = apply_change(book, change)
            if moved is not None:
                side_rows = rows_for_change(book.side(change.side), change.side, *moved, rows)
                out += [(row, event.time_ns) for row in side_rows]
    return out


def observe(venue_port: int, ready: Any, stop: Any, out: Any) -> None:
    """Child process: record the venue's depth batches (so recording costs the client nothing)."""

    async def run() -> None:
        observer = await VenueClient.connect(HOST, venue_port, "bench-observer")
        batches: list[DepthEvent] = []
        direct_lags: list[float] = []

        def on_event(event: VenueEvent) -> None:
            if isinstance(event, DepthEvent):
                batches.append(event)
                direct_lags.append((time.time_ns() - event.time_ns) / 1e6)

        observer.add_listener(on_event)
        snapshots = {s: await observer.subscribe_depth(s) for s in SYMBOLS}
        # A recorder of 250k batches: its collector's pauses would be charged to the venue.
        gc.collect()
        gc.disable()
        ready.set()
        await asyncio.to_thread(stop.wait)
        await observer.close()
        out.put(pickle.dumps((snapshots, batches, direct_lags)))

    uvloop.run(run())


async def _raise_for_status(response: httpx.Response) -> None:
    response.raise_for_status()


async def measure(stack: Any, rate: float, seconds: float, rows: int, console: Console) -> None:
    control = httpx.AsyncClient(
        base_url=f"http://{HOST}:{stack.control_port}",
        headers=stack.control_headers,
        timeout=10,
        # A refused control call would leave the market running and the figures meaningless.
        event_hooks={"response": [_raise_for_status]},
    )
    await control.post("/clock", json={"paused": True})
    ctx = multiprocessing.get_context("spawn")
    ready, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
    child = ctx.Process(target=observe, args=(stack.venue_port, ready, stop, out), daemon=True)
    child.start()
    await asyncio.to_thread(ready.wait, 30)

    ib = IB()
    await ib.connectAsync(HOST, stack.gateway_port, clientId=1, timeout=10)
    received: list[tuple[int, int, int, int, int, float, float]] = []
    now_ns = time.time_ns

    def on_row(
        req_id: int, position: int, _mm: str, op: int, side: int, price: float, size: float, *_: Any
    ) -> None:
        received.append((now_ns(), req_id, position, op, side, price, size))

    ib.wrapper.updateMktDepthL2 = on_row  # type: ignore[method-assign,assignment]
    tickers = {}
    for symbol in SYMBOLS:
        contract = Stock(symbol, "SMART", "USD")
        await ib.qualifyContractsAsync(contract)
        tickers[symbol] = ib.reqMktDepth(contract, numRows=rows)
    req_ids = {
        symbol: next(r for r, t in ib.wrapper.reqId2Ticker.items() if t is tickers[symbol])
        for symbol in SYMBOLS
    }
    # The market is paused: each subscription's snapshot rows arrive in one write; once every
    # symbol has some, the gateway's books start from the same sequence as the observer's.
    while {r[1] for r in received} != set(req_ids.values()):
        await ib.updateEvent

    await control.post("/rate", json={"rate": rate})
    await control.post("/clock", json={"paused": False})
    with Progress(transient=True) as progress:
        task = progress.add_task(f"depth at {rate:g}/s x {len(SYMBOLS)} symbols", total=seconds)
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < seconds:
            await asyncio.sleep(0.2)
            progress.update(task, completed=elapsed, description=f"{len(received):,} rows received")
    await control.post("/clock", json={"paused": True})
    # Drain: stop once nothing new arrives for a while.
    last = -1
    while last != len(received):
        last = len(received)
        await asyncio.sleep(0.5)
    ib.disconnect()
    stop.set()
    snapshots, batches, direct_lags = pickle.loads(await asyncio.to_thread(out.get, True, 60))
    child.join(10)
    await control.post("/rate", json={"rate": 20})
    await control.aclose()

    lags: list[float] = []
    mismatched = 0
    missing = 0
    total_changes = 0
    for symbol in SYMBOLS:
        events = [b for b in batches if b.symbol == symbol]
        total_changes += sum(len(e.changes) for e in events)
        expected = expected_rows(snapshots[symbol], events, rows)
        skip = len(GatewayBook(snapshots[symbol]).snapshot_rows(rows))
        got = [r for r in received if r[1] == req_ids[symbol]][skip:]
        missing += max(0, len(expected) - len(got))
        for (row, sent_ns), (recv_ns, _, position, op, side, price, size) in zip(expected, got, strict=False):
            e_pos, e_op, e_side, e_price, e_size = row
            if (e_pos, e_op, e_side, float(e_price), float(e_size)) != (position, op, side, price, size):
                mismatched += 1
            lags.append((recv_ns - sent_ns) / 1e6)
    lags.sort()
    base = sorted(direct_lags[len(direct_lags) // 20 :]) or [float("nan")]  # after subscription
    per_symbol = total_changes / seconds / len(SYMBOLS)
    console.print(
        f"venue changes: {total_changes:,} in {seconds:g} s = {per_symbol:,.0f}/s per symbol; "
        f"rows to ib_async: {len(received):,} ({len(received) / seconds:,.0f}/s)"
    )
    console.print(
        f"lag venue send -> ib_async receive: p50 {percentile(lags, 50):.2f} ms, "
        f"p99 {percentile(lags, 99):.2f} ms, max {lags[-1] if lags else float('nan'):.2f} ms"
    )
    console.print(
        f"baseline venue send -> direct venue client: p50 {percentile(base, 50):.2f} ms, "
        f"p99 {percentile(base, 99):.2f} ms, max {base[-1]:.2f} ms; through the gateway "
        f"x{percentile(lags, 50) / percentile(base, 50):.1f} at p50, "
        f"x{percentile(lags, 99) / percentile(base, 99):.1f} at p99"
    )
    ok = mismatched == 0 and missing == 0
    console.print(
        f"rows matching the venue's book: {'[green]all[/]' if ok else '[red]NOT all[/]'} "
        f"({mismatched} mismatched, {missing} missing)"
    )
    goal = percentile(lags, 99) < 5.0
    console.print(f"goal p99 < 5 ms: {'[green]met[/]' if goal else '[red]missed[/]'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=5000.0, help="updates/s per symbol")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rows", type=int, default=5, help="numRows per subscription (ib_async's default)")
    args = parser.parse_args()
    console = Console()
    with paper_stack() as stack:
        uvloop.run(measure(stack, args.rate, args.seconds, args.rows, console))


if __name__ == "__main__":
    main()
