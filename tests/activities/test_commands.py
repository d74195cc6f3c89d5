"""Publishing signed commands: real Tansu, real signatures, the hot path's own decoder."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from aiokafka import AIOKafkaProducer
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.commands import CancelCommandRequest, CommandActivities, OrderCommandRequest
from activities.market import MarketActivities, NoQuote, QuoteRequest, QuoteResult
from bus.kafka import start_producer
from bus.topics import AGENT_COMMANDS
from tests.fixtures.hotpath import read_until
from trading.commands import CommandKind, Edge, Side
from trading.signing import SignedCommand, generate_private_key

SNIPER = generate_private_key()
ISSUED = datetime(2026, 11, 24, 14, 30, 1, 123456, tzinfo=UTC)


@pytest.fixture(scope="module")
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    p = await start_producer(kafka_bootstrap, "commands-test")
    yield p
    await p.stop()


def _slice(cid: str) -> OrderCommandRequest:
    return OrderCommandRequest(
        command_id=cid,
        parent_id="ice-1",
        agent_id="sniper",
        account="DU1",
        symbol="AAPL",
        side="BUY",
        quantity=100,
        limit_price=Decimal("187.26"),
        tif="DAY",
        edge=Edge(Decimal("0.55"), Decimal("2"), Decimal("180")),
        issued_at=ISSUED,
    )


async def test_slice_is_a_signed_enter_command_and_a_retry_is_the_same_record(
    producer: AIOKafkaProducer, kafka_bootstrap: str
) -> None:
    acts = CommandActivities(producer, {"sniper": SNIPER})
    cid = f"ice-{uuid.uuid4().hex}.s0001"
    env = ActivityEnvironment()
    first = await env.run(acts.publish_order, _slice(cid))
    retry = await env.run(acts.publish_order, _slice(cid))  # a retried attempt
    assert first.command_id == retry.command_id == cid and retry.offset > first.offset

    records = await _records_with(kafka_bootstrap, cid, 2)
    # Same command id -> same command, nonce and (deterministic Ed25519) signature: the ledger's
    # unique (agent, nonce) index admits it once.
    assert records[0] == records[1]
    envelope = SignedCommand.from_wire(records[0])
    envelope.verify(SNIPER.public_key())
    cmd = envelope.command
    assert cmd.kind is CommandKind.ENTER and cmd.side is Side.BUY and cmd.parent_id == "ice-1"
    assert cmd.agent_id == "sniper" and cmd.quantity == 100 and cmd.limit_price == Decimal("187.26")
    assert cmd.edge == Edge(Decimal("0.55"), Decimal("2"), Decimal("180"))
    assert cmd.issued_at == datetime(2026, 11, 24, 14, 30, 1, 123000, tzinfo=UTC)


async def _records_with(bootstrap: str, marker: str, count: int) -> list[bytes]:
    seen: list[bytes] = []

    def enough(value: bytes) -> bool:
        if marker.encode() in value:
            seen.append(value)
        return len(seen) >= count

    await read_until(bootstrap, AGENT_COMMANDS, enough)
    return seen


async def test_cancel_names_its_target(producer: AIOKafkaProducer, kafka_bootstrap: str) -> None:
    acts = CommandActivities(producer, {"sniper": SNIPER})
    cid = f"ice-{uuid.uuid4().hex}.s0002.x1"
    req = CancelCommandRequest(
        command_id=cid,
        target_command_id=cid[:-3],
        agent_id="sniper",
        account="DU1",
        symbol="AAPL",
        issued_at=ISSUED,
        reason="sniper.reprice",
    )
    await ActivityEnvironment().run(acts.publish_cancel, req)
    [raw] = await _records_with(kafka_bootstrap, cid, 1)
    envelope = SignedCommand.from_wire(raw)
    envelope.verify(SNIPER.public_key())
    assert envelope.command.kind is CommandKind.CANCEL and envelope.command.target_command_id == cid[:-3]


async def test_unknown_signer_and_invalid_command_are_not_retried(producer: AIOKafkaProducer) -> None:
    acts = CommandActivities(producer, {"sniper": SNIPER})
    env = ActivityEnvironment()
    with pytest.raises(ApplicationError) as unknown:
        await env.run(
            acts.publish_order, OrderCommandRequest(**{**_slice("a-1").__dict__, "agent_id": "ghost"})
        )
    assert unknown.value.non_retryable and unknown.value.type == "UnknownSigner"
    with pytest.raises(ApplicationError) as invalid:
        await env.run(acts.publish_order, OrderCommandRequest(**{**_slice("a-2").__dict__, "quantity": 0}))
    assert invalid.value.non_retryable and "quantity" in str(invalid.value)


class FixedQuotes:
    def __init__(self, bid: str, ask: str) -> None:
        self.bid, self.ask = Decimal(bid), Decimal(ask)

    async def quote(self, symbol: str) -> QuoteResult:
        return QuoteResult(symbol, self.bid, self.ask, Decimal("0.01"), datetime.now(UTC))


async def test_quote_activity_refuses_a_crossed_or_one_sided_book() -> None:
    env = ActivityEnvironment()
    ok = await env.run(MarketActivities(FixedQuotes("10.00", "10.02")).get_quote, QuoteRequest("AAPL"))
    assert (ok.bid, ok.ask) == (Decimal("10.00"), Decimal("10.02"))
    for bid, ask in (("10.02", "10.00"), ("10.00", "10.00"), ("0", "10.00")):
        with pytest.raises(NoQuote) as exc:
            await env.run(MarketActivities(FixedQuotes(bid, ask)).get_quote, QuoteRequest("AAPL"))
        assert not exc.value.non_retryable
