"""The paper loop's checks after the trading: the audit of every trade from the ledger and the
venue's own records, the report, and ``floor ledger verify``'s verification of the ledger.

Nothing here trusts the brain or the hot path's counters: the records are read again from the
ledger (the CLI's read role) and from the venue's control API.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from config.settings import FloorSettings
from floor.paper_loop_records import read_loop_records
from floor.paper_loop_report import summary_lines, write_report
from floor.paper_loop_run import LoopResult
from ledger.checkpoints import CHECKPOINTS_FILE, read_checkpoints
from ledger.verify import VerifyReport, verify_ledger
from trading.paper_loop_audit import AuditResult, audit


@dataclass
class AuditOutcome:
    summary: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    """One line per violation, naming the trade by its command id."""
    report_path: Path | None = None
    problem: str = ""
    """Why the audit could not run (the loop then fails: an unchecked loop proves nothing)."""
    ledger: VerifyReport | None = None
    result: AuditResult | None = None
    """The audit's own result (``trading.paper_loop_audit.AuditResult``), for tests."""


async def audit_loop(
    settings: FloorSettings,
    loop: LoopResult,
    agents: Sequence[str],
    notes: Sequence[str] = (),
    signal_mids: Mapping[str, Decimal] | None = None,
) -> AuditOutcome:
    """Check every trade the loop's agents made since the loop started; ``notes`` go on the
    report's page (the venue clock's speed, the ledger's verification)."""
    outcome = AuditOutcome()
    try:
        records = await read_loop_records(
            settings, since_seq=loop.marks.ledger_seq, agents=tuple(agents), signal_mids=signal_mids
        )
    except Exception as exc:  # noqa: BLE001 - any failure to read is reported, never skipped
        outcome.problem = f"reading the ledger and the venue's records failed: {type(exc).__name__}: {exc}"
        return outcome
    result = audit(records)
    outcome.result = result
    outcome.summary = summary_lines(result)
    outcome.violations = [f"{v.command_id}: {v.rule}: {v.detail}" for v in result.violations]
    try:
        outcome.report_path = write_report(result, settings.var_dir / "reports", notes=tuple(notes))
    except OSError as exc:
        outcome.problem = f"the report could not be written under {settings.var_dir / 'reports'}: {exc}"
    return outcome


async def verify(settings: FloorSettings) -> VerifyReport:
    """What ``floor ledger verify`` checks: chain, signatures, and the floor's signed checkpoints."""
    # Read before the ledger is: no checkpoint is newer than what verify will see.
    lines = read_checkpoints(settings.var_dir / CHECKPOINTS_FILE)
    return await verify_ledger(settings.role_url("cli"), checkpoints=lines)
