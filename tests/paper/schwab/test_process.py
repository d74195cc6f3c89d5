"""The emulator as a process: started by `floor up` beside the gateways, and restartable
without losing an order (its orders are the venue's)."""

from __future__ import annotations

import stat
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

from schwab.orders.equities import equity_sell_limit
from schwab.utils import Utils

from config.ports import free_port
from config.settings import FloorSettings
from floor.paper_schwab import (
    PUBLIC_APP_SECRET,
    paper_app_secret_path,
    paper_token_usable,
    prepare_paper_schwab,
)
from floor.stack import floor_process_specs, urls
from paper.schwab_api.tokens import write_token_file
from tests.fixtures.paper import PaperStack
from tests.fixtures.schwab import SchwabApi
from tests.paper.schwab.conftest import schwab_client


def test_floor_up_starts_the_paper_schwab_api_only_in_front_of_the_paper_venue(tmp_path: Path) -> None:
    roles = {
        f"{r}_database_url": "postgresql://floor@db.internal/floor" for r in ("hotpath", "api", "worker")
    }
    paper = FloorSettings.model_validate({"var_dir": tmp_path, **roles})
    names = [spec.name for spec in floor_process_specs(paper)]
    assert names.index("paper-schwab-api") > names.index("paper-venue")
    assert urls(paper)["Schwab API (paper)"] == f"http://127.0.0.1:{paper.schwab_api_port}"
    real = paper.model_copy(update={"ib_host": "ib.internal"})
    assert "paper-schwab-api" not in [spec.name for spec in floor_process_specs(real)]
    assert "Schwab API (paper)" not in urls(real)


async def test_a_restarted_emulator_keeps_its_orders_and_its_ids_keep_increasing(
    private_schwab_api: SchwabApi, paper: PaperStack, tmp_path: Path
) -> None:
    api = private_schwab_api
    account = api.account_hash
    assert api.account_number in (await paper.acontrol("GET", "/status"))["sub_accounts"]
    _, ask = await paper.quote("AMZN")
    high = str((ask * Decimal("1.3")).quantize(Decimal("0.01")))
    client = schwab_client(api, api.new_token_file(tmp_path))
    try:
        placed = await client.place_order(account, equity_sell_limit("AMZN", 1, high))
        assert placed.status_code == 201, placed.text
        order_id = Utils(client, account).extract_order_id(placed)
        api.kill()
        api.restart()
        order = (await client.get_order(order_id, account)).json()
        assert order["status"] == "WORKING" and order["price"] == float(high)
        assert order["orderLegCollection"][0]["instruction"] == "SELL"
        again = await client.place_order(account, equity_sell_limit("AMZN", 1, high))
        assert Utils(client, account).extract_order_id(again) > order_id
        for done in (order_id, Utils(client, account).extract_order_id(again)):
            assert (await client.cancel_order(done, account)).status_code == 200
    finally:
        await client.close_async_session()


def test_floor_up_in_paper_points_schwab_at_the_emulator_with_a_token_file_it_accepts(tmp_path: Path) -> None:
    said: list[str] = []
    paper = FloorSettings(var_dir=tmp_path)
    ready = prepare_paper_schwab(paper, said.append)
    assert ready.schwab_base_url == paper.schwab_paper_url
    assert paper_token_usable(ready) and said == [
        f"wrote a paper Schwab token file at {ready.schwab_token_file}"
    ]
    # The public default secret is replaced by one made for this floor, kept from then on.
    secret_file = paper_app_secret_path(paper)
    assert ready.schwab_app_secret == secret_file.read_text().strip() != PUBLIC_APP_SECRET
    assert len(ready.schwab_app_secret) >= 40 and stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert not paper_token_usable(paper), "the token file is the generated secret's, not the public one's"
    roles = {
        f"{r}_database_url": "postgresql://floor@db.internal/floor" for r in ("hotpath", "api", "worker")
    }
    specs = floor_process_specs(ready.model_copy(update=roles))
    given = {spec.name: (spec.env or {}).get("FLOOR_SCHWAB_APP_SECRET") for spec in specs}
    assert given["paper-schwab-api"] == given["hotpath"] == ready.schwab_app_secret, "both sides have it"
    assert not any(ready.schwab_app_secret in " ".join(spec.argv) for spec in specs), "never in argv"
    written = ready.schwab_token_file.read_text()
    again = prepare_paper_schwab(paper, said.append)
    assert again.schwab_app_secret == ready.schwab_app_secret
    assert ready.schwab_token_file.read_text() == written and len(said) == 1  # still usable: kept
    own = paper.model_copy(update={"schwab_app_secret": "the-desks-own-secret", "var_dir": tmp_path / "own"})
    assert prepare_paper_schwab(own, said.append).schwab_app_secret == "the-desks-own-secret"
    assert not paper_app_secret_path(own).exists()
    said.pop()

    # A login that ends within a day, or another app's file, is written again.
    write_token_file(ready.schwab_token_file, paper.schwab_app_key, ready.schwab_app_secret,
                     login_time=time.time() - 6.5 * 86400)  # fmt: skip
    prepare_paper_schwab(paper, said.append)
    assert paper_token_usable(ready) and len(said) == 2

    real = paper.model_copy(
        update={"schwab_base_url": "https://api.schwabapi.com", "var_dir": tmp_path / "real"}
    )
    assert prepare_paper_schwab(real, said.append) == real and not real.schwab_token_file.exists()
    with_ib = paper.model_copy(update={"ib_host": "ib.internal", "var_dir": tmp_path / "ib"})
    assert prepare_paper_schwab(with_ib, said.append).schwab_base_url is None
    assert not with_ib.schwab_token_file.exists()


def test_the_emulator_will_not_start_on_a_venue_without_its_accounts(paper: PaperStack) -> None:
    settings = paper.settings
    argv = [
        sys.executable, "-m", "paper.schwab_api", "--port", str(free_port()),
        "--venue", f"{settings.host}:{settings.venue_port}", "--accounts", "NOPE0001",
        "--app-key", settings.schwab_app_key, "--app-secret", settings.schwab_app_secret,
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert done.returncode != 0
    assert "the venue has no account NOPE0001: start it with --sub-accounts NOPE0001" in done.stderr
