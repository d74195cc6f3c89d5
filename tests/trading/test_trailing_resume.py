"""Where a trailing stop resumes after a restart: the tightest credible of its initial stop, its
persisted level and the broker's stop; never looser than any of them."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from trading.commands import Side
from trading.trailing import TrailingStop
from trading.trailing_resume import PersistedLevel, resume_stop, tighter
from trading.trailing_resume import ResumedFrom as From

TICK = Decimal("0.01")
LONG = TrailingStop(Side.BUY, TICK, Decimal("99.00"), trail_amount=Decimal("1.00"))
"""A SELL stop protecting a long, sent at 99.00, trailing 1.00 behind the best price."""
SHORT = TrailingStop(Side.SELL, TICK, Decimal("101.00"), trail_amount=Decimal("1.00"))


def test_the_persisted_level_wins_over_the_initial_stop_when_the_broker_agrees() -> None:
    resumed = resume_stop(LONG, PersistedLevel(Decimal("102.50"), Decimal("103.50")), Decimal("102.50"))
    assert (resumed.stop, resumed.source, resumed.modify_broker) == (Decimal("102.50"), From.PERSISTED, False)


def test_a_move_the_broker_got_but_the_database_did_not_resumes_from_the_broker() -> None:
    resumed = resume_stop(LONG, PersistedLevel(Decimal("102.50"), Decimal("103.50")), Decimal("103.10"))
    assert (resumed.stop, resumed.source, resumed.modify_broker) == (Decimal("103.10"), From.BROKER, False)


def test_a_persisted_move_the_broker_never_got_is_sent_to_it() -> None:
    resumed = resume_stop(SHORT, PersistedLevel(Decimal("98.00"), Decimal("97.00")), Decimal("99.40"))
    assert (resumed.stop, resumed.source, resumed.modify_broker) == (Decimal("98.00"), From.PERSISTED, True)


def test_without_a_persisted_level_it_resumes_from_the_broker_or_the_initial_stop() -> None:
    assert resume_stop(LONG, None, Decimal("100.20")).stop == Decimal("100.20")
    resumed = resume_stop(LONG, None, None)
    assert (resumed.stop, resumed.source, resumed.modify_broker) == (Decimal("99.00"), From.INITIAL, False)


def test_a_level_the_rule_could_not_have_reached_is_ignored() -> None:
    # Tighter than one trail from the recorded best price: not a level this rule produced.
    planted = resume_stop(LONG, PersistedLevel(Decimal("110.00"), Decimal("103.00")), Decimal("101.00"))
    assert (planted.stop, planted.source) == (Decimal("101.00"), From.BROKER)
    assert planted.ignored is not None and "tighter than one trail" in planted.ignored
    looser = resume_stop(LONG, PersistedLevel(Decimal("90.00"), Decimal("91.00")), None)
    assert looser.stop == Decimal("99.00") and looser.ignored is not None and "looser" in looser.ignored
    no_best = resume_stop(SHORT, PersistedLevel(Decimal("100.00"), None), None)
    assert no_best.stop == Decimal("101.00") and no_best.ignored is not None


prices = st.decimals(min_value=Decimal("50"), max_value=Decimal("150"), places=2)


@given(side=st.sampled_from([Side.BUY, Side.SELL]), best=prices, broker=st.none() | prices)
def test_it_never_resumes_looser_than_a_credible_witness(
    side: Side, best: Decimal, broker: Decimal | None
) -> None:
    rule = LONG if side is Side.BUY else SHORT
    order_side = Side.SELL if side is Side.BUY else Side.BUY
    level = rule.on_price(best)
    persisted = None if level is None else PersistedLevel(level.stop, best)
    resumed = resume_stop(rule, persisted, broker)
    assert resumed.ignored is None
    for witness in (rule.stop, None if persisted is None else persisted.stop, broker):
        if witness is not None:
            assert not tighter(order_side, witness, resumed.stop)
    assert resumed.modify_broker == (broker is not None and tighter(order_side, resumed.stop, broker))
