"""`floor up`, `floor status` and `floor down` as a user runs them, in subprocesses."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from temporalio.service import RPCError

from config.ports import free_port, port_is_free
from config.settings import FloorSettings
from floor.provision import PAPER_ACCOUNT
from floor.stack import FloorState, ProcessRow
from ledger.checkpoints import CHECKPOINTS_FILE, read_checkpoints
from temporal.client import connect as temporal_connect
from tests.helpers import eventually
from tests.observability.scrape import families, scrape
from workflows.order_lifecycle import HistoryQuery, OrderLifecycle

FLOOR = [sys.executable, "-m", "floor.cli"]


@pytest.fixture
def floor_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {
        **os.environ,
        "FLOOR_VAR_DIR": str(tmp_path / "var"),
        "FLOOR_PG_PORT": str(free_port()),
        "FLOOR_KAFKA_PORT": str(free_port()),
        "FLOOR_TEMPORAL_PORT": str(free_port()),
        "FLOOR_TEMPORAL_UI_PORT": str(free_port()),
        "FLOOR_API_PORT": str(free_port()),
        "FLOOR_VENUE_PORT": str(free_port()),
        "FLOOR_VENUE_CONTROL_PORT": str(free_port()),
        "IB_PORT": str(free_port()),
        "IB_STANDBY_PORT": str(free_port()),
        "FLOOR_HOTPATH_HEALTH_PORT": str(free_port()),
        "FLOOR_WORKER_HEALTH_PORT": str(free_port()),
        "FLOOR_BRIDGE_HEALTH_PORT": str(free_port()),
        "COLUMNS": "200",
    }
    yield env
    subprocess.run([*FLOOR, "down"], env=env, capture_output=True, timeout=60)


async def _run(env: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, [*FLOOR, *command], env=env, capture_output=True, text=True, timeout=120
    )


async def test_up_status_second_up_and_down(floor_env: dict[str, str], tmp_path: Path) -> None:
    var_dir = Path(floor_env["FLOOR_VAR_DIR"])
    out = (tmp_path / "up.out").open("w+")
    up = await asyncio.to_thread(
        subprocess.Popen, [*FLOOR, "up"], env=floor_env, stdout=out, stderr=subprocess.STDOUT
    )
    try:
        def started() -> FloorState | None:
            assert up.poll() is None, f"floor up exited: {Path(out.name).read_text()}"
            return FloorState.load(var_dir)

        state = await eventually(started, timeout=120)
        assert state.supervisor_pid == up.pid
        assert [p.name for p in state.processes][:3] == ["postgres", "kafka", "temporal"]
        printed = await eventually(lambda: "Ctrl-C" in Path(out.name).read_text()
                                   and Path(out.name).read_text())
        assert "Temporal UI" in printed and floor_env["FLOOR_TEMPORAL_UI_PORT"] in printed
        api = f"http://localhost:{floor_env['FLOOR_API_PORT']}"
        assert f"{api}/v1/commands" in printed and printed.count("healthy") >= 3
        assert f"{api}/graphql" in printed and f"127.0.0.1:{floor_env['FLOOR_API_PORT']}" not in printed

        status = await _run(floor_env, "status")
        assert status.returncode == 0
        assert status.stdout.count("healthy") == len(state.processes)
        await _every_process_serves_metrics(floor_env, printed)

        again = await _run(floor_env, "up")
        assert again.returncode == 1
        assert "already running" in again.stdout and str(up.pid) in again.stdout

        await _trade_end_to_end(floor_env, state)
        await _killed_hot_path_comes_back(floor_env, state)

        up.send_signal(signal.SIGINT)  # what Ctrl-C does
        assert up.wait(timeout=60) == 0
        assert FloorState.load(var_dir) is None
        # The hot path signed the ledger's head as it stopped, outside the database.
        checkpoints = [line.checkpoint for line in read_checkpoints(var_dir / CHECKPOINTS_FILE)]
        assert checkpoints and checkpoints[-1] is not None and checkpoints[-1].seq > 1
        for row in state.processes:
            assert port_is_free(row.host, row.port), f"{row.name} still listening after Ctrl-C"
    finally:
        if up.poll() is None:
            up.kill()


async def _every_process_serves_metrics(env: dict[str, str], printed: str) -> None:
    """The API, the hot path, the worker and the bridge each serve Prometheus text at the
    address `floor up` printed."""
    for port in ("FLOOR_API_PORT", "FLOOR_HOTPATH_HEALTH_PORT", "FLOOR_WORKER_HEALTH_PORT",
                 "FLOOR_BRIDGE_HEALTH_PORT"):  # fmt: skip
        assert f":{env[port]}/metrics" in printed
        found = families(await scrape(f"http://localhost:{env[port]}/metrics"))
        assert any(name.startswith(("floor_", "temporal_")) for name in found), (port, sorted(found))


async def _trade_end_to_end(env: dict[str, str], state: FloorState) -> None:
    """What a trader does first: a key, a signed order, then the fill everywhere it should be."""
    made = await _run(env, "keys", "new", "alpha", "--accounts", PAPER_ACCOUNT)
    assert made.returncode == 0, made.stdout + made.stderr
    submitted = await _run(
        env, "order", "submit", "--agent", "alpha", "--account", PAPER_ACCOUNT, "--symbol", "AAPL",
        "--side", "BUY", "--type", "MKT", "--p", "0.55", "--b", "1.5", "--stop", "150",
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    command_id = json.loads(submitted.stdout)["command_id"]

    # As an operator inspecting the database: the superuser, whose password `floor up` made.
    settings = FloorSettings(var_dir=Path(env["FLOOR_VAR_DIR"]), pg_port=int(env["FLOOR_PG_PORT"]))
    conn = await asyncpg.connect(settings.embedded_database_url)
    try:
        async def filled() -> asyncpg.Record | None:
            return await conn.fetchrow(
                "SELECT kind, filled_qty FROM order_events WHERE command_id = $1 AND kind = 'filled'",
                command_id,
            )

        row = await eventually(filled, timeout=30)
        # The default paper profile caps a trade at $50,000: a Kelly-sized AAPL buy fills > 0
        # shares and never more than that notional allows.
        assert 0 < row["filled_qty"] <= 50_000 // 150
        accepted = await conn.fetchval(
            "SELECT count(*) FROM ledger_entries WHERE command_id = $1 AND decision = 'accepted'",
            command_id,
        )
        assert accepted == 1
        # Every floor process is connected as its own least-privilege role; nothing else is
        # connected but this inspection (the superuser is for set-up only).
        users = {
            r["usename"]
            for r in await conn.fetch(
                "SELECT DISTINCT usename FROM pg_stat_activity"
                " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
            )
        }
        assert users == {"floor_hotpath", "floor_api", "floor_worker"}, users
    finally:
        await conn.close()

    verified = await _run(env, "ledger", "verify")
    assert verified.returncode == 0 and "intact" in verified.stdout, verified.stdout

    client = await temporal_connect(f"127.0.0.1:{env['FLOOR_TEMPORAL_PORT']}")

    async def lifecycle_state() -> str | None:
        try:
            view = await client.get_workflow_handle(command_id).query(
                OrderLifecycle.history, HistoryQuery()
            )
        except RPCError:
            return None
        return view.state.value if view.state.value == "Filled" else None

    assert await eventually(lifecycle_state, timeout=30) == "Filled"


async def _killed_hot_path_comes_back(env: dict[str, str], state: FloorState) -> None:
    """The kernel kills the hot path (kill -9): the supervisor starts it again, records why, and
    `floor status` says so."""
    var_dir = Path(env["FLOOR_VAR_DIR"])
    [killed] = [row.pid for row in state.processes if row.name == "hotpath"]
    assert killed is not None
    os.killpg(killed, signal.SIGKILL)

    def restarted() -> ProcessRow | None:
        now = FloorState.load(var_dir)
        row = next(r for r in now.processes if r.name == "hotpath") if now else None
        return row if row is not None and row.restarts == 1 and row.pid != killed else None

    row = await eventually(restarted, timeout=30)
    assert row.last_exit is not None and row.last_exit.signal == signal.SIGKILL

    async def healthy_again() -> str | None:
        status = await _run(env, "status")
        [line] = [line for line in status.stdout.splitlines() if "hotpath" in line]
        return line if "healthy" in line else None

    line = await eventually(healthy_again, timeout=90, interval=1.0)
    assert str(row.pid) in line and "killed by SIGKILL" in line
    assert " 1 " in line, line  # the restarts column

    settings = FloorSettings(var_dir=var_dir, pg_port=int(env["FLOOR_PG_PORT"]))
    conn = await asyncpg.connect(settings.embedded_database_url)
    try:
        event = await eventually(
            lambda: conn.fetchrow(
                "SELECT severity, detail FROM ops_events WHERE source = 'supervisor'"
                " AND kind = 'supervisor.restarted' AND detail->>'service' = 'hotpath'"
            ),
            timeout=10,
        )
    finally:
        await conn.close()
    detail = json.loads(event["detail"])
    assert event["severity"] == "warning" and detail["signal"] == "SIGKILL" and detail["pid"] == row.pid
    assert detail["log_tail"], "the end of the dead hot path's log"


def test_up_with_a_taken_port_names_the_service_and_stops_the_rest(floor_env: dict[str, str]) -> None:
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", int(floor_env["FLOOR_KAFKA_PORT"])))
        holder.listen()
        result = subprocess.run([*FLOOR, "up"], env=floor_env, capture_output=True, text=True,
                                timeout=120)
    assert result.returncode == 1
    assert "kafka" in result.stdout and "already in use" in result.stdout
    assert "FLOOR_KAFKA_PORT" in result.stdout
    assert port_is_free("127.0.0.1", int(floor_env["FLOOR_PG_PORT"])), "postgres left running"


def test_status_when_not_running_says_how_to_start(floor_env: dict[str, str]) -> None:
    result = subprocess.run([*FLOOR, "status"], env=floor_env, capture_output=True, text=True)
    assert result.returncode == 1
    assert "make up" in result.stdout
