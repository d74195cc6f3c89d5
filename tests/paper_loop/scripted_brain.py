"""A minimal brain for driving the paper loop's own machinery: one agent, one symbol, market
entries with a claimed edge (the floor's sizer sizes them) and market exits of what filled.

It stands in for the demo brain only where a test is about the loop itself (counting, stopping,
the audit's wiring); the end-to-end tests drive the demo brain.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from decimal import ROUND_DOWN, Decimal
from typing import Any

import asyncpg

from bus.kafka import start_producer
from config.settings import FloorSettings
from tests.factories import Agent, enter_command, exit_command
from tests.fixtures.hotpath import send
from tests.fixtures.paper import PaperStack
from tests.helpers import eventually
from trading.commands import OrderType, Side

CENT = Decimal("0.01")


class ScriptedBrain:
    def __init__(
        self,
        settings: FloorSettings,
        agent: Agent,
        account: str,
        paper: PaperStack,
        symbol: str = "AAPL",
        edge: tuple[Decimal, Decimal] = (Decimal("0.55"), Decimal("1.5")),
    ) -> None:
        self.settings, self.agent, self.account = settings, agent, account
        self.paper, self.symbol, self.edge = paper, symbol, edge
        self.believed_round_trips = 0

    @property
    def agent_ids(self) -> tuple[str, ...]:
        return (self.agent.agent_id,)

    async def run(self, stop: asyncio.Event) -> None:
        """Round trips until ``stop``; its own producer and pool, on the loop that runs it."""
        producer = await start_producer(self.settings.kafka, self.agent.agent_id)
        pool = await asyncpg.create_pool(self.settings.db_url, min_size=1, max_size=2)
        try:
            await self._trade(stop, producer, pool)
        finally:
            await pool.close()
            await producer.stop()

    async def _trade(self, stop: asyncio.Event, producer: Any, pool: asyncpg.Pool) -> None:
        while not stop.is_set():
            bid, ask = await self.paper.quote(self.symbol)
            stop_price = ((bid + ask) / 2 * Decimal("0.99")).quantize(CENT, ROUND_DOWN)
            entry = enter_command(
                self.agent.agent_id, account=self.account, symbol=self.symbol, side=Side.BUY,
                p=self.edge[0], b=self.edge[1], stop=stop_price, command_id=f"loop-{uuid.uuid4().hex}",
            )  # fmt: skip
            entry = dataclasses.replace(entry, order_type=OrderType.MKT, limit_price=None)
            await send(producer, self.agent.sign(entry))
            filled = await self._filled(pool, entry.command_id)
            exit_ = exit_command(
                self.agent.agent_id, account=self.account, symbol=self.symbol, side=Side.SELL,
                quantity=filled, order_type=OrderType.MKT,
            )  # fmt: skip
            await send(producer, self.agent.sign(exit_))
            await self._filled(pool, exit_.command_id)
            self.believed_round_trips += 1

    async def _filled(self, pool: asyncpg.Pool, command_id: str) -> int:
        async def done() -> int | None:
            qty = await pool.fetchval(
                "SELECT max(filled_qty) FROM order_events WHERE command_id = $1 AND kind = 'filled'",
                command_id,
            )
            return int(qty) if qty else None

        filled: int = await eventually(done, timeout=20.0, interval=0.05)
        return filled
