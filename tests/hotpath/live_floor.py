"""The floor end to end, as the hot path suites drive it: commands signed by a registered agent
go onto ``agent.commands``, the hot path process decides, ledgers and sends them to the paper
venue, and the test reads what came back on ``orders.events`` and in the ledger."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING, Any

import asyncpg
from aiokafka import AIOKafkaProducer

from tests.factories import Agent, enter_command
from tests.fixtures.hotpath import await_event, send
from tests.fixtures.paper import PaperStack
from trading.commands import Command
from trading.order_events import EventKind, OrderEvent
from trading.signing import SignedCommand

if TYPE_CHECKING:  # the conftest that makes a LiveFloor imports this module
    from tests.hotpath.conftest import HotPathProcess

CENT = Decimal("0.01")


async def kinds_of(pool: asyncpg.Pool, command_id: str) -> list[str]:
    """The kinds of the order's state records (``order_events``), oldest first."""
    rows = await pool.fetch("SELECT kind FROM order_events WHERE command_id = $1 ORDER BY id", command_id)
    return [r["kind"] for r in rows]


@dataclass(frozen=True)
class LiveFloor:
    """The package's hot path, the paper venue it trades, Kafka and the ledger, with a fresh
    agent whose key is registered; and the steps the end-to-end tests take with them."""

    hotpath: HotPathProcess
    paper: PaperStack
    agent: Agent
    producer: AIOKafkaProducer
    bootstrap: str
    pool: asyncpg.Pool
    account: str
    """The account the agent's entries trade: the venue's (or the paper Schwab API's)."""
    broker: str = "ibkr"
    """The broker the account's orders go to (``FLOOR_BROKER_ACCOUNTS``)."""

    async def quote(self, symbol: str = "AAPL") -> tuple[Decimal, Decimal]:
        return await self.paper.quote(symbol)

    async def below_bid(self, fraction: Decimal, symbol: str = "AAPL") -> Decimal:
        """A buy limit at ``fraction`` of the bid, in cents: below 1, an order that rests."""
        bid, _ = await self.quote(symbol)
        return (bid * fraction).quantize(CENT, ROUND_DOWN)

    async def above_ask(self, fraction: Decimal, symbol: str = "AAPL") -> Decimal:
        """A buy limit at ``fraction`` of the ask, in cents: above 1, an order that fills at once."""
        _, ask = await self.quote(symbol)
        return (ask * fraction).quantize(CENT, ROUND_DOWN)

    def enter(self, **fields: Any) -> Command:
        """The agent's entry on :attr:`account` unless told (see :func:`tests.factories.enter_command`)."""
        return enter_command(self.agent.agent_id, **{"account": self.account, **fields})

    async def send(self, env: SignedCommand) -> None:
        await send(self.producer, env)

    async def submit(self, command: Command) -> SignedCommand:
        """Sign ``command`` as the agent and send it; returns the envelope sent."""
        env = self.agent.sign(command)
        await self.send(env)
        return env

    async def event(self, command_id: str, *kinds: EventKind) -> OrderEvent:
        """The order's first ``orders.events`` record of one of ``kinds``."""
        return await await_event(self.bootstrap, command_id, *kinds)

    async def resting_buy(
        self, quantity: int, fraction: Decimal = Decimal("0.8"), symbol: str = "AAPL"
    ) -> SignedCommand:
        """A buy of ``quantity`` at ``fraction`` of the bid (stop 5 below), working at the venue."""
        limit = await self.below_bid(fraction, symbol)
        env = await self.submit(self.enter(symbol=symbol, limit=limit, stop=limit - 5, quantity=quantity))
        await self.event(env.command.command_id, EventKind.SUBMITTED)
        return env

    async def entry(self, command_id: str) -> asyncpg.Record | None:
        """The first ledger entry under ``command_id``."""
        return await self.pool.fetchrow(
            "SELECT * FROM ledger_entries WHERE command_id = $1 ORDER BY seq LIMIT 1", command_id
        )

    async def kinds(self, command_id: str) -> list[str]:
        return await kinds_of(self.pool, command_id)

    async def open_orders(self) -> int:
        return await self.paper.open_orders()
