"""Restart a supervised process that dies, with back-off and a limit; past the limit, give up.

One thread polls the supervisor's services (every 50 ms: a death is noticed well inside the
first back-off) and revives the dead ones one at a time, in start order, so that when several
die together (Postgres, then what needs it) each comes back after the ones it needs. A revival:
note the exit (code or signal, when), stop whatever is left of the dead process's group (a
killed postmaster's backends keep its shared memory, and a new one refuses to start beside
them), wait the back-off, start the process again with its spec and wait for its probe. A
restart that does not come up counts as another death. Each restart is an ops event
``supervisor.restarted`` (warning); past the policy's limit, ``supervisor.gave_up`` (critical)
and ``on_give_up`` with the reason, and the watch ends: ``floor up`` then stops the floor, as
it does when a service fails to start.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from floor.restart_policy import Exit, RestartPolicy
from floor.supervisor import (
    POLL_INTERVAL,
    RunningService,
    ServiceFailed,
    Stopping,
    Supervisor,
    stop_process_group,
    tail,
)
from floor.supervisor_events import GAVE_UP, RESTARTED

if TYPE_CHECKING:
    from floor.supervisor_events import OpsEventLog

JOIN_TIMEOUT = 30.0
log = logging.getLogger(__name__)


class Watchdog:
    def __init__(
        self,
        supervisor: Supervisor,
        policy: RestartPolicy,
        events: OpsEventLog | None,
        on_change: Callable[[RunningService], None] | None,
        on_give_up: Callable[[ServiceFailed], None] | None,
        after_restart: Mapping[str, Callable[[], None]],
    ) -> None:
        """``after_restart`` maps a service name to what must follow its restart (the
        embedded Kafka keeps nothing on disk: its topics are made again)."""
        self.supervisor = supervisor
        self.policy = policy
        self._events = events
        self._on_change = on_change
        self._on_give_up = on_give_up
        self._after_restart = after_restart
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="supervisor-watchdog", daemon=True)
        self.gave_up: ServiceFailed | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """End the watch; a restart under way is abandoned (its process is left to stop_all)."""
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(JOIN_TIMEOUT)

    def _run(self) -> None:
        try:
            while not self._stop.wait(POLL_INTERVAL):
                for service in list(self.supervisor.running):
                    if self._stop.is_set():
                        return
                    if service.alive() or service not in self.supervisor.running:
                        continue
                    if not self._revive(service):
                        return
        except Stopping:
            return
        except Exception:
            # A bug here must not leave the floor running unwatched without a word.
            log.exception("the supervisor's watchdog failed")
            self._give_up(
                ServiceFailed("supervisor", "its watchdog failed (see the log)", "start the floor again")
            )

    def _revive(self, service: RunningService) -> bool:
        """Restart ``service`` until it is up; False once given up (or stopping)."""
        exit = Exit.of(service.process.returncode)
        why = exit.describe()
        while True:
            service.last_exit = exit
            service.ready = False
            log_tail = tail(service.log_path)
            stop_process_group(service.pid)  # what is left of its group
            self._changed(service)
            now = time.monotonic()
            if self.policy.exhausted(service.restarted_at, now):
                self._give_up(self._gave_up(service, why, log_tail))
                return False
            delay = self.policy.delay(service.restarted_at, now)
            if self._stop.wait(delay):
                return False
            service.restarted_at.append(time.monotonic())
            service.restarts += 1
            try:
                self.supervisor.respawn(service, self._stop)
            except ServiceFailed as exc:
                # Not even started (its port is held, its binary gone): as good as dead at once.
                why = exc.reason
                continue
            detail = {**_detail(service, exit, log_tail), "reason": why, "backoff_s": delay}
            self._record(RESTARTED, "warning", detail)
            self._changed(service)
            try:
                self.supervisor.await_ready(service, self._stop)
            except ServiceFailed as exc:
                if service.alive():  # not ready in time: stopped, and counted as a death
                    stop_process_group(service.pid)
                    service.process.wait()
                exit = Exit.of(service.process.returncode)
                why = exc.reason
                continue
            self._changed(service)
            self._run_after_restart(service)
            return True

    def _gave_up(self, service: RunningService, why: str, log_tail: str) -> ServiceFailed:
        recent = self.policy.recent(service.restarted_at, time.monotonic())
        reason = (
            f"{why}, after {recent} restart{'s' if recent != 1 else ''} within "
            f"{self.policy.window_s:.0f} s; not restarted again"
        )
        failure = ServiceFailed(
            service.spec.name,
            reason,
            f"read {service.log_path}, fix what stops it, then start the floor again",
            log_tail,
        )
        detail = _detail(service, service.last_exit, log_tail)
        self._record(GAVE_UP, "critical", {**detail, "reason": reason, "limit": self.policy.limit,
                                           "window_s": self.policy.window_s})  # fmt: skip
        return failure

    def _give_up(self, failure: ServiceFailed) -> None:
        self.gave_up = failure
        self._stop.set()
        if self._on_give_up is not None:
            self._on_give_up(failure)

    def _run_after_restart(self, service: RunningService) -> None:
        hook = self._after_restart.get(service.spec.name)
        if hook is None:
            return
        try:
            hook()
        except Exception as exc:  # noqa: BLE001 - recorded; the service itself is up
            log.exception("after restarting %s", service.spec.name)
            self._record(
                "supervisor.after_restart_failed",
                "critical",
                {"service": service.spec.name, "error": f"{type(exc).__name__}: {exc}"},
            )

    def _changed(self, service: RunningService) -> None:
        if self._on_change is None:
            return
        try:
            self._on_change(service)
        except Exception:
            # Showing the change failed (the state file, say): the restart itself goes on.
            log.exception("reporting a change of %s", service.spec.name)

    def _record(self, kind: str, severity: str, detail: Mapping[str, Any]) -> None:
        log.warning("%s %s", kind, dict(detail))
        if self._events is not None:
            self._events.record(kind, severity, detail)


def _detail(service: RunningService, exit: Exit | None, log_tail: str) -> dict[str, Any]:
    return {
        "service": service.spec.name,
        "pid": service.pid,
        "exit_code": exit.code if exit else None,
        "signal": exit.signal_name if exit else None,
        "exited_at": exit.iso() if exit else None,
        "restarts": service.restarts,
        "log_tail": log_tail,
    }
