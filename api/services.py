"""What the API process opens once and every request uses: the database pool, the command door,
the hub, the WebAuthn ceremonies, the trading desk and the settings (``app.state.services``)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from api.desk import Desk
from api.door import Door
from api.hub import Hub
from api.webauthn_ceremonies import Ceremonies
from config.settings import FloorSettings
from ledger.db import Db
from observability.telemetry import Telemetry


@dataclass(frozen=True)
class Services:
    db: Db
    """The API's own database role (``floor_api``)."""
    door: Door
    hub: Hub
    settings: FloorSettings
    ceremonies: Ceremonies | None = None
    """The WebAuthn ceremonies (sign-in, arming, step-up); None in a process that serves no traders."""
    desk: Desk | None = None
    """The trader's desk (stage, execute, cancel, breaker); None in a process that serves no traders."""
    telemetry: Telemetry | None = None
    """The process's metrics (``GET /metrics``); None where nothing keeps them."""


ServicesFactory = Callable[[], AbstractAsyncContextManager[Services]]
