"""``floor paper-loop``'s verdict: exit 0 only for N trades, no violation, the ledger intact and
the report written; otherwise exit 1 naming each violating trade or what stopped the loop."""

from __future__ import annotations

import io

from rich.console import Console

from floor.paper_loop_audit_step import AuditOutcome
from floor.paper_loop_cmd import report
from floor.paper_loop_run import LoopEnd, LoopMarks, LoopResult
from ledger.verify import BadEntry, VerifyReport

MARKS = LoopMarks(ledger_seq=10, order_event_id=5, started_at=0.0)
INTACT = VerifyReport(entries=40, head_seq=40, first_bad=None)


def verdict(result: LoopResult, outcome: AuditOutcome, trades: int = 3) -> tuple[int, str]:
    out = io.StringIO()
    code = report(result, outcome, trades, Console(file=out, width=200))
    return code, out.getvalue()


def test_a_clean_loop_exits_zero() -> None:
    code, output = verdict(LoopResult(LoopEnd.DONE, 3, MARKS, 9.0, {}), AuditOutcome(ledger=INTACT))
    assert code == 0, output
    assert "3 trades, zero violations" in output


def test_each_violating_trade_is_named_and_the_exit_is_non_zero() -> None:
    outcome = AuditOutcome(
        violations=[
            "cmd-7: audit.dollar_risk_over_limit: 1012.40 > 1000",
            "cmd-9: audit.kelly_mismatch: [sent 12] != 10",
        ],
        ledger=INTACT,
    )
    code, output = verdict(LoopResult(LoopEnd.DONE, 3, MARKS, 9.0, {}), outcome)
    assert code == 1
    assert "VIOLATION cmd-7: audit.dollar_risk_over_limit" in output
    assert "VIOLATION cmd-9: audit.kelly_mismatch: [sent 12] != 10" in output
    assert "zero violations" not in output


def test_a_stalled_loop_a_broken_ledger_or_an_unfinished_audit_exit_non_zero() -> None:
    stalled = LoopResult(
        LoopEnd.STALLED, 1, MARKS, 130.0, {("DU1", "demo-a", "AAPL"): 12}, "no round trip in 120 s"
    )
    code, output = verdict(stalled, AuditOutcome(ledger=INTACT))
    assert code == 1 and "paper_loop.stalled" in output and "demo-a AAPL +12" in output

    broken = VerifyReport(entries=7, head_seq=40, first_bad=BadEntry(8, "signature does not verify"))
    code, output = verdict(LoopResult(LoopEnd.DONE, 3, MARKS, 9.0, {}), AuditOutcome(ledger=broken))
    assert code == 1 and "ledger NOT intact" in output and "signature does not verify" in output

    code, output = verdict(
        LoopResult(LoopEnd.DONE, 3, MARKS, 9.0, {}),
        AuditOutcome(problem="the venue did not answer", ledger=INTACT),
    )
    assert code == 1 and "audit incomplete" in output
