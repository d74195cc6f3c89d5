"""Trailing stops on a busy tape: tick that moves a stop -> the modify on the broker socket.

    python -m bench.exits [--positions 50] [--rate 5000] [--seconds 30] [--quick]

A paper venue and gateway (pacing on, as IB's) drive ``--rate`` order-flow events a second
across the five paper symbols. The floor's broker adapter (``ib_async`` underneath, its own
throttle at 45 messages/s) holds ``--positions`` long positions of one share, each protected by
a stop the Exit Manager trails (trails from 0.2% to 1.1% of the price, so the stops sit at
different distances from the market). Each run trails them for ``--seconds`` and prints p50 /
p99 / max of tick arrival (the socket read carrying the tick) -> the modify's socket write, the
number of modifies, how many the floor's pacing delayed and how many levels it coalesced:

* ``paced``: the floor's budget (FLOOR_EXITS_MODIFY_RATE, default 40/s, burst 10): a stop's
  newest level waits when the budget is spent, nearest the market first;
* ``unpaced``: every move handed to ``ib_async`` at once; beyond its 45/s it queues them first
  in first out, so the write time of those is unknown to the floor (counted as queued).

Baseline in the same run: the bare decision, the same ticks replayed in process through an
Exit Manager whose modify does nothing (tick -> new stop level). The goal is p99 <= 5 ms for
the modifies written at once; what the delayed ones wait is IB's 50 messages/s at work.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import httpx
import uvloop

from bench.figures import Figures
from bench.paper_stack import HOST, BenchStack, paper_stack
from brokers.base import BrokerOrder, Quote
from brokers.ibkr import IbkrBroker, IbkrConfig
from hotpath.exit_manager import ExitManager, StopMoved
from trading.commands import OrderType, Side, TimeInForce
from trading.trailing_pacing import ModifyBudget

SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN", "JPM")
ACCOUNT = "DU1234567"


@dataclass
class Run:
    label: str
    moves: list[StopMoved] = field(default_factory=list)
    ticks: list[tuple[str, Decimal]] = field(default_factory=list)
    stops: dict[str, tuple[str, Decimal, Decimal]] = field(default_factory=dict)
    """command id -> (symbol, initial stop, trail percent)."""
    coalesced: int = 0

    @property
    def written_at_once(self) -> Figures:
        return Figures.of(
            [m.modify_write_ns - m.tick_recv_ns for m in self.moves if m.modify_write_ns and not m.delayed]
        )

    @property
    def delayed(self) -> Figures:
        return Figures.of(
            [m.modify_write_ns - m.tick_recv_ns for m in self.moves if m.modify_write_ns and m.delayed]
        )

    @property
    def queued(self) -> int:
        return sum(1 for m in self.moves if not m.modify_write_ns)


def mark(quote: Quote) -> Decimal | None:
    """The price the hot path trails by (:meth:`hotpath.hot_path.HotPath.on_quote`)."""
    if quote.last is not None:
        return quote.last
    if quote.bid is not None and quote.ask is not None:
        return (quote.bid + quote.ask) / 2
    return None


async def control(stack: BenchStack, path: str, body: dict[str, object]) -> None:
    async with httpx.AsyncClient(timeout=10.0) as client:
        url = f"http://{HOST}:{stack.control_port}{path}"
        (await client.post(url, json=body, headers=stack.control_headers)).raise_for_status()


async def wait_for(predicate: object, timeout: float) -> None:  # noqa: ASYNC109 - a bounded poll
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError("the venue did not get there in time")
        await asyncio.sleep(0.05)


async def trail(
    broker: IbkrBroker, stack: BenchStack, run: Run, args: argparse.Namespace, budget: ModifyBudget
) -> None:
    positions, seconds = args.positions, args.seconds
    loop = asyncio.get_running_loop()
    exits = ExitManager(
        lambda ref, stop: broker.modify(ref, stop_price=stop),
        run.moves.append,
        budget=budget,
        schedule=loop.call_later,
    )
    prices: dict[str, Decimal] = {}
    recording = False

    def on_quote(quote: Quote) -> None:
        price = mark(quote)
        if price is None or price <= 0:
            return
        prices[quote.symbol] = price
        if recording:
            run.ticks.append((quote.symbol, price))
            exits.on_price(quote.symbol, price, quote.recv_ns)

    for symbol in SYMBOLS:
        await broker.subscribe_quotes(symbol, on_quote)
    await wait_for(lambda: len(prices) == len(SYMBOLS), 10.0)
    for n in range(positions):
        symbol = SYMBOLS[n % len(SYMBOLS)]
        pct = Decimal("0.2") + Decimal("0.1") * (n // len(SYMBOLS) % 10)
        ref = f"bench-{run.label}-{n}-{time.time_ns()}"
        stop = exits.initial_stop(Side.SELL, prices[symbol], trail_amount=None, trail_percent=pct)
        broker.place(
            BrokerOrder(ref, ACCOUNT, symbol, Side.SELL, 1, OrderType.STP, TimeInForce.GTC, stop_price=stop)
        )
        exits.track(ref, symbol, Side.SELL, stop, trail_amount=None, trail_percent=pct)
        run.stops[ref] = (symbol, stop, pct)
        await asyncio.sleep(1 / 40)  # placing within IB's pacing, not measured
    await asyncio.sleep(1.0)
    recording = True
    # The busy tape, across the symbols (the venue's rate is a symbol's).
    await control(stack, "/rate", {"rate": args.rate / len(SYMBOLS)})
    await asyncio.sleep(seconds)
    recording = False
    await control(stack, "/rate", {"rate": 50})
    run.coalesced = exits.counts.coalesced
    for ref in run.stops:
        exits.forget(run.stops[ref][0], ref)
    broker.cancel_all()
    await asyncio.sleep(1.0)


def baseline(run: Run) -> Figures:
    """The same ticks through an in-process Exit Manager whose modify does nothing: the decision."""
    exits = ExitManager(lambda ref, stop: 0)
    for ref, (symbol, stop, pct) in run.stops.items():
        exits.track(ref, symbol, Side.SELL, stop, trail_amount=None, trail_percent=pct)
    samples: list[int] = []
    for symbol, price in run.ticks:
        started = time.perf_counter_ns()
        moved = exits.on_price(symbol, price, started)
        elapsed = time.perf_counter_ns() - started
        if moved:
            samples.append(elapsed // len(moved))
    return Figures.of(samples)


async def amain(args: argparse.Namespace) -> list[tuple[Run, Figures]]:
    results: list[tuple[Run, Figures]] = []
    with paper_stack(["--seed", "7"]) as stack:
        broker = IbkrBroker(IbkrConfig(HOST, stack.gateway_port, client_id=7, max_requests_per_s=45))
        await broker.connect()
        try:
            for label, budget in (
                ("paced", ModifyBudget(args.modify_rate, args.modify_burst)),
                ("unpaced", ModifyBudget(0, 1)),
            ):
                run = Run(label)
                print(
                    f"{label}: {args.positions} stops, {args.rate:g} events/s, {args.seconds:g} s ...",
                    flush=True,
                )
                await trail(broker, stack, run, args, budget)
                results.append((run, baseline(run)))
        finally:
            await broker.close()
    return results


def report(results: Sequence[tuple[Run, Figures]], args: argparse.Namespace) -> None:
    print()
    print(f"{args.positions} trailing stops, venue at {args.rate:g} events/s, {args.seconds:g} s a run")
    print("figures: p50 / p99 / max in ms (n)")
    for run, bare in results:
        at_once, delayed = run.written_at_once, run.delayed
        ratio = at_once.p99_us / bare.p99_us if bare.p99_us == bare.p99_us and bare.p99_us else float("nan")
        print(f"[{run.label}] ticks {len(run.ticks)}, modifies {len(run.moves)}")
        print(f"  tick -> modify written at once   {at_once.cells()}  ({at_once.n})   goal p99 <= 5 ms")
        print(f"  tick -> modify delayed by pacing {delayed.cells()}  ({delayed.n})")
        print(f"  queued by ib_async (write unseen) {run.queued}; levels coalesced {run.coalesced}")
        print(f"  baseline, bare decision          {bare.cells()}  ({bare.n});  p99 ratio {ratio:.1f}x")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.exits", description=__doc__.split("\n")[0])
    parser.add_argument("--positions", type=int, default=50, help="trailing stops (default 50)")
    parser.add_argument("--rate", type=float, default=5000.0, help="venue events/s across the symbols")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each run (default 30)")
    parser.add_argument("--modify-rate", type=int, default=40, help="the floor's modify budget, /s")
    parser.add_argument("--modify-burst", type=int, default=10, help="modifies the budget allows at once")
    parser.add_argument("--quick", action="store_true", help="8 s runs: under a minute in all")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds = 8.0
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    # The cancels at the end of each run are answered with error 202 ("Order Canceled"): no news.
    logging.getLogger("ib_async").setLevel(logging.CRITICAL)
    report(uvloop.run(amain(args)), args)


if __name__ == "__main__":
    main()
