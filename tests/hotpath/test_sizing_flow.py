"""Kelly sizing on the broker's own bankroll: the quantity sent is exactly
floor(f* x net liquidation x kelly_fraction / entry), the net liquidation as the venue reports it."""

from __future__ import annotations

import dataclasses
import json
import uuid
from decimal import ROUND_DOWN, Decimal
from fractions import Fraction
from math import floor

import asyncpg
from aiokafka import AIOKafkaProducer

from ledger.keys import register_key
from ledger.risk_profiles import set_profile
from tests.fixtures.hotpath import Agent, enter_command
from tests.fixtures.paper import PaperStack
from tests.helpers import eventually
from tests.hotpath.conftest import MAIN_PROFILE, VENUE_ACCOUNT, HotPathProcess
from tests.hotpath.test_hotpath_flow import CENT, await_event, quote, send
from trading.order_events import EventKind
from trading.signing import generate_private_key, public_key_bytes

KELLY_FRACTION = Decimal("0.002")


async def test_kelly_binds_on_the_brokers_net_liquidation(
    hotpath: HotPathProcess,
    paper: PaperStack,
    agent: Agent,
    command_producer: AIOKafkaProducer,
    kafka_bootstrap: str,
    ledger_pool: asyncpg.Pool,
) -> None:
    operator_key = generate_private_key()
    operator = f"ops-{uuid.uuid4().hex[:8]}"
    await register_key(ledger_pool, operator, public_key_bytes(operator_key), "operator", ["*"])
    bid, _ = await quote(paper, "AAPL")
    resting = (bid * Decimal("0.8")).quantize(CENT, ROUND_DOWN)
    timid = dataclasses.replace(MAIN_PROFILE, kelly_fraction=KELLY_FRACTION)
    await set_profile(ledger_pool, VENUE_ACCOUNT, timid, operator_id=operator, operator_key=operator_key)
    try:

        async def sized_by_kelly() -> dict[str, str] | None:
            env = agent.sign(
                enter_command(agent.agent_id, account=VENUE_ACCOUNT, limit=resting, stop=resting - 5)
            )
            await send(command_producer, env)
            event = await await_event(
                kafka_bootstrap, env.command.command_id, EventKind.ACCEPTED, EventKind.REJECTED
            )
            raw = await ledger_pool.fetchval(
                "SELECT detail FROM ledger_entries WHERE command_id = $1 AND authenticated",
                env.command.command_id,
            )
            detail = json.loads(raw) if raw else {}
            if event.kind is EventKind.ACCEPTED and detail.get("binding") == "kelly":
                return {**detail, "sent": str(event.quantity)}
            return None  # still on the old profile: the reload follows the change's announcement

        detail = await eventually(sized_by_kelly, timeout=15.0)
    finally:
        await set_profile(
            ledger_pool, VENUE_ACCOUNT, MAIN_PROFILE, operator_id=operator, operator_key=operator_key
        )

    bankroll = Decimal(detail["bankroll"])
    assert Decimal("900000") < bankroll < Decimal("1100000"), "the paper account's net liquidation"
    f_star = Fraction(Decimal("0.55")) - (1 - Fraction(Decimal("0.55"))) / Fraction(Decimal("1.5"))
    expected = floor(f_star * Fraction(bankroll) * Fraction(KELLY_FRACTION) / Fraction(resting))
    assert int(detail["sent"]) == int(detail["quantity"]) == expected >= 1
