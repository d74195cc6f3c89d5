"""broker.sessions record codec and the DAY-order session calendar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from brokers.base import SessionChange as BrokerChange
from brokers.base import SessionChanged, SessionRole
from hotpath.sessions import records as hot_path_records
from temporal import session_records
from trading.reconciliation import ReconcileReport
from trading.session_calendar import SessionCalendar
from workflows.broker_session import Change, SessionChange


def test_session_record_round_trip() -> None:
    change = SessionChange(
        "e1",
        Change.FAILED_OVER,
        "h:2",
        "heartbeat missed",
        3,
        datetime(2026, 11, 24, tzinfo=UTC),
        previous_gateway="h:1",
    )
    assert session_records.decode(session_records.encode("DU1", change)) == ("DU1", change)


def test_the_hot_paths_record_of_a_reconciled_epoch_decodes_with_its_report() -> None:
    at = datetime(2026, 11, 24, 15, tzinfo=UTC)
    report = ReconcileReport(
        "DU1", 4, at, missed_fills=["x1"], unknown_at_broker=["c2"], foreign_orders=["m3"],
        anomalies=["c1: execution x9 of 5 exceeds the 0 left; 5 not recorded"], last_exec_time=at,
    )  # fmt: skip
    event = SessionChanged(BrokerChange.RECONNECTED, "h:1", SessionRole.PRIMARY, "connected", 4, at)
    [(key, raw)] = hot_path_records(event, ["DU1"], {"DU1": report})
    account, change = session_records.decode(raw)
    assert (key, account, change.epoch, change.reconcile) == (b"DU1", "DU1", 4, report)
    [(_, unfinished)] = hot_path_records(event, ["DU1"], None, "reconciliation did not finish: closed")
    _, change = session_records.decode(unfinished)
    assert change.reconcile is None and change.reconcile_error == "reconciliation did not finish: closed"
    # Encoded by the bridge's codec too, the same record.
    assert session_records.decode(session_records.encode("DU1", change)) == ("DU1", change)


def test_a_report_on_another_account_or_epoch_than_its_record_is_refused() -> None:
    import json

    at = datetime(2026, 11, 24, 15, tzinfo=UTC)
    event = SessionChanged(BrokerChange.FAILED_OVER, "h:2", SessionRole.STANDBY, "missed", 5, at)
    [(_, raw)] = hot_path_records(event, ["DU1"], {"DU1": ReconcileReport("DU2", 5, at)})
    with pytest.raises(session_records.SessionRecordError, match="reconcile"):
        session_records.decode(raw)
    record = json.loads(raw)
    record["reconcile"] = {**record["reconcile"], "account": "DU1", "missed_fills": "x1"}
    with pytest.raises(session_records.SessionRecordError, match="missed_fills"):
        session_records.decode(json.dumps(record))


@pytest.mark.parametrize(
    ("patch", "named"),
    [
        ({"change": "standby_up"}, "change"),
        ({"epoch": "3"}, "epoch"),
        ({"ts": "2026-11-24T00:00:00"}, "ts"),
        ({"account": ""}, "account"),
        ({"event_id": None}, "event_id"),
    ],
)
def test_bad_session_record_is_refused_by_name(patch: dict[str, object], named: str) -> None:
    import json

    good = json.loads(
        session_records.encode(
            "DU1",
            SessionChange("e1", Change.CONNECTED, "h:1", "connected", 0, datetime(2026, 11, 24, tzinfo=UTC)),
        )
    )
    with pytest.raises(session_records.SessionRecordError, match=named):
        session_records.decode(json.dumps({**good, **patch}))


def _ny(y: int, m: int, d: int, h: int, mi: int = 0) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime(y, m, d, h, mi, tzinfo=ZoneInfo("America/New_York"))


@pytest.mark.parametrize(
    ("accepted", "close"),
    [
        (_ny(2026, 11, 24, 10), _ny(2026, 11, 24, 16)),  # Tuesday morning: today's close
        (_ny(2026, 11, 24, 16, 1), _ny(2026, 11, 25, 16)),  # after the close: tomorrow's
        (_ny(2026, 11, 27, 17), _ny(2026, 11, 30, 16)),  # Friday evening: Monday's
        (_ny(2026, 3, 6, 17), _ny(2026, 3, 9, 16)),  # across the DST change: still 16:00 local
    ],
)
def test_day_order_expires_at_the_session_close(accepted: datetime, close: datetime) -> None:
    got = SessionCalendar().close_after(accepted.astimezone(UTC))
    assert got == close and got.tzinfo is UTC
    assert got - accepted < timedelta(days=4)
