"""The demo brain as a supervised process (``floor up --demo`` starts it through this)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from decimal import Decimal

from config.processes import ServiceSpec, child_env, log_probe
from config.settings import FloorSettings

READY_LINE = "brain trading"
"""What the brain logs once it reads the market and can publish: the supervisor's ready probe."""


def brain_spec(
    settings: FloorSettings,
    *,
    seed: int = 0,
    caps_binding_share: Decimal = Decimal("0.2"),
    symbols: Sequence[str] | None = None,
) -> ServiceSpec:
    """The demo agents trading the paper account (``symbols``: the hot path's by default). It
    connects as its own role (``floor_brain``), which may read the key registry (to verify the
    hot path's records) and write security events, which is all the brain does with the database."""
    name = "brain"
    extra = ["--symbols", ",".join(symbols)] if symbols else []
    return ServiceSpec(
        name=name,
        argv=[
            sys.executable,
            "-m",
            "brain",
            "--seed",
            str(seed),
            "--caps-binding-share",
            str(caps_binding_share),
            *extra,
        ],
        address="demo agents -> agent.commands",
        probe=log_probe(settings.log_dir / f"{name}.log", READY_LINE),
        env=child_env(settings, "brain"),
        ready_timeout=60.0,
        hint="the brain needs Kafka, Postgres and its agents' keys in var/keys (`floor brain` makes them)",
    )
