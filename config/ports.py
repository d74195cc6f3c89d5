"""Free local ports, for tests and benchmarks that start every service on its own port."""

from __future__ import annotations

import random
import socket
from pathlib import Path


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


FREE_PORTS_FROM = 20_000
"""Free ports are picked from here up to the start of the OS's ephemeral range."""
_handed_out: set[int] = set()


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (for tests: every service on its own free port).

    Picked below the OS's ephemeral range, never twice in one process. A port the kernel hands
    out for ``bind(0)`` comes from the ephemeral range, which is also where every outgoing
    connection takes its local port: one could take it between this call and the service's
    own bind, and the service would fail to start with "already in use".
    """
    rng = random.SystemRandom()
    top = _ephemeral_start()
    for _ in range(200 if top > FREE_PORTS_FROM else 0):
        port = rng.randrange(FREE_PORTS_FROM, top)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        chosen: int = sock.getsockname()[1]
    _handed_out.add(chosen)
    return chosen
