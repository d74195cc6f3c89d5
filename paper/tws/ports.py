"""What a gateway's client connections and its hub need from each other, as protocols.

:class:`Client` is one API client's connection as the hub (and the market-data fan-out) sees
it: who it is, whether its handshake is done, and where its frames go. :class:`SessionHost`
is the hub as a connection sees it: admission, the gateway-wide freeze, client ids and request
handling. :mod:`paper.tws.session` implements the first and :mod:`paper.tws.hub` the second;
neither imports the other (``paper.gateway`` wires them).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from paper.tws.incoming import ClientMessage


class Client(Protocol):
    @property
    def client_id(self) -> int:
        """The id the client gave in startApi (-1 before)."""
        ...

    @property
    def server_version(self) -> int:
        """The protocol version agreed in the handshake (frames are encoded for it)."""
        ...

    @property
    def ready(self) -> bool:
        """The handshake is done and the connection is open."""
        ...

    @property
    def closed(self) -> bool: ...

    def send(self, frame: bytes) -> None: ...

    def send_many(self, frames: Iterable[bytes]) -> None: ...

    def close(self, *, flush: bool = False) -> None: ...

    def freeze(self, seconds: float) -> None:
        """Keep the socket open but read and write nothing for ``seconds``."""
        ...


class SessionHost(Protocol):
    @property
    def pacing(self) -> bool:
        """Enforce TWS's 50 messages per second per client."""
        ...

    def admits(self, peer: str) -> bool:
        """A client may connect from address ``peer`` (IB Gateway's Trusted IPs)."""
        ...

    def frozen_for(self) -> float:
        """Seconds the gateway stays frozen (0 if it is not): a new connection waits them out."""
        ...

    def attach(self, client: Client) -> None: ...

    def detach(self, client: Client) -> None: ...

    def claim_client_id(self, client: Client) -> bool:
        """Take ``client.client_id`` for ``client``; False if an open connection holds it."""
        ...

    def start_api(self, client: Client) -> None:
        """The handshake is done: greet the client (accounts, next order id, farm notices)."""
        ...

    def handle(self, client: Client, message: ClientMessage) -> None:
        """Serve one decoded request; replies go to ``client``."""
        ...
