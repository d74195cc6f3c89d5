"""What the venue pushes to its gateways unsolicited: order updates, fills, market data,
account changes and control instructions addressed to one gateway (see
:mod:`paper.venue.messages` for the units and the rules every message on this connection keeps;
the codec carries these beside its requests and replies)."""

from __future__ import annotations

from dataclasses import dataclass

from paper.venue.messages import (
    AccountSnapshot,
    CommissionReport,
    DepthSnapshot,
    Execution,
    LevelChange,
    OrderUpdate,
    Position,
    Print,
    Tick,
)


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """An order changed. Sent to every connected gateway (they all serve the account)."""

    update: OrderUpdate


@dataclass(frozen=True, slots=True)
class ExecutionEvent:
    """A fill; always directly followed by its :class:`CommissionEvent` and by an
    :class:`OrderEvent` with the new filled/remaining. Sent to every gateway."""

    execution: Execution


@dataclass(frozen=True, slots=True)
class CommissionEvent:
    report: CommissionReport


@dataclass(frozen=True, slots=True)
class TickEvent:
    """L1 changed (coalesced: at most one per symbol per venue flush). Subscribers only."""

    tick: Tick


@dataclass(frozen=True, slots=True)
class TradeEvent:
    """Prints of one symbol since the last flush, in order, never coalesced (each one counts
    for volume). Sent to the gateways subscribed to the symbol's L1, before its
    :class:`TickEvent`."""

    symbol: str
    prints: tuple[Print, ...]


@dataclass(frozen=True, slots=True)
class DepthEvent:
    """Book changes of one symbol, in order, not coalesced. Subscribers only.

    ``time_ns`` is the venue's wall-clock time when the batch was sent (for lag figures).
    """

    symbol: str
    changes: tuple[LevelChange, ...]
    time_ns: int


@dataclass(frozen=True, slots=True)
class PositionEvent:
    position: Position


@dataclass(frozen=True, slots=True)
class AccountEvent:
    """Account values after a fill (TWS itself updates them every few minutes; poll
    :meth:`VenueClient.account_values` for marks between fills)."""

    snapshot: AccountSnapshot


@dataclass(frozen=True, slots=True)
class DropClients:
    """Control: close every API client connection of this gateway now."""

    gateway: str


@dataclass(frozen=True, slots=True)
class FreezeGateway:
    """Control: keep client sockets open but send and read nothing for ``seconds``."""

    gateway: str
    seconds: float


@dataclass(frozen=True, slots=True)
class LoseUpstream:
    """Control: the gateway loses IB for ``seconds``, as IB Gateway does when its own link
    drops: 1100 to its clients, then 1101 (their market data is gone: ``data_lost``) or 1102
    (kept). The client connections stay open; orders still reach the venue."""

    gateway: str
    seconds: float
    data_lost: bool


@dataclass(frozen=True, slots=True)
class KillGateway:
    """Control: exit the gateway process at once (as ``kill -9`` would)."""

    gateway: str


@dataclass(frozen=True, slots=True)
class VenueReset:
    """The venue was reset to ``seed``: all orders, fills and positions are gone; book
    subscriptions stay and new snapshots follow as :class:`DepthSnapshotEvent`."""

    seed: int
    time_ns: int


@dataclass(frozen=True, slots=True)
class DepthSnapshotEvent:
    """A fresh full book for a subscribed symbol (after reset); replaces the gateway's copy."""

    snapshot: DepthSnapshot


VenueEvent = (
    OrderEvent
    | ExecutionEvent
    | CommissionEvent
    | TickEvent
    | TradeEvent
    | DepthEvent
    | DepthSnapshotEvent
    | PositionEvent
    | AccountEvent
    | DropClients
    | FreezeGateway
    | KillGateway
    | LoseUpstream
    | VenueReset
)
