"""The chaos checker on hand-made records: a clean run passes, and each kind of loss or
duplicate is named with the command it befell."""

from __future__ import annotations

import dataclasses

import pytest

from tests.chaos.checker import Entry, Records, Sent, StateRow, VenueFill, VenueOrder, Violation, check

CLEAN = Records(
    sent=(
        Sent("filled", "enter"),
        Sent("resting", "enter"),
        Sent("cancelled", "enter"),
        Sent("cancel-1", "cancel", target="cancelled"),
        Sent("refused", "enter"),
        Sent("held-then-cancelled", "enter"),
    ),
    entries=(
        Entry("filled", "accepted"),
        Entry("resting", "accepted"),
        Entry("cancelled", "accepted"),
        Entry("cancel-1", "accepted"),
        Entry("refused", "rejected", "risk.max_position"),
        Entry("held-then-cancelled", "accepted"),
    ),
    states=(
        StateRow("filled", "accepted"),
        StateRow("filled", "submitted"),
        StateRow("filled", "partially_filled", 1, "e1"),
        StateRow("filled", "filled", 3, "e2"),
        StateRow("resting", "accepted"),
        StateRow("resting", "submitted"),
        StateRow("cancelled", "submitted"),
        StateRow("cancelled", "cancelled"),
        StateRow("refused", "rejected"),
        StateRow("held-then-cancelled", "accepted"),
        StateRow("held-then-cancelled", "cancelled"),
    ),
    venue_orders=(
        VenueOrder("filled", 1, "Filled", 3),
        VenueOrder("resting", 2, "Submitted"),
        VenueOrder("cancelled", 3, "Cancelled"),
    ),
    venue_fills=(VenueFill("e1", "filled", 1), VenueFill("e2", "filled", 2)),
)


def test_a_run_where_nothing_was_lost_or_doubled_passes() -> None:
    assert check(CLEAN) == []


def _with(**changes: tuple[object, ...]) -> Records:
    return dataclasses.replace(CLEAN, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        pytest.param(
            _with(sent=(*CLEAN.sent, Sent("vanished", "enter"))),
            Violation("vanished", "lost", "enter sent, no ledger entry (accepted or refused)"),
            id="a command with no ledger entry",
        ),
        pytest.param(
            _with(venue_orders=(*CLEAN.venue_orders, VenueOrder("resting", 9, "Submitted"))),
            Violation("resting", "sent_twice", "the venue has 2 orders (permIds 2, 9)"),
            id="an order the venue got twice",
        ),
        pytest.param(
            _with(states=CLEAN.states[:4] + CLEAN.states[6:]),
            Violation("resting", "unknown", "Submitted at the venue, the floor has it unknown"),
            id="an order working at the venue the floor knows nothing of",
        ),
        pytest.param(
            _with(venue_orders=CLEAN.venue_orders[:1] + CLEAN.venue_orders[2:]),
            Violation("resting", "never_sent", "accepted, not at the venue, the floor has it submitted"),
            id="an accepted order the venue never got",
        ),
        pytest.param(
            _with(venue_fills=(*CLEAN.venue_fills, VenueFill("e3", "resting", 1))),
            Violation("resting", "fill_missing", "execution e3 is not in order_events"),
            id="a fill the floor did not record",
        ),
        pytest.param(
            _with(states=(*CLEAN.states, StateRow("filled", "filled", 3, "e2"))),
            Violation("filled", "fill_twice", "execution e2 is in order_events 2 times"),
            id="a fill recorded twice",
        ),
        pytest.param(
            _with(venue_orders=(*CLEAN.venue_orders, VenueOrder("nobody-sent-this", 7, "Submitted"))),
            Violation("nobody-sent-this", "unledgered_order", "venue permId 7: no accepted order entry"),
            id="an order at the venue without its ledger entry",
        ),
        pytest.param(
            _with(venue_orders=(*CLEAN.venue_orders[:2], VenueOrder("cancelled", 3, "Submitted"))),
            Violation("cancel-1", "cancel_ignored", "its target cancelled is still Submitted at the venue"),
            id="a cancel accepted and never carried out",
        ),
    ],
)
def test_each_loss_or_duplicate_is_named_with_its_command(records: Records, expected: Violation) -> None:
    assert expected in check(records)
