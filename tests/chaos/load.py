"""The load a chaos scenario streams while it injects its fault: signed commands onto
``agent.commands`` at a steady rate, a seeded mix of the orders an agent sends.

Per command, by a seeded draw: a resting buy (a limit 10% under the bid: it works at the venue
until cancelled), a marketable buy (1% over the ask: it fills at once), a marketable sell (a
short entry 1% under the bid), or a cancel of an earlier resting buy no cancel has named yet.
Prices come from the venue's control API (read at most twice a second), so the mix holds while
the floor's own market data is cut off. Everything sent is kept, in order, as
:class:`~tests.chaos.checker.Sent` for the checker.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections.abc import AsyncIterator
from decimal import ROUND_DOWN, Decimal

from aiokafka import AIOKafkaProducer

from bus.kafka import start_producer
from bus.topics import AGENT_COMMANDS
from tests.chaos.checker import Sent
from tests.chaos.floor import ACCOUNT, SYMBOLS, ChaosFloor
from tests.factories import Agent, cancel_command, enter_command
from trading.commands import Command, Side

CENT = Decimal("0.01")
RATE = float(os.environ.get("FLOOR_CHAOS_RATE", "50"))
"""Commands a second. 50 by default: just over what ib_async writes a second (45, IB's pacing),
so a short queue of requests waits in the process, as under a real burst; more makes it longer."""
QUOTES_EVERY_S = 0.5
RESTING, MARKETABLE_BUY, MARKETABLE_SELL = Decimal("0.90"), Decimal("1.01"), Decimal("0.99")


class Load:
    def __init__(self, floor: ChaosFloor, producer: AIOKafkaProducer, *, seed: int = 14) -> None:
        self.floor = floor
        self.producer = producer
        self.sent: list[Sent] = []
        self._agent: Agent = floor.agent
        self._rng = random.Random(seed)
        self._uncancelled: list[str] = []
        self._quotes: dict[str, tuple[Decimal, Decimal]] = {}
        self._quoted_at = 0.0
        self._deliveries: list[asyncio.Future[object]] = []
        self._progress = asyncio.Condition()

    async def stream(self, n: int, rate: float) -> None:
        """Send ``n`` commands, one every ``1 / rate`` s (no catching up in bursts after a
        stall), then wait for Kafka to acknowledge every one."""
        loop = asyncio.get_running_loop()
        due = loop.time()
        for _ in range(n):
            await asyncio.sleep(max(0.0, due - loop.time()))
            due = max(due + 1 / rate, loop.time())
            await self.send(await self._next())
        await self.flush()

    async def flush(self) -> None:
        """Wait for Kafka to acknowledge everything sent so far."""
        await asyncio.gather(*self._deliveries)

    async def send(self, command: Command, signer: Agent | None = None) -> Sent:
        """Sign ``command`` (as the load's agent unless told) and produce it; keep it for the checker."""
        envelope = (signer or self._agent).sign(command)
        key = f"{command.account}/{command.symbol or ''}".encode()
        self._deliveries.append(await self.producer.send(AGENT_COMMANDS, envelope.to_wire(), key=key))
        sent = Sent(command.command_id, command.kind.value, command.target_command_id)
        async with self._progress:
            self.sent.append(sent)
            self._progress.notify_all()
        return sent

    async def reached(self, n: int, timeout: float = 60.0) -> None:  # noqa: ASYNC109 - one bound for the wait
        """Return once ``n`` commands have been sent."""
        async with self._progress:
            await asyncio.wait_for(self._progress.wait_for(lambda: len(self.sent) >= n), timeout)

    async def _next(self) -> Command:
        draw = self._rng.random()
        if draw >= 0.75 and self._uncancelled:
            target = self._uncancelled.pop(self._rng.randrange(len(self._uncancelled)))
            return cancel_command(self._agent.agent_id, target, account=ACCOUNT)
        symbol = self._rng.choice(SYMBOLS)
        bid, ask = await self._quote(symbol)
        agent = self._agent.agent_id
        if draw < 0.45 or draw >= 0.75:
            limit = _cents(bid * RESTING)
            command = enter_command(agent, account=ACCOUNT, symbol=symbol, limit=limit, stop=limit - 5,
                                    quantity=self._rng.randint(1, 3))  # fmt: skip
            self._uncancelled.append(command.command_id)
            return command
        if draw < 0.60:
            limit = _cents(ask * MARKETABLE_BUY)
            return enter_command(agent, account=ACCOUNT, symbol=symbol, limit=limit, stop=limit - 5,
                                 quantity=self._rng.randint(1, 2))  # fmt: skip
        limit = _cents(bid * MARKETABLE_SELL)
        return enter_command(agent, account=ACCOUNT, symbol=symbol, side=Side.SELL, limit=limit,
                             stop=limit + 5, quantity=self._rng.randint(1, 2))  # fmt: skip

    async def _quote(self, symbol: str) -> tuple[Decimal, Decimal]:
        if time.monotonic() - self._quoted_at > QUOTES_EVERY_S:
            for s in SYMBOLS:
                self._quotes[s] = await self.floor.paper.quote(s)
            self._quoted_at = time.monotonic()
        return self._quotes[symbol]


def _cents(price: Decimal) -> Decimal:
    return price.quantize(CENT, ROUND_DOWN)


@contextlib.asynccontextmanager
async def streaming(floor: ChaosFloor, n: int = 500, rate: float = RATE) -> AsyncIterator[Load]:
    """Stream ``n`` commands at ``rate`` a second in the background while the block runs (it
    injects the fault); on leaving the block, wait for the stream to end (bounded by its own
    length plus a minute)."""
    producer = await start_producer(floor.settings.kafka, "chaos-load")
    load = Load(floor, producer)
    task = asyncio.create_task(load.stream(n, rate), name="chaos-load")
    try:
        yield load
        await asyncio.wait_for(asyncio.shield(task), n / rate + 60.0)
        await asyncio.wait_for(load.flush(), 60.0)
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        await producer.stop()
