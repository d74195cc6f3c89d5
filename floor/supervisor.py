"""Start child processes in order, each only once the one before answers, and stop them all.

``floor up`` and the test fixtures share this code, so the tests exercise exactly the start-up
path a user runs. Every child gets its own process group (Ctrl-C in the terminal reaches only
the supervisor, which then stops the children in reverse order) and its own log file under
``var/log/``; a failure names the service, shows the last lines of that log and says what to do.
Once :meth:`Supervisor.watch` is called, a child that dies is started again (floor/watchdog.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from config.ports import port_is_free
from config.processes import START_MARKER, ServiceSpec
from floor.restart_policy import Exit, RestartPolicy

if TYPE_CHECKING:
    from floor.supervisor_events import OpsEventLog
    from floor.watchdog import Watchdog

POLL_INTERVAL = 0.05
STOP_TIMEOUT = 10.0
LOG_TAIL_LINES = 20
PORT_RELEASE_TIMEOUT = 10.0
"""How long a restart waits for the dead process's ports to be free again."""


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


class Stopping(Exception):
    """The supervisor is stopping: a start it was waiting on is abandoned."""


@dataclass
class RunningService:
    spec: ServiceSpec
    process: subprocess.Popen[bytes]
    """The current process: a restart replaces it here, so a holder of this object sees it."""
    log_path: Path
    ready: bool = False
    """Its probe answered since it was last (re)started."""
    restarts: int = 0
    last_exit: Exit | None = None
    restarted_at: list[float] = field(default_factory=list)
    """When each restart began (monotonic), for the restart policy's window."""

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None


@dataclass
class Supervisor:
    log_dir: Path
    running: list[RunningService] = field(default_factory=list)
    watchdog: Watchdog | None = field(default=None, init=False, repr=False)

    def start(self, spec: ServiceSpec) -> RunningService:
        """Start one service and return once its probe answers; raise ServiceFailed otherwise."""
        for host, port in spec.ports:
            if not port_is_free(host, port):
                raise ServiceFailed(
                    spec.name,
                    f"port {port} on {host} is already in use",
                    spec.hint or "stop the process holding it or choose another port in the settings",
                )
        service = RunningService(spec, *self._spawn(spec))
        self.running.append(service)
        self.await_ready(service)
        return service

    def watch(
        self,
        policy: RestartPolicy,
        events: OpsEventLog | None = None,
        *,
        on_change: Callable[[RunningService], None] | None = None,
        on_give_up: Callable[[ServiceFailed], None] | None = None,
        after_restart: Mapping[str, Callable[[], None]] | None = None,
    ) -> Watchdog:
        """From now on, restart every service of this supervisor that dies, under ``policy``
        (see :class:`floor.watchdog.Watchdog`); :meth:`stop_all` ends the watch first."""
        from floor.watchdog import Watchdog

        if self.watchdog is not None:
            raise RuntimeError("this supervisor is already watching its services")
        self.watchdog = Watchdog(self, policy, events, on_change, on_give_up, after_restart or {})
        self.watchdog.start()
        return self.watchdog

    def respawn(self, service: RunningService, cancel: threading.Event | None = None) -> None:
        """Start a dead service's process again with its spec, into the same
        :class:`RunningService`, once its ports are free; does not wait for it to be ready."""
        spec = service.spec
        deadline = time.monotonic() + PORT_RELEASE_TIMEOUT
        for host, port in spec.ports:
            while not port_is_free(host, port):
                if time.monotonic() > deadline:
                    raise ServiceFailed(
                        spec.name,
                        f"port {port} on {host} is still in use after it died",
                        "stop the process holding it, then start the floor again",
                    )
                if cancel is not None and cancel.wait(POLL_INTERVAL):
                    raise Stopping(spec.name)
                if cancel is None:
                    time.sleep(POLL_INTERVAL)
        service.ready = False
        service.process, service.log_path = self._spawn(spec)

    def _spawn(self, spec: ServiceSpec) -> tuple[subprocess.Popen[bytes], Path]:
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
        return process, log_path

    def await_ready(self, service: RunningService, cancel: threading.Event | None = None) -> None:
        """Return once the service's probe answers; raise ServiceFailed if it dies first or is
        not ready in time, :class:`Stopping` once ``cancel`` is set."""
        spec = service.spec
        deadline = time.monotonic() + spec.ready_timeout
        while True:
            if not service.alive():
                raise ServiceFailed(
                    spec.name,
                    f"{Exit.of(service.process.returncode).describe()} before it was ready",
                    spec.hint or f"read {service.log_path}",
                    tail(service.log_path),
                )
            if spec.probe():
                service.ready = True
                return
            if time.monotonic() > deadline:
                raise ServiceFailed(
                    spec.name,
                    f"not ready after {spec.ready_timeout:.0f} s at {spec.address}",
                    spec.hint or f"read {service.log_path}",
                    tail(service.log_path),
                )
            if cancel is None:
                time.sleep(POLL_INTERVAL)
            elif cancel.wait(POLL_INTERVAL):
                raise Stopping(spec.name)

    def stop_all(self) -> None:
        """Stop watching (a service stopped here is not restarted), then stop every started
        service, newest first: SIGTERM to its group, then SIGKILL."""
        if self.watchdog is not None:
            self.watchdog.stop()
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
