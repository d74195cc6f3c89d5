"""Start child processes in order, each only once the one before answers, and stop them all.

``floor up`` and the test fixtures share this code, so the tests exercise exactly the start-up
path a user runs. Every child gets its own process group (Ctrl-C in the terminal reaches only
the supervisor, which then stops the children in reverse order) and its own log file under
``var/log/``; a failure names the service, shows the last lines of that log and says what to do.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from config.ports import port_is_free
from config.processes import START_MARKER, ServiceSpec

POLL_INTERVAL = 0.05
STOP_TIMEOUT = 10.0
LOG_TAIL_LINES = 20


class ServiceFailed(RuntimeError):
    """A service did not come up: which one, why, the end of its log and what to do."""

    def __init__(self, service: str, reason: str, hint: str, log_tail: str = "") -> None:
        self.service = service
        self.reason = reason
        self.hint = hint
        self.log_tail = log_tail
        message = f"{service}: {reason}\n  what to do: {hint}"
        if log_tail:
            message += f"\n  last lines of its log:\n{_indent(log_tail)}"
        super().__init__(message)


@dataclass
class RunningService:
    spec: ServiceSpec
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None


@dataclass
class Supervisor:
    log_dir: Path
    running: list[RunningService] = field(default_factory=list)

    def start(self, spec: ServiceSpec) -> RunningService:
        """Start one service and return once its probe answers; raise ServiceFailed otherwise."""
        for host, port in spec.ports:
            if not port_is_free(host, port):
                raise ServiceFailed(
                    spec.name,
                    f"port {port} on {host} is already in use",
                    spec.hint or "stop the process holding it or choose another port in the settings",
                )
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{spec.name}.log"
        env = dict(os.environ)
        for key, value in (spec.env or {}).items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        with log_path.open("ab") as log:
            log.write(f"{START_MARKER} {time.strftime('%Y-%m-%d %H:%M:%S')} {spec.name}\n".encode())
            log.flush()
            try:
                process = subprocess.Popen(
                    list(spec.argv),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                    user=spec.user,
                )
            except OSError as exc:
                raise ServiceFailed(
                    spec.name,
                    f"cannot run {spec.argv[0]}: {exc.strerror}",
                    "run `make install` to (re)install the floor's packages",
                ) from exc
        service = RunningService(spec, process, log_path)
        self.running.append(service)
        self._await_ready(service)
        return service

    def _await_ready(self, service: RunningService) -> None:
        spec = service.spec
        deadline = time.monotonic() + spec.ready_timeout
        while True:
            if not service.alive():
                raise ServiceFailed(
                    spec.name,
                    f"exited with code {service.process.returncode} before it was ready",
                    spec.hint or f"read {service.log_path}",
                    tail(service.log_path),
                )
            if spec.probe():
                return
            if time.monotonic() > deadline:
                raise ServiceFailed(
                    spec.name,
                    f"not ready after {spec.ready_timeout:.0f} s at {spec.address}",
                    spec.hint or f"read {service.log_path}",
                    tail(service.log_path),
                )
            time.sleep(POLL_INTERVAL)

    def stop_all(self) -> None:
        """Stop every started service, newest first: SIGTERM to its group, then SIGKILL."""
        while self.running:
            stop_process_group(self.running.pop().process.pid)


def stop_process_group(pid: int, timeout: float = STOP_TIMEOUT) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _group_alive(pid):
            return
        time.sleep(POLL_INTERVAL)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while _group_alive(pid) and time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL)


def _group_alive(pgid: int) -> bool:
    """True while any process of the group is running (zombies do not count).

    A group whose supervisor was killed has no parent left to reap it, and where nothing reaps
    orphans its zombies linger: ``killpg(pgid, 0)`` would call it alive for ever.
    """
    try:
        os.waitpid(pgid, os.WNOHANG)  # reap the leader if it is our child
    except ChildProcessError:
        pass
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines())
