"""A floor of its own for each chaos scenario (:class:`tests.chaos.floor.ChaosFloor`), hot path
running. A failed scenario's logs are kept under ``tests/artifacts/chaos/<test>/``."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Generator
from pathlib import Path

import pytest

from tests.chaos.floor import ChaosFloor

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts" / "chaos"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        item.stash.setdefault(_FAILED, True)
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture
async def chaos(request: pytest.FixtureRequest) -> AsyncIterator[ChaosFloor]:
    (ROOT / "var").mkdir(exist_ok=True)
    name = request.node.name[:60]
    var_dir = Path(tempfile.mkdtemp(prefix="chaos-", dir=ROOT / "var"))
    floor = await ChaosFloor.start(var_dir)
    try:
        await floor.start_hotpath()
        yield floor
    finally:
        await floor.close()
        if request.node.stash.get(_FAILED, False):
            kept = ARTIFACTS / name
            shutil.rmtree(kept, ignore_errors=True)
            shutil.copytree(floor.settings.log_dir, kept, dirs_exist_ok=True)
        shutil.rmtree(var_dir, ignore_errors=True)
