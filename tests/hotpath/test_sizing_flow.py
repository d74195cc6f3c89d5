"""Kelly sizing on the broker's own bankroll: the quantity sent is exactly
floor(f* x net liquidation x kelly_fraction / entry), the net liquidation as the venue reports it."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from fractions import Fraction
from math import floor

from ledger.risk_profiles import set_profile
from tests.factories import Agent
from tests.helpers import eventually
from tests.hotpath.conftest import MAIN_PROFILE, VENUE_ACCOUNT
from tests.hotpath.live_floor import LiveFloor
from trading.order_events import EventKind

KELLY_FRACTION = Decimal("0.002")


async def test_kelly_binds_on_the_brokers_net_liquidation(live: LiveFloor, operator: Agent) -> None:
    ledger_pool = live.pool
    resting = await live.below_bid(Decimal("0.8"))
    timid = dataclasses.replace(MAIN_PROFILE, kelly_fraction=KELLY_FRACTION)
    await set_profile(
        ledger_pool, VENUE_ACCOUNT, timid, operator_id=operator.agent_id, operator_key=operator.private_key
    )
    try:

        async def sized_by_kelly() -> dict[str, str] | None:
            env = await live.submit(live.enter(limit=resting, stop=resting - 5))
            event = await live.event(env.command.command_id, EventKind.ACCEPTED, EventKind.REJECTED)
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
            ledger_pool,
            VENUE_ACCOUNT,
            MAIN_PROFILE,
            operator_id=operator.agent_id,
            operator_key=operator.private_key,
        )

    bankroll = Decimal(detail["bankroll"])
    assert Decimal("900000") < bankroll < Decimal("1100000"), "the paper account's net liquidation"
    f_star = Fraction(Decimal("0.55")) - (1 - Fraction(Decimal("0.55"))) / Fraction(Decimal("1.5"))
    expected = floor(f_star * Fraction(bankroll) * Fraction(KELLY_FRACTION) / Fraction(resting))
    assert int(detail["sent"]) == int(detail["quantity"]) == expected >= 1
