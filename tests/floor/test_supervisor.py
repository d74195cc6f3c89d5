from __future__ import annotations

import signal
import socket
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest

from config.ports import FREE_PORTS_FROM, free_port, port_is_free
from config.processes import ServiceSpec, tcp_probe
from config.settings import FloorSettings
from floor.supervisor import ServiceFailed, Supervisor
from tests.helpers import eventually


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


LISTENER = (
    "import socket,sys,signal;"
    "s=socket.socket();s.bind(('127.0.0.1',int(sys.argv[1])));s.listen();"
    "print('listening',flush=True);signal.pause()"
)


def test_service_is_started_and_stopped_with_its_children(tmp_path: Path) -> None:
    port = free_port()
    sup = Supervisor(tmp_path)
    spec = ServiceSpec("echo", [*_python(LISTENER), str(port)], f"127.0.0.1:{port}",
                       tcp_probe("127.0.0.1", port), ports=(("127.0.0.1", port),))
    service = sup.start(spec)
    assert service.alive()
    assert not port_is_free("127.0.0.1", port)
    sup.stop_all()
    assert not service.alive()
    assert port_is_free("127.0.0.1", port)
    assert "--- starting" in (tmp_path / "echo.log").read_text()


def test_port_already_taken_names_the_service_and_the_port(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        spec = ServiceSpec("kafka", _python("pass"), f"127.0.0.1:{port}", tcp_probe("127.0.0.1", port),
                           ports=(("127.0.0.1", port),), hint="set FLOOR_KAFKA_PORT")
        with pytest.raises(ServiceFailed) as err:
            Supervisor(tmp_path).start(spec)
    assert err.value.service == "kafka"
    assert f"port {port}" in err.value.reason
    assert "FLOOR_KAFKA_PORT" in str(err.value)


def test_service_that_dies_reports_the_end_of_its_log(tmp_path: Path) -> None:
    spec = ServiceSpec("broken", _python("import sys; print('bad config: no key'); sys.exit(3)"),
                       "nowhere", lambda: False)
    with pytest.raises(ServiceFailed) as err:
        Supervisor(tmp_path).start(spec)
    assert "exited with code 3" in err.value.reason
    assert "bad config: no key" in err.value.log_tail


def test_service_that_never_answers_times_out_and_is_stopped(tmp_path: Path) -> None:
    sup = Supervisor(tmp_path)
    spec = ServiceSpec("mute", _python("import signal; signal.pause()"), "nowhere", lambda: False,
                       ready_timeout=0.5)
    with pytest.raises(ServiceFailed) as err:
        sup.start(spec)
    assert "not ready after" in err.value.reason
    process = sup.running[-1].process
    sup.stop_all()
    assert process.poll() is not None


def test_missing_binary_says_what_to_do(tmp_path: Path) -> None:
    spec = ServiceSpec("ghost", [str(tmp_path / "no-such-binary")], "nowhere", lambda: True)
    with pytest.raises(ServiceFailed) as err:
        Supervisor(tmp_path).start(spec)
    assert "cannot run" in err.value.reason
    assert "make install" in err.value.hint


def test_log_probe_ignores_lines_from_an_earlier_start(tmp_path: Path) -> None:
    from config.processes import log_probe

    log = tmp_path / "worker.log"
    log.write_text("--- starting 2026-01-01 worker\nworker polling\n")
    sup = Supervisor(tmp_path)
    probe = log_probe(log, "worker polling")
    assert probe(), "the earlier start's line is there"
    spec = ServiceSpec("worker", _python("import signal; signal.pause()"), "nowhere", probe,
                       ready_timeout=0.5)
    with pytest.raises(ServiceFailed, match="not ready"):
        sup.start(spec)
    sup.stop_all()
    assert not probe(), "a new start must not be satisfied by the old line"


def test_floor_down_stops_children_of_a_killed_supervisor_promptly(tmp_path: Path) -> None:
    """The supervisor itself dies (kill -9); its children must still stop at once on request."""
    import os
    import signal
    import subprocess
    import time

    from floor.supervisor import stop_process_group

    port = free_port()
    script = (
        "import sys; from pathlib import Path;"
        "from floor.supervisor import Supervisor; from config.processes import ServiceSpec, tcp_probe;"
        f"sup = Supervisor(Path({str(tmp_path)!r}));"
        f"svc = sup.start(ServiceSpec('echo', {[*_python(LISTENER), str(port)]!r}, 'x',"
        f" tcp_probe('127.0.0.1', {port})));"
        "print(svc.pid, flush=True); import signal; signal.pause()"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    started = time.monotonic()
    stop_process_group(child)
    assert time.monotonic() - started < 5, "waited for a timeout instead of seeing the exit"
    assert port_is_free("127.0.0.1", port)
    try:
        os.kill(child, 0)
        state = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0]
        assert state == "Z"
    except ProcessLookupError:
        pass


def test_free_ports_lie_below_the_ephemeral_range_and_are_never_handed_out_twice() -> None:
    """An outgoing connection takes its local port from the ephemeral range; a service's port
    taken from there could be gone before the service binds it ("already in use")."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = [free_port() for _ in range(300)]
    assert len(set(ports)) == len(ports)
    assert all(FREE_PORTS_FROM <= p < low for p in ports)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports[-1]))  # free indeed


# --- restarts ---------------------------------------------------------------------------------

FLAKY = (
    "import os,socket,sys,signal;"
    "flag=sys.argv[2];"
    "os.path.exists(flag) and sys.exit(print('bad config: no key',flush=True) or 3);"
    "open(flag,'w').close();"
    "s=socket.socket();s.bind(('127.0.0.1',int(sys.argv[1])));s.listen();"
    "print('listening',flush=True);signal.pause()"
)
"""Up the first time; every later start dies at once (exit 3), as a process whose configuration
broke while it ran."""


def test_restart_back_off_doubles_within_the_window_and_the_limit_counts_only_it() -> None:
    from floor.restart_policy import RestartPolicy

    policy = RestartPolicy(backoff_initial_s=0.2, backoff_max_s=5.0, limit=5, window_s=60.0)
    restarts: list[float] = []
    delays = []
    for now in range(7):
        delays.append(policy.delay(restarts, now))
        restarts.append(now)
    assert delays == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    assert policy.exhausted([0, 1, 2, 3, 4], 5) and not policy.exhausted([0, 1, 2, 3], 5)
    # A minute later the old restarts no longer count: the next one is quick again.
    assert not policy.exhausted([0, 1, 2, 3, 4], 64.5) and policy.delay([0, 1, 2, 3, 4], 64.5) == 0.2


async def test_a_killed_service_is_restarted_and_its_exit_recorded(
    tmp_path: Path, floor_settings: FloorSettings, postgres_url: str
) -> None:
    from tests.fixtures.supervised import kill_and_await_restart, ops_events, watched_supervisor

    port = free_port()
    name = f"echo-{uuid.uuid4().hex[:8]}"
    with watched_supervisor(floor_settings, tmp_path) as sup:
        first = sup.start(ServiceSpec(name, [*_python(LISTENER), str(port)], f"127.0.0.1:{port}",
                                      tcp_probe("127.0.0.1", port), ports=(("127.0.0.1", port),)))
        killed = first.pid
        service = await kill_and_await_restart(sup, name, timeout=20)
        assert service is first and service.pid != killed and service.restarts == 1
        assert service.last_exit is not None and service.last_exit.signal == signal.SIGKILL
        assert service.last_exit.describe() == "killed by SIGKILL"
        assert tcp_probe("127.0.0.1", port)()

        conn = await asyncpg.connect(postgres_url)
        try:
            [event] = await eventually(lambda: ops_events(conn, "supervisor.restarted", name), timeout=10)
        finally:
            await conn.close()
    assert event["severity"] == "warning" and event["signal"] == "SIGKILL" and event["exit_code"] is None
    assert event["restarts"] == 1 and event["pid"] == service.pid
    assert "listening" in event["log_tail"]


async def test_a_service_that_keeps_dying_is_given_up_with_the_reason(
    tmp_path: Path, floor_settings: FloorSettings, postgres_url: str
) -> None:
    from floor.restart_policy import RestartPolicy
    from tests.fixtures.supervised import kill, ops_events, service_named, watched_supervisor

    port = free_port()
    name = f"flaky-{uuid.uuid4().hex[:8]}"
    policy = RestartPolicy(backoff_initial_s=0.01, backoff_max_s=0.1, limit=3, window_s=60.0)
    gave_up: list[ServiceFailed] = []
    with watched_supervisor(floor_settings, tmp_path, policy, gave_up=gave_up) as sup:
        sup.start(ServiceSpec(name, [*_python(FLAKY), str(port), str(tmp_path / "started")], "x",
                              tcp_probe("127.0.0.1", port), ports=(("127.0.0.1", port),)))
        kill(service_named(sup, name))
        failure = await eventually(lambda: gave_up and gave_up[0], timeout=20)
        service = service_named(sup, name)
        assert service.restarts == 3 and not service.alive()
        assert service.last_exit is not None and service.last_exit.code == 3

        conn = await asyncpg.connect(postgres_url)
        try:
            [given_up] = await eventually(lambda: ops_events(conn, "supervisor.gave_up", name), timeout=10)
            restarted = await ops_events(conn, "supervisor.restarted", name)
        finally:
            await conn.close()
    assert failure.service == name
    assert "exited with code 3" in failure.reason and "after 3 restarts within 60 s" in failure.reason
    assert "bad config: no key" in failure.log_tail and "floor again" in failure.hint
    assert given_up["severity"] == "critical" and given_up["exit_code"] == 3
    assert given_up["reason"] == failure.reason
    # The first restart was for the kill, the next two for the deaths at start.
    assert [e["signal"] for e in restarted] == ["SIGKILL", None, None]
    assert [e["exit_code"] for e in restarted] == [None, 3, 3]


async def test_a_floor_whose_process_keeps_dying_stops_with_the_reason(
    tmp_path: Path, floor_settings: FloorSettings, postgres_url: str
) -> None:
    """What `floor up` does once started (floor.stack.run_floor): a process past the restart
    limit stops the whole floor, and the caller gets the reason, as for a failed start."""
    import asyncio
    import os
    import threading
    import time

    from floor.stack import FloorState, ProcessRow, run_floor
    from tests.fixtures.supervised import kill, ops_events, service_named

    settings = floor_settings.model_copy(update={
        "var_dir": tmp_path / "var",
        "cli_database_url": floor_settings.role_url("cli"),
        "supervisor_backoff_initial_s": 0.01,
        "supervisor_restart_limit": 2,
    })  # fmt: skip
    steady_port, flaky_port = free_port(), free_port()
    name = f"flaky-{uuid.uuid4().hex[:8]}"
    sup = Supervisor(settings.log_dir)
    rows = []
    for spec in (
        ServiceSpec("steady", [*_python(LISTENER), str(steady_port)], "x",
                    tcp_probe("127.0.0.1", steady_port), ports=(("127.0.0.1", steady_port),)),
        ServiceSpec(name, [*_python(FLAKY), str(flaky_port), str(tmp_path / "started")], "x",
                    tcp_probe("127.0.0.1", flaky_port), ports=(("127.0.0.1", flaky_port),)),
    ):  # fmt: skip
        service = sup.start(spec)
        rows.append(ProcessRow(spec.name, spec.address, service.pid, "127.0.0.1", spec.ports[0][1]))
    state = FloorState(os.getpid(), time.time(), tuple(rows), {})
    state.save(settings.var_dir)
    said: list[str] = []
    kill(service_named(sup, name))

    failure = await asyncio.wait_for(
        asyncio.to_thread(run_floor, settings, sup, state, threading.Event(), said.append), timeout=30
    )
    assert failure is not None and failure.service == name
    assert "exited with code 3" in failure.reason and "after 2 restarts" in failure.reason
    assert not sup.running and port_is_free("127.0.0.1", steady_port), "the rest of the floor is stopped"
    assert FloorState.load(settings.var_dir) is None
    assert any(f"{name} killed by SIGKILL" in line for line in said)
    conn = await asyncpg.connect(postgres_url)
    try:
        [event] = await ops_events(conn, "supervisor.gave_up", name)
    finally:
        await conn.close()
    assert event["severity"] == "critical" and event["reason"] == failure.reason


def test_floor_state_keeps_restarts_and_last_exit_and_reads_an_older_file(tmp_path: Path) -> None:
    import json
    import time

    from floor.restart_policy import Exit
    from floor.stack import STATE_FILE, FloorState, ProcessRow

    row = ProcessRow("hotpath", "x", 123, "127.0.0.1", 1, restarts=2, last_exit=Exit.of(-9, time.time()))
    FloorState(1, 2.0, (row, ProcessRow("kafka", "y", None, "h", 2)), {}).save(tmp_path)
    loaded = FloorState.load(tmp_path)
    assert loaded is not None and loaded.processes[0] == row and loaded.processes[1].last_exit is None
    # A state file written before restarts were counted.
    raw = json.loads((tmp_path / STATE_FILE).read_text())
    for process in raw["processes"]:
        del process["restarts"], process["last_exit"]
    (tmp_path / STATE_FILE).write_text(json.dumps(raw))
    older = FloorState.load(tmp_path)
    assert older is not None and older.processes[0].restarts == 0 and older.processes[0].last_exit is None
