"""Which accounts `floor up` gives the paper risk profile: the paper Schwab API's accounts that
FLOOR_BROKER_ACCOUNTS routes to Schwab, and no other."""

from __future__ import annotations

from pathlib import Path

from config.settings import FloorSettings
from floor.paper_schwab import paper_schwab_accounts


def test_only_the_emulators_accounts_routed_to_schwab_get_a_paper_profile(tmp_path: Path) -> None:
    def accounts(broker_accounts: str, schwab_accounts: str = "SCHW0001") -> list[str]:
        settings = FloorSettings(
            var_dir=tmp_path, broker_accounts=broker_accounts, schwab_accounts=schwab_accounts
        )
        return paper_schwab_accounts(settings)

    assert accounts("DU1234567") == []
    assert accounts("DU1234567,SCHW0001=schwab") == ["SCHW0001"]
    assert accounts("SCHW0001") == [], "routed to IBKR (the default broker): not Schwab's"
    assert accounts("DU1234567,REAL9999=schwab") == [], "a real Schwab account is not the emulator's"
    assert accounts("SCHW0001=schwab,SCHW0002=schwab", "SCHW0001,SCHW0002") == ["SCHW0001", "SCHW0002"]
