"""How the Iceberg workflow (:mod:`workflows.iceberg`) retries its activities and waits out
outages, and the ``workflow.patched`` ids that let histories written by earlier code replay.

A patch id names one change of the commands the workflow issues; it never changes once a
history holds it, and the code paths it guards stay until no such history can run again.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

MAX_CONSECUTIVE_REJECTS = 3

QUOTE_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=2), maximum_attempts=5
)
PUBLISH_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_attempts=10)
"""A publish retries with the same command id, which intake dedupes; a round that runs out is
followed by another after a workflow timer (``PUBLISH_BACKOFF``), without end."""
QUOTE_BACKOFF = (timedelta(seconds=5), timedelta(seconds=60))
"""Workflow timer between quote rounds that ran out of retries: first wait, and the cap as it
doubles."""
QUOTE_OUTAGE_LIMIT = timedelta(minutes=10)
"""No usable quote for this long (a gateway reconnect takes seconds): the parent stops."""
PUBLISH_BACKOFF = (timedelta(seconds=5), timedelta(seconds=60))
"""Workflow timer between publish (order or cancel) rounds that ran out of retries."""

RECHECK_AFTER_WAIT_PATCH = "iceberg-recheck-after-wait"
"""Cancel, pause and the remaining quantity are checked again after each wait before a slice
goes out. Histories written before sent the slice regardless, and replay that way."""
AMEND_FLOOR_PATCH = "iceberg-amend-floor-working-slice"
"""An amend may not take the total below filled plus the working slice's open quantity.
Histories written before accepted such an amend (and pulled the slice), and replay that way."""
LEDGERED_CONTROL_PATCH = "iceberg-control-from-ledger"
"""Direct pause / resume / cancel / amend signals are ignored: control comes as a ledgered
command (the ``control`` signal). Histories written before applied them, and replay that way."""
CONTROL_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_attempts=10)
"""Reading a control from the ledger; a refusal (not ledgered, not for this parent) is final."""
OUTAGE_RETRY_PATCH = "iceberg-retry-activity-outage"
"""A quote, publish or cancel activity that runs out of retries is tried again on a timer.
Histories written before failed the workflow there, and replay that way."""
LEDGER_CHECKED_PATCH = "iceberg-ledger-checked-parent-signed-records"
"""The parent is checked against the ledger before anything else, and slice events are taken
only as signed records (``slice_record``). Histories written before took the input on trust and
unsigned ``slice_event`` signals, and replay that way."""

CHECK_FAILS_RUN_PATCH = "iceberg-checked-pacing-and-expiry-refusal-fails"
"""The parent check also holds the pacing (interval scale, jitter, cancel confirmation timeout)
to the worker's limits and gives the expiry (from the ledger entry; the input's is ignored), and
a refused parent fails the workflow, which frees its id for the genuine start. Histories written
before used the input's expiry and ended such a parent Rejected, and replay that way."""

FRESH_WRITERS_PATCH = "iceberg-writer-keys-reread"
"""Slice records are verified with writer keys re-read when stale or when a record names an
unknown signer (:class:`workflows.signed_events.FreshWriters`), so a writer key revoked while
the parent works stops counting. Histories written before used the keys read at the start."""

PARENT_CHECK_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10), maximum_attempts=30
)
"""A read of the ledger, safe to repeat; a ledger down for minutes ends the parent Rejected
(nothing sent) rather than start it unchecked."""


def failure_cause(exc: ActivityError) -> str:
    """What made an activity fail once its retries ran out, for the parent's notes."""
    return str(exc.cause) if exc.cause is not None else str(exc)
