"""The heartbeat's rules (brokers.ib_liveness), on a clock of the test's own."""

from __future__ import annotations

from brokers.ib_liveness import Liveness, LivenessRules

RULES = LivenessRules(interval=0.25, answer=0.06, misses=3)


def test_a_quiet_connection_is_probed_after_the_interval_and_each_byte_answers() -> None:
    live = Liveness(RULES, now=0.0)
    assert not live.heartbeat_due(0.2) and live.next_check(0.2) == 0.25
    assert live.heartbeat_due(0.25)
    live.probed(0.25)
    live.received(0.26)
    assert live.unanswered == 0 and not live.dead(10.0)
    assert not live.heartbeat_due(0.3)


def test_an_idle_frozen_gateway_is_dead_after_three_missed_answers() -> None:
    live = Liveness(RULES, now=0.0)
    t = 0.25
    live.probed(t)  # the heartbeat
    while not live.dead(t):
        t = live.next_check(t)
        if live.heartbeat_due(t):
            live.probed(t)
    # 250 ms of silence, then three answer windows of 60 ms.
    assert abs(t - 0.43) < 1e-9
    assert live.missed(t) == 3


def test_orders_unanswered_are_missed_answers_but_a_burst_counts_once_per_window() -> None:
    live = Liveness(RULES, now=0.0)
    for _ in range(5):
        live.probed(0.01)  # five orders written in one millisecond
    assert not live.dead(0.08)  # all missed, but within one answer window and a bit
    assert live.dead(0.13)  # the first has waited (misses - 1) answer windows + its own


def test_a_slow_answer_inside_the_window_is_no_miss() -> None:
    live = Liveness(RULES, now=0.0)
    live.probed(0.0)
    live.probed(0.025)
    live.received(0.05)
    assert live.unanswered == 0 and not live.dead(1.0) and live.heartbeat_due(0.30)


def test_a_patient_session_is_never_dead_and_is_judged_again_when_patience_ends() -> None:
    live = Liveness(RULES, now=0.0)
    live.patient = True
    live.probed(0.25)
    assert not live.dead(5.0) and not live.heartbeat_due(5.0)
    assert live.next_check(5.0) == 5.25  # no busy loop while patient
    live.patient = False
    assert not live.dead(5.0)  # one unanswered probe is one miss
    live.probed(5.0)
    live.probed(5.06)
    assert live.dead(5.12)
