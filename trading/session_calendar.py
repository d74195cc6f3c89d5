"""When a DAY order must be gone: the close of the trading session it belongs to.

US equities by default: the session closes at 16:00 America/New_York, Monday to Friday. An
order accepted after the close (or on a weekend) belongs to the next session. Exchange
holidays and half days are not modelled: on those days the order is cancelled at the regular
close time, later than the exchange would, and the broker's own DAY expiry still applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class SessionCalendar:
    tz: str = "America/New_York"
    close: time = time(16, 0)

    def close_after(self, ts: datetime) -> datetime:
        """The first session close at or after ``ts`` (UTC)."""
        zone = ZoneInfo(self.tz)
        local = ts.astimezone(zone)
        day = local.date()
        while True:
            candidate = datetime.combine(day, self.close, tzinfo=zone)
            if day.weekday() < 5 and candidate >= local:
                return candidate.astimezone(UTC)
            day += timedelta(days=1)
