"""The worker refuses a start whose quotes connection would take the hot path's client id."""

from __future__ import annotations

import pytest

from temporal import worker


async def test_the_worker_refuses_the_hot_paths_client_id(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IB_CLIENT_ID", str(worker.QUOTES_CLIENT_ID))
    with pytest.raises(SystemExit) as exited:
        await worker.main([])  # refused before it connects to anything
    assert exited.value.code == 2
    refusal = f"--ib-client-id {worker.QUOTES_CLIENT_ID} is the hot path's IB_CLIENT_ID"
    assert refusal in capsys.readouterr().err
