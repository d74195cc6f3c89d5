"""The session calendar lives in :mod:`trading.session_calendar` (pure: intake checks an
expiry cancel against it too); this name stays for the worker's and the bridge's imports."""

from trading.session_calendar import SessionCalendar

__all__ = ["SessionCalendar"]
