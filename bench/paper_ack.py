"""Order acknowledgement latency through the paper gateway, as ib_async sees it.

    python -m bench.paper_ack [--orders 2000] [--warmup 200]

Measures the placeOrder bytes leaving ib_async's socket -> the orderStatus ``Submitted`` for
that order reaching ib_async's wrapper ("received"; it has decoded the openOrder that TWS
sends first) and its ``orderStatusEvent`` ("delivered"; after ib_async's own bookkeeping),
one order at a time, for resting limit orders far from the market. The gateway runs with
pacing off and ib_async's own throttle is disabled: at IB's 50 msgs/s the figure would be
the pacing interval, not latency.
Prints p50 / p99 / max in microseconds; the goal is p99 under 1 ms. The baseline, measured in
the same run on the same connection: ``reqCurrentTime`` round trips, which the gateway answers
without the venue, so the ratio shows what order handling adds to the bare socket and decoding
path of this machine at this moment.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time

import uvloop
from ib_async import IB, LimitOrder, Stock, Trade
from rich.console import Console
from rich.progress import Progress

from bench.figures import percentile
from bench.paper_stack import HOST, paper_stack


async def measure(port: int, orders: int, warmup: int) -> tuple[list[float], list[float], list[float]]:
    ib = IB()
    await ib.connectAsync(HOST, port, clientId=1, timeout=10)
    ib.client.MaxRequests = 0
    contract = Stock("AAPL", "SMART", "USD")
    await ib.qualifyContractsAsync(contract)
    [ticker] = await ib.reqTickersAsync(contract)
    price = round(ticker.bid * 0.5, 2)
    acked = asyncio.Event()
    waiting: dict[int, float] = {}
    received: list[float] = []
    delivered: list[float] = []
    original = ib.wrapper.orderStatus

    def on_wire(order_id: int, status: str, *rest: object) -> None:
        # The decoder hands orderStatus to the wrapper here: "received by ib_async".
        started = waiting.get(order_id)
        if started is not None and status == "Submitted":
            received.append(time.perf_counter() - started)
        original(order_id, status, *rest)  # type: ignore[arg-type]

    def on_status(trade: Trade) -> None:
        started = waiting.pop(trade.order.orderId, None)
        if started is not None and trade.orderStatus.status == "Submitted":
            delivered.append(time.perf_counter() - started)
            acked.set()

    ib.wrapper.orderStatus = on_wire  # type: ignore[method-assign,assignment]
    conn = ib.client.conn
    send = conn.sendMsg
    pending_id: list[int] = [0]

    def stamped_send(msg: bytes) -> None:
        send(msg)
        if msg[4:6] == b"3\0":  # a placeOrder frame: the clock starts when it is written
            waiting[pending_id[0]] = time.perf_counter()

    conn.sendMsg = stamped_send  # type: ignore[method-assign]
    ib.orderStatusEvent += on_status
    # The client's own garbage collector (thousands of Trade objects) would show up as
    # gateway latency; it is paused while measuring. The gateway keeps its own running.
    gc.collect()
    gc.disable()
    baseline: list[float] = []
    with Progress(transient=True) as progress:
        task = progress.add_task("baseline: reqCurrentTime round trips", total=orders + warmup)
        for _ in range(orders + warmup):
            started = time.perf_counter()
            await ib.reqCurrentTimeAsync()
            baseline.append(time.perf_counter() - started)
            progress.advance(task)
        task = progress.add_task("placing orders", total=orders + warmup)
        for _ in range(orders + warmup):
            acked.clear()
            order = LimitOrder("BUY", 1, price)
            order.orderId = pending_id[0] = ib.client.getReqId()
            ib.placeOrder(contract, order)
            await asyncio.wait_for(acked.wait(), 5)
            progress.advance(task)
    gc.enable()
    ib.reqGlobalCancel()
    ib.disconnect()
    return baseline[warmup:], received[warmup:], delivered[warmup:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    args = parser.parse_args()
    console = Console()
    with paper_stack(gateway_args=["--no-pacing"]) as stack:
        baseline, received, delivered = uvloop.run(measure(stack.gateway_port, args.orders, args.warmup))
    base = sorted(s * 1e6 for s in baseline)
    console.print(
        f"baseline reqCurrentTime round trip, {len(base)}: p50 {percentile(base, 50):.0f} us, "
        f"p99 {percentile(base, 99):.0f} us, max {base[-1]:.0f} us"
    )
    for label, samples in (
        ("received (wire -> ib_async wrapper.orderStatus)", received),
        ("delivered (ib_async orderStatusEvent)", delivered),
    ):
        us = sorted(s * 1e6 for s in samples)
        verdict = "[green]p99 < 1 ms[/]" if percentile(us, 99) < 1000 else "[red]p99 >= 1 ms[/]"
        console.print(
            f"order ack {label}, {len(us)} orders: p50 {percentile(us, 50):.0f} us, "
            f"p99 {percentile(us, 99):.0f} us, max {us[-1]:.0f} us  {verdict}  "
            f"(x{percentile(us, 50) / percentile(base, 50):.1f} baseline at p50, "
            f"x{percentile(us, 99) / percentile(base, 99):.1f} at p99)"
        )


if __name__ == "__main__":
    main()
