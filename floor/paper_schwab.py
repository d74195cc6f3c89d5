"""Paper trading at "Schwab": `floor up` without a real IB Gateway (``IB_HOST`` unset) points
the Schwab adapter at the paper Schwab API it starts, and gives it a token file.

At Schwab a person logs in once in a browser and the token file that login writes lasts seven
days. The paper emulator accepts any token file written with the app's key and secret
(:func:`paper.schwab_api.tokens.write_token_file`), so `floor up` writes one itself whenever
the file is missing, is another app's, or its login has expired: no browser, no prompt. A file
for real Schwab is never touched: with ``FLOOR_SCHWAB_BASE_URL`` naming anything but the
emulator, the settings are returned as they are.

The emulator places orders at the paper venue for whoever presents the app's key and secret,
and its ``/emulator/v1`` routes can expire logins and drop the streamer. So a paper floor left
on the public default secret gets one of its own instead: made once under ``var/`` (0600, as
the venue's control token is, :func:`paper.venue.control_token.ensure_token`) and handed to the
emulator and the hot path alike. A secret set in ``FLOOR_SCHWAB_APP_SECRET`` is kept.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from config.settings import FloorSettings
from paper.schwab_api.tokens import TokenIssuer, write_token_file
from paper.venue.control_token import ensure_token

PUBLIC_APP_SECRET: str = FloorSettings.model_fields["schwab_app_secret"].default
"""The settings' default secret: printed in this project's source, so it guards nothing."""
RENEW_BEFORE_S = 24 * 3600
"""A paper token file whose login ends within a day is written again (a floor left up for days
would otherwise stop at the seventh)."""


def paper_token_usable(settings: FloorSettings, now: float | None = None) -> bool:
    """Whether the token file is this app's and its refresh token lasts at least another day."""
    path = settings.schwab_token_file
    try:
        token = json.loads(path.read_text())["token"]["refresh_token"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    issuer = TokenIssuer(settings.schwab_app_key, settings.schwab_app_secret)
    return issuer.refresh_valid(str(token), (time.time() if now is None else now) + RENEW_BEFORE_S)


def paper_app_secret_path(settings: FloorSettings) -> Path:
    """Where `floor up` keeps the paper emulator's generated app secret."""
    return settings.var_dir / "schwab" / "app-secret"


def paper_schwab_accounts(settings: FloorSettings) -> list[str]:
    """The paper Schwab API's accounts the floor routes to Schwab (``FLOOR_BROKER_ACCOUNTS``)."""
    served = {a.strip() for a in settings.schwab_accounts.split(",") if a.strip()}
    return [a for a, broker in settings.account_brokers.items() if broker == "schwab" and a in served]


def prepare_paper_schwab(settings: FloorSettings, say: Callable[[str], None]) -> FloorSettings:
    """``settings`` with the Schwab adapter on the paper emulator when the floor trades paper,
    after writing a paper token file if the adapter has no usable one."""
    if settings.ib_host:
        return settings
    if settings.schwab_base_url is None:
        settings = settings.model_copy(update={"schwab_base_url": settings.schwab_paper_url})
    if (settings.schwab_base_url or "").rstrip("/") != settings.schwab_paper_url:
        return settings
    if settings.schwab_app_secret == PUBLIC_APP_SECRET:
        secret = ensure_token(paper_app_secret_path(settings))
        settings = settings.model_copy(update={"schwab_app_secret": secret})
    if not paper_token_usable(settings):
        write_token_file(settings.schwab_token_file, settings.schwab_app_key, settings.schwab_app_secret)
        say(f"wrote a paper Schwab token file at {settings.schwab_token_file}")
    return settings
