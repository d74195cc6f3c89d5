"""bench.failover: a short run of kills and freezes of the active gateway with commands flowing
(the benchmark's own stack): nothing lost, nothing doubled, and the standby accepts orders well
inside the bounds a regression would break."""

from __future__ import annotations

import pytest

from bench.failover import main


# A benchmark run (8 s): make test-long. Failover is tested in tests/brokers and the chaos
# suite; this checks the benchmark program still runs end to end.
@pytest.mark.long
def test_a_short_failover_run_loses_and_doubles_nothing_and_the_standby_takes_orders_quickly() -> None:
    outcome = main(
        ["--kills", "2", "--freezes", "2", "--baseline-connects", "2", "--settle-s", "0.5", "--freeze-s", "1"]
    )
    assert [t.error for t in outcome.trials if t.error] == []
    assert outcome.produced > 50 and outcome.refused == 0
    assert (outcome.lost, outcome.duplicated) == ([], [])
    # Generous bounds for a loaded 2-core machine (the goal is p99 <= 250 ms; bench.failover
    # prints the figures). A frozen gateway used to be found only after 0.75-1 s.
    kills = outcome.figures("kill", "accepted_ns")
    freezes = outcome.figures("freeze", "accepted_ns")
    assert kills.n == 2 and kills.max_us < 500_000, kills
    assert freezes.n == 2 and freezes.max_us < 750_000, freezes
