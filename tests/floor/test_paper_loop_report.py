"""The paper-loop report renders: summary, violations named, plots embedded, every trade."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from floor.paper_loop_report import summary_lines, write_report
from tests.factories import enter_command
from tests.trading.test_paper_loop_audit import ACCOUNT, Book, round_trip
from trading.paper_loop_audit import AuditInput, audit

PNG = b"\x89PNG\r\n\x1a\n"


def test_the_report_names_the_violating_trade_and_embeds_its_plots(tmp_path: Path) -> None:
    book = Book()
    for exit in ("101", "99", "100.25"):
        round_trip(book, entry="100", exit=exit)
    bad = enter_command("alpha", account=ACCOUNT, limit=Decimal("100"), stop=Decimal("95"))
    book.fill(bad, (book.sized(bad, Decimal("100")), "104"))
    result = audit(book.records())

    path = write_report(
        result, tmp_path / "reports", notes=["venue clock x10"], now=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    )

    assert path == tmp_path / "reports" / "paper-loop-20260102T030405Z.html"
    page = path.read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 4
    assert all(base64.b64decode(i).startswith(PNG) for i in images)
    assert f"<code>{bad.command_id}</code> <b>audit.dollar_risk_over_limit</b>" in page
    assert page.count('<tr class="bad">') == 1 and page.count("<tr>") == 1 + 3  # head + clean rows
    assert "venue clock x10" in page and "1 violations" in page
    assert "violations: 1 (1 audit.dollar_risk_over_limit)" in summary_lines(result)


def test_an_empty_run_renders(tmp_path: Path) -> None:
    result = audit(AuditInput((), (), ()))

    page = write_report(result, tmp_path).read_text()

    assert "Every trade within the risk profile in force" in page
    assert summary_lines(result)[0] == "trades: 0 (none)"
