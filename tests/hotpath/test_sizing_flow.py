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
        # One order, once the hot path enforces the new profile: an order sent before would size
        # on the old one and rest, and the exposure of a few such orders would bind before Kelly.
        async def reloaded() -> bool:
            profile = await live.hotpath.profile(VENUE_ACCOUNT)
            return profile is not None and profile["kelly_fraction"] == format(KELLY_FRACTION, "f")

        await eventually(reloaded, timeout=15.0)
        env = await live.submit(live.enter(limit=resting, stop=resting - 5))
        event = await live.event(env.command.command_id, EventKind.ACCEPTED, EventKind.REJECTED)
        query = "SELECT detail FROM ledger_entries WHERE command_id = $1 AND authenticated"
        raw = await ledger_pool.fetchval(query, env.command.command_id)
        assert event.kind is EventKind.ACCEPTED, (event, raw)
        detail = {**json.loads(raw), "sent": str(event.quantity)}
        assert detail["binding"] == "kelly", detail
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
