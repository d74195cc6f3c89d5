"""Round-trip trades counted from fills: a position opened from flat and taken back to flat.

The paper loop counts its progress from the broker's executions as the floor stored them
(``order_events`` rows with an execution), never from what an agent believes it did: an agent
that thinks it exited while its exit never filled has not completed a trade.

A position is one agent's in one symbol on one account (each agent trades its own positions);
the floor's protective stops on it (:func:`root_command_id`) count as that agent's fills.
A fill that takes the position from non-zero to zero closes one round trip; a fill that flips it
through zero (long to short in one execution) closes one and opens the next.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PositionKey = tuple[str, str, str]
"""(account, agent id, symbol)."""


def root_command_id(command_id: str) -> str:
    """The agent's command an order of the floor's own stands for. The floor's protective stop
    on a filled entry is ``<entry id>.stop-<n>`` and a stop it places again after losing one is
    ``<lost stop's id>.restop<n>`` (:mod:`hotpath.protective_stops`, :mod:`hotpath.stop_guard`),
    both signed by the floor's control key: the position they close is the one the command
    before the first dot opened or was closing. Any other id is its own root."""
    return command_id.split(".", 1)[0]


@dataclass(frozen=True)
class FillRow:
    """One execution as the floor stored it (an ``order_events`` row with an ``exec_id``)."""

    event_id: int
    """The row's id: stored order, so folding by it replays the executions in order."""
    account: str
    agent_id: str
    symbol: str
    side: str
    """``BUY`` or ``SELL``."""
    qty: int


@dataclass
class RoundTripCounter:
    """Folds fills, in stored order, into positions and the round trips closed after ``since``.

    Fed every fill of the agents in question (earlier ones too, so a position open when the
    count starts is known), it counts only the round trips whose closing fill came after
    ``since`` (the newest row id when the loop started)."""

    since: int
    positions: dict[PositionKey, int] = field(default_factory=dict)
    closed: int = 0
    last_event_id: int = 0
    """The newest row folded: the next read asks for rows after it."""

    def add(self, fill: FillRow) -> None:
        if fill.event_id <= self.last_event_id:
            return  # already folded (a re-read overlapping the previous one)
        self.last_event_id = fill.event_id
        key = (fill.account, fill.agent_id, fill.symbol)
        before = self.positions.get(key, 0)
        after = before + (fill.qty if fill.side == "BUY" else -fill.qty)
        if after:
            self.positions[key] = after
        else:
            self.positions.pop(key, None)
        closes = before != 0 and (after == 0 or (before > 0) != (after > 0))
        if closes and fill.event_id > self.since:
            self.closed += 1

    def add_all(self, fills: list[FillRow]) -> None:
        for fill in fills:
            self.add(fill)

    def open_positions(self) -> dict[PositionKey, int]:
        """Positions not flat now (after the last fill folded)."""
        return dict(self.positions)
