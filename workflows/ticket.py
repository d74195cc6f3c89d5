"""What the Temporal UI shows of a floor workflow, so it reads like an order ticket.

Three kinds of text, all pure functions of the workflow's state (so deterministic):

- **current details** (``workflow.set_current_details``, markdown, a few lines): the state,
  filled of total, the average price and the last event, kept up to date as the workflow runs.
  The UI shows them on the workflow's page; ``temporal workflow describe`` and the
  ``__temporal_workflow_metadata`` query return them.
- **summaries** of timers and activities (the ``summary`` / ``timeout_summary`` arguments): one
  line each in the timeline, e.g. ``DAY expiry at the 16:00 ET close``, ``linger 5 min for late
  fills``, ``slice 7 of 100: BUY 100 SYM @ 20.05``.
- **static summary and details** of a start (``static_summary`` / ``static_details`` of
  ``start_workflow``): what the workflow is about, shown in the workflow list.

User metadata travels beside a command, not in it: a timer or activity with a summary is the
same command to replay as one without, so adding or changing these texts needs no patch (the
recorded histories in tests/workflows replay on this code).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

EXCHANGE_TZ = "America/New_York"
"""The zone session closes are stated in (:class:`trading.session_calendar.SessionCalendar`)."""


def price(value: Decimal | None) -> str:
    """A price as the ledger holds it, without trailing zeros past the cent."""
    if value is None:
        return "-"
    cents = value.quantize(Decimal("0.01"))
    return str(cents if cents == value else value.normalize())


def avg_price(value: Decimal | None) -> str:
    """An average fill price, to a hundredth of a cent."""
    return price(value.quantize(Decimal("0.0001")) if value is not None else None)


def utc_time(ts: datetime) -> str:
    return f"{ts.astimezone(UTC):%H:%M:%S} UTC"


def et_close(ts: datetime) -> str:
    """``16:00 ET close`` for a session close given in UTC."""
    return f"{ts.astimezone(ZoneInfo(EXCHANGE_TZ)):%H:%M} ET close"


def duration(seconds: float) -> str:
    """``5 min``, ``90 s``, ``2 h``: whole units where they fit."""
    whole = round(seconds)
    if whole >= 3600 and whole % 3600 == 0:
        return f"{whole // 3600} h"
    if whole >= 60 and whole % 60 == 0:
        return f"{whole // 60} min"
    if whole == seconds:
        return f"{whole} s"
    return f"{seconds:.1f} s"


# Order lifecycle


def expiry_timer(expires_at: datetime) -> str:
    return f"DAY expiry at the {et_close(expires_at)}"


def cancel_retry_timer(due: datetime, attempts: int) -> str:
    return f"expiry cancel sent {attempts}x: send again at {utc_time(due)} if still open"


def linger_timer(seconds: float) -> str:
    return f"linger {duration(seconds)} for late fills"


def lifecycle_details(
    *,
    state: str,
    side: str,
    symbol: str,
    account: str,
    agent_id: str,
    tif: str,
    quantity: int,
    filled: int,
    avg: Decimal | None,
    last: str | None,
    expires_at: datetime | None,
    anomalies: int,
) -> str:
    lines = [f"**{state}** · {filled} of {quantity} filled · avg {avg_price(avg)}"]
    order = f"{side} {quantity} {symbol} · {account} · {agent_id} · {tif}"
    if expires_at is not None:
        order += f" until the {et_close(expires_at)}"
    lines.append(order)
    if last is not None:
        lines.append(f"last: {last}")
    if anomalies:
        lines.append(f"{anomalies} anomal{'y' if anomalies == 1 else 'ies'}: see the `history` query")
    return "\n".join(lines)


def order_event_line(kind: str, ts: datetime, fill: tuple[int, Decimal] | None, note: str | None) -> str:
    """``partially_filled 100 @ 50.1 at 15:00:03 UTC (note)``."""
    text = kind
    if fill is not None:
        text += f" {fill[0]} @ {price(fill[1])}"
    text += f" at {utc_time(ts)}"
    if note:
        text += f" ({note})"
    return text


def lifecycle_start(side: str, quantity: int, symbol: str, account: str, agent_id: str) -> str:
    return f"{side} {quantity} {symbol} · {account} · {agent_id}"


def lifecycle_start_details(command_id: str, tif: str, parent_id: str | None) -> str:
    lines = [f"order `{command_id}` · {tif}"]
    if parent_id is not None:
        lines.append(f"slice of iceberg `{parent_id}`")
    return "\n".join(lines)


# Iceberg


def slices_planned(sent: int, unsent: int, display: int) -> int:
    """Slices sent so far plus those the unsent quantity still needs at the display size: the
    ``of N`` in ``slice 7 of N``. An estimate that moves as slices are jittered, sized down or
    amended; a remainder of under half a display size (jitter) is counted with the others."""
    if unsent <= 0 or display <= 0:
        return sent
    return sent + max(1, (2 * unsent + display) // (2 * display))


def slice_label(slice_no: int, planned: int) -> str:
    return f"slice {slice_no} of {max(planned, slice_no)}"


def slice_order(label: str, side: str, qty: int, symbol: str, limit: Decimal) -> str:
    return f"{label}: {side} {qty} {symbol} @ {price(limit)}"


def iceberg_details(
    *,
    status: str,
    side: str,
    symbol: str,
    account: str,
    total: int,
    display: int,
    limit: Decimal | None,
    filled: int,
    avg: Decimal | None,
    working: str | None,
    expires_at: datetime | None,
    last: str | None,
) -> str:
    lines = [f"**{status}** · {filled} of {total} filled · avg {avg_price(avg)}"]
    parent = f"{side} {total} {symbol} display {display}"
    parent += f" limit {price(limit)}" if limit is not None else " at the touch"
    parent += f" · {account}"
    if expires_at is not None:
        parent += f" · until the {et_close(expires_at)}"
    lines.append(parent)
    if working is not None:
        lines.append(f"working: {working}")
    if last is not None:
        lines.append(f"last: {last}")
    return "\n".join(lines)


def iceberg_start(
    side: str, total: int, symbol: str, display: int, limit: Decimal | None, account: str
) -> str:
    limit_text = f" limit {price(limit)}" if limit is not None else ""
    return f"Iceberg {side} {total} {symbol} display {display}{limit_text} · {account}"


def iceberg_start_details(command_id: str, author: str, slicer: str, tif: str) -> str:
    return f"parent `{command_id}` by {author} · {tif}\nslices signed by {slicer}"


# Broker session


def session_details(
    *,
    account: str,
    connected: bool,
    gateway: str,
    since: datetime | None,
    epoch: int,
    last: str | None,
) -> str:
    state = "Connected" if connected else "Disconnected"
    head = f"**{state}**"
    if connected and gateway:
        head += f" to {gateway}"
    if since is not None:
        head += f" since {utc_time(since)}"
    lines = [head, f"account {account} · last reconciled epoch {epoch}"]
    if last is not None:
        lines.append(f"last: {last}")
    return "\n".join(lines)


def reconciled(missed_fills: int, unknown_at_broker: int, anomalies: int) -> str:
    if not (missed_fills or unknown_at_broker or anomalies):
        return "reconciled in sync"
    return (
        f"reconciled: {missed_fills} missed fills, {unknown_at_broker} unknown at the broker,"
        f" {anomalies} anomalies"
    )


def session_start(account: str) -> str:
    return f"Broker session {account}"
