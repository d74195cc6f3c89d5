"""Start a paper venue and one TWS-API gateway for a benchmark, on free ports, and stop them."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from config.ports import free_port
from config.processes import ServiceSpec, tcp_probe
from floor.supervisor import Supervisor
from paper.venue.control_token import authorization, read_token

HOST = "127.0.0.1"


@dataclass(frozen=True)
class BenchStack:
    venue_port: int
    control_port: int
    gateway_port: int
    log_dir: Path

    @property
    def control_headers(self) -> dict[str, str]:
        """The control token the venue made in the log directory, as a request header."""
        return authorization(read_token(self.log_dir / "control.token"))


@contextmanager
def paper_stack(venue_args: Sequence[str] = (), gateway_args: Sequence[str] = ()) -> Iterator[BenchStack]:
    log_dir = Path(tempfile.mkdtemp(prefix="bench-paper-"))
    supervisor = Supervisor(log_dir)
    venue_port, control_port, gateway_port = free_port(), free_port(), free_port()
    try:
        supervisor.start(
            ServiceSpec(
                name="venue",
                argv=[
                    sys.executable,
                    "-m",
                    "paper.venue",
                    "--port",
                    str(venue_port),
                    "--control-port",
                    str(control_port),
                    "--token-file",
                    str(log_dir / "control.token"),
                    "--log-level",
                    "WARNING",
                    *venue_args,
                ],
                address=f"{HOST}:{venue_port}",
                probe=tcp_probe(HOST, venue_port),
            )  # fmt: skip
        )
        supervisor.start(
            ServiceSpec(
                name="gateway",
                argv=[
                    sys.executable,
                    "-m",
                    "paper.gateway",
                    "--port",
                    str(gateway_port),
                    "--venue",
                    f"{HOST}:{venue_port}",
                    "--name",
                    "primary",
                    "--log-level",
                    "WARNING",
                    *gateway_args,
                ],
                address=f"{HOST}:{gateway_port}",
                probe=tcp_probe(HOST, gateway_port),
            )  # fmt: skip
        )
        yield BenchStack(venue_port, control_port, gateway_port, log_dir)
    finally:
        supervisor.stop_all()
