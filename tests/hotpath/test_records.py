"""Wire records the hot path writes for others: session epochs, depth books, the control port."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from brokers.base import DepthLevel, DepthSnapshot, SessionChange, SessionChanged, SessionRole
from hotpath import depth, sessions
from hotpath.control import READ_ONLY, ControlServer
from temporal.session_records import decode as decode_session


def change(kind: SessionChange, epoch: int = 3) -> SessionChanged:
    return SessionChanged(
        kind, "127.0.0.1:4012", SessionRole.STANDBY, "heartbeat missed", epoch,
        datetime(2026, 11, 24, 14, 30, tzinfo=UTC), previous_gateway="127.0.0.1:4002",
    )  # fmt: skip


def test_an_epoch_change_is_one_record_per_account_that_the_bridge_decodes() -> None:
    out = sessions.records(change(SessionChange.FAILED_OVER), ["DU1", "DU2"])
    assert [key for key, _ in out] == [b"DU1", b"DU2"]
    account, decoded = decode_session(out[0][1])
    assert account == "DU1" and decoded.change.value == "failed_over" and decoded.epoch == 3
    assert decoded.previous_gateway == "127.0.0.1:4002"
    # The same change published again carries the same event id (the workflow dedupes on it).
    assert sessions.records(change(SessionChange.FAILED_OVER), ["DU1"])[0] == out[0]
    assert out[0][1] != out[1][1]


def test_standby_and_close_are_not_epochs() -> None:
    for kind in (SessionChange.STANDBY_UP, SessionChange.STANDBY_DOWN, SessionChange.CLOSED):
        assert sessions.records(change(kind), ["DU1"]) == []


def test_a_depth_record_keeps_prices_exact_and_best_first() -> None:
    book = DepthSnapshot(
        "AAPL",
        bids=(DepthLevel(Decimal("229.86"), 300), DepthLevel(Decimal("229.85"), 100)),
        asks=(DepthLevel(Decimal("229.87"), 200),),
        time=datetime(2026, 11, 24, 5, 0, tzinfo=UTC),
        recv_ns=1,
    )
    record = json.loads(depth.encode(book))
    assert record == {
        "v": 1,
        "symbol": "AAPL",
        "ts": "2026-11-24T05:00:00+00:00",
        "bids": [{"price": "229.86", "size": 300}, {"price": "229.85", "size": 100}],
        "asks": [{"price": "229.87", "size": 200}],
    }


async def test_the_control_port_answers_known_routes_and_names_the_rest() -> None:
    async def ok() -> tuple[int, dict[str, Any]]:
        return 200, {"status": "ok"}

    server = ControlServer({("GET", "/health"): ok})
    port = await server.start("127.0.0.1", 0)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            assert (await client.get("/health")).json() == {"status": "ok"}
            assert (await client.post("/health")).status_code == 405
            assert (await client.get("/nothing")).status_code == 404
    finally:
        await server.close()


async def test_the_control_port_is_read_only_whatever_the_method_or_path() -> None:
    async def ok() -> tuple[int, dict[str, Any]]:
        return 200, {"status": "ok"}

    with pytest.raises(ValueError, match="read-only"):
        ControlServer({("POST", "/breaker/arm"): ok})
    server = ControlServer({("GET", "/health"): ok})
    port = await server.start("127.0.0.1", 0)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for method, path in (("POST", "/breaker/arm"), ("PUT", "/health"), ("DELETE", "/anything")):
                answer = await client.request(method, path)
                assert (answer.status_code, answer.json()) == (405, {"error": READ_ONLY})
    finally:
        await server.close()
