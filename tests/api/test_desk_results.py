"""The hot path's decision on an executed order maps to one named result, and each result to
one HTTP status for REST's Execute."""

from __future__ import annotations

import pytest

from api import desk_results as d
from api.orders import invalid_status
from tests.factories import order_event
from trading.order_events import EventKind


@pytest.mark.parametrize(
    ("kind", "reason", "result"),
    [
        (EventKind.ACCEPTED, None, d.Executed),
        (EventKind.REJECTED, "breaker.halted", d.BreakerHalted),
        (EventKind.REJECTED, "risk.max_dollar_risk", d.RiskRejected),
        (EventKind.REJECTED, "risk.stop_wrong_side", d.RiskRejected),
        (EventKind.REJECTED, "sizing.no_price", d.RiskRejected),
        (EventKind.REJECTED, "unknown_symbol", d.Invalid),
    ],
)
def test_the_hot_paths_decision_names_the_result(kind: EventKind, reason: str | None, result: type) -> None:
    outcome = d.outcome_result(order_event("desk-1", 1, kind, reason=reason), "stg-1", "arming")
    assert isinstance(outcome, result)
    if isinstance(outcome, d.Executed):
        assert (outcome.state, outcome.ceremony, outcome.staged_id) == (d.ACCEPTED, "arming", "stg-1")
    else:
        assert outcome.reason == reason


@pytest.mark.parametrize(
    ("reason", "status"),
    [
        (d.NO_SESSION, 401),
        (d.NOT_STAGED, 404),
        (d.ALREADY_EXECUTED, 409),
        ("webauthn.wrong_order", 403),
        ("sentry.trader_unauthorised", 403),
        ("bus_unavailable", 503),
        ("ledger_unavailable", 503),
        (d.TICKET_INVALID, 422),
    ],
)
def test_an_invalid_executes_status_says_whose_move_it_is(reason: str, status: int) -> None:
    assert invalid_status(d.Invalid(reason, "")) == status
