"""bench.hud_render: a short run through the whole floor (paper venue, gateway, hot path, API)
into the ladder in headless Chromium, painting on and off."""

from __future__ import annotations

import pytest

from bench.hud_render import main


# A whole floor and Chromium for one benchmark run (20 s): make test-long. The ladder's paint
# path is tested in tests/hud; this checks the benchmark program still runs end to end.
@pytest.mark.long
def test_a_short_run_from_the_venue_to_the_ladder_times_every_message_and_ends_on_the_venues_book() -> None:
    result = main(["--seconds", "3", "--rate", "200", "--drain", "20"])
    assert result.source.startswith("paper venue"), "the venue, not the synthetic writer, drove it"
    assert result.event_rate > 0
    assert [p.name for p in result.phases] == ["paint", "baseline"]
    for phase in result.phases:
        assert phase.updates > 100, "the venue's book changed under its order flow"
        assert phase.messages > 10 and phase.figures.n == phase.messages
        assert phase.gaps == 0, phase.name
        assert phase.caught_up_s is not None, f"{phase.name}: the page never reached the venue's book"
        assert phase.figures.p99_us < 2_000_000, phase.name  # generous: a loaded 2-core machine
    assert result.phases[0].frames > 0
