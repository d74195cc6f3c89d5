"""A whole floor of its own for the paper loop's tests (Postgres, Tansu, the paper venue and
its gateways, the hot path under a watching supervisor: :class:`tests.chaos.floor.ChaosFloor`),
announced in its state file as ``floor up`` announces a running floor, so ``floor paper-loop``
uses it rather than starting another. The loop's trades are this floor's alone: the audit and
``floor ledger verify`` read a ledger no other suite writes to."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from floor.stack import FloorState, ProcessRow
from tests.chaos.floor import ChaosFloor

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def loop_floor() -> AsyncIterator[ChaosFloor]:
    (ROOT / "var").mkdir(exist_ok=True)
    var_dir = Path(tempfile.mkdtemp(prefix="paper-loop-", dir=ROOT / "var"))
    floor = await ChaosFloor.start(var_dir)
    try:
        await floor.start_hotpath()
        rows = tuple(
            ProcessRow(name, "", service.pid, floor.settings.host, 0)
            for name, service in floor.services.items()
        )
        FloorState(os.getpid(), time.time(), rows, {}).save(floor.settings.var_dir)
        yield floor
    finally:
        await floor.close()
        shutil.rmtree(var_dir, ignore_errors=True)
