"""The chaos suite's verdict: what the floor owed, held against the venue's and the ledger's own
records, never against the hot path's counters.

Pure: :func:`check` takes the records (:class:`Records`: what the load sent, the ledger's
entries, the ``order_events`` rows, the venue's orders and executions) and names every command
the floor let down (:class:`Violation`). The rules:

* ``lost``: a command sent has no ledger entry (neither accepted nor refused).
* ``ledgered_twice``: a command has more than one authenticated entry.
* ``sent_twice``: the venue holds more than one order with the command's ``orderRef``.
* ``never_sent``: an accepted order the venue never got, which the floor did not end either
  (it ended an unsent order only as rejected, cancelled or expired, with nothing filled).
* ``unledgered_order``: the venue has an order no accepted ledger entry backs (write-ahead).
* ``unknown``: the floor's state of an order disagrees with the venue's (working at the venue
  but ended or unknown to the floor, filled at the venue but not to the floor, ...).
* ``fill_missing`` / ``fill_twice`` / ``fill_not_at_venue``: each of the venue's executions is
  in ``order_events`` exactly once, and nothing else is.
* ``cancel_ignored``: an accepted cancel whose target is still working at the venue.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

ORDER_KINDS = frozenset({"enter", "exit"})
VENUE_OPEN = frozenset({"PendingSubmit", "PreSubmitted", "Submitted"})
FLOOR_TERMINAL = frozenset({"rejected", "filled", "cancelled", "expired"})
UNSENT_ENDS = frozenset({"rejected", "cancelled", "expired"})
"""How the floor may end an order the broker never got."""
VENUE_ENDS = {"Filled": frozenset({"filled"}), "Cancelled": frozenset({"cancelled", "expired"})}
"""The floor's final state(s) that agree with each final venue status."""


@dataclass(frozen=True)
class Sent:
    """One command the load put on ``agent.commands``."""

    command_id: str
    kind: str
    target: str | None = None
    """A cancel's target command id."""


@dataclass(frozen=True)
class Entry:
    """One ledger entry of a command."""

    command_id: str
    decision: str
    reason: str | None = None
    authenticated: bool = True


@dataclass(frozen=True)
class StateRow:
    """One ``order_events`` row, in the table's order."""

    command_id: str
    kind: str
    filled_qty: int = 0
    exec_id: str | None = None


@dataclass(frozen=True)
class VenueOrder:
    order_ref: str
    perm_id: int
    status: str
    filled: int = 0


@dataclass(frozen=True)
class VenueFill:
    exec_id: str
    order_ref: str
    shares: int


@dataclass(frozen=True)
class Records:
    sent: tuple[Sent, ...]
    entries: tuple[Entry, ...]
    states: tuple[StateRow, ...]
    venue_orders: tuple[VenueOrder, ...]
    venue_fills: tuple[VenueFill, ...]


@dataclass(frozen=True)
class Violation:
    command_id: str
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.command_id}: {self.rule}: {self.detail}"


def check(records: Records) -> list[Violation]:
    """Every violation of the rules above, by command, in the order the commands were sent."""
    entries: defaultdict[str, list[Entry]] = defaultdict(list)
    for entry in records.entries:
        entries[entry.command_id].append(entry)
    accepted = {
        cid for cid, es in entries.items() if any(e.authenticated and e.decision == "accepted" for e in es)
    }
    kinds = {s.command_id: s.kind for s in records.sent}
    orders = [s.command_id for s in records.sent if s.kind in ORDER_KINDS and s.command_id in accepted]
    at_venue: defaultdict[str, list[VenueOrder]] = defaultdict(list)
    for order in records.venue_orders:
        at_venue[order.order_ref].append(order)
    rows: defaultdict[str, list[StateRow]] = defaultdict(list)
    for row in records.states:
        rows[row.command_id].append(row)

    found: list[Violation] = []
    found += _decisions(records.sent, entries)
    for cid in orders:
        found += _order(cid, at_venue.get(cid, []), rows.get(cid, []))
    found += _fills(orders, records.venue_fills, rows)
    for ref, venue_orders in at_venue.items():
        if ref not in accepted or kinds.get(ref) not in ORDER_KINDS:
            perm_ids = ", ".join(str(o.perm_id) for o in venue_orders)
            found.append(
                Violation(ref, "unledgered_order", f"venue permId {perm_ids}: no accepted order entry")
            )
    for sent in records.sent:
        if sent.kind == "cancel" and sent.command_id in accepted and sent.target is not None:
            still = [o for o in at_venue.get(sent.target, []) if o.status in VENUE_OPEN]
            if still:
                detail = f"its target {sent.target} is still {still[0].status} at the venue"
                found.append(Violation(sent.command_id, "cancel_ignored", detail))
    return found


def _decisions(sent: Iterable[Sent], entries: dict[str, list[Entry]]) -> list[Violation]:
    found = []
    for s in sent:
        mine = entries.get(s.command_id, [])
        if not mine:
            found.append(
                Violation(s.command_id, "lost", f"{s.kind} sent, no ledger entry (accepted or refused)")
            )
        elif sum(e.authenticated for e in mine) > 1:
            decisions = ", ".join(e.decision for e in mine)
            found.append(Violation(s.command_id, "ledgered_twice", decisions))
    return found


def _order(cid: str, venue: list[VenueOrder], rows: list[StateRow]) -> list[Violation]:
    state = rows[-1].kind if rows else None
    filled = max((r.filled_qty for r in rows), default=0)
    if len(venue) > 1:
        perm_ids = ", ".join(str(o.perm_id) for o in venue)
        return [Violation(cid, "sent_twice", f"the venue has {len(venue)} orders (permIds {perm_ids})")]
    if not venue:
        if state in UNSENT_ENDS and filled == 0:
            return []
        return [
            Violation(cid, "never_sent", f"accepted, not at the venue, the floor has it {state or 'unknown'}")
        ]
    order = venue[0]
    if order.status in VENUE_OPEN:
        if state is None or state in FLOOR_TERMINAL:
            return [
                Violation(
                    cid, "unknown", f"{order.status} at the venue, the floor has it {state or 'unknown'}"
                )
            ]
    elif state not in VENUE_ENDS.get(order.status, frozenset()):
        return [
            Violation(cid, "unknown", f"{order.status} at the venue, the floor has it {state or 'unknown'}")
        ]
    if filled != order.filled:
        return [Violation(cid, "unknown", f"filled {order.filled} at the venue, {filled} to the floor")]
    return []


def _fills(
    orders: list[str], venue_fills: Iterable[VenueFill], rows: dict[str, list[StateRow]]
) -> list[Violation]:
    found = []
    wanted = set(orders)
    at_venue: defaultdict[str, set[str]] = defaultdict(set)
    for fill in venue_fills:
        if fill.order_ref in wanted:
            at_venue[fill.order_ref].add(fill.exec_id)
    for cid in orders:
        recorded = Counter(r.exec_id for r in rows.get(cid, []) if r.exec_id is not None)
        for exec_id in sorted(at_venue.get(cid, set()) - set(recorded)):
            found.append(Violation(cid, "fill_missing", f"execution {exec_id} is not in order_events"))
        for exec_id, times in sorted(recorded.items()):
            if times > 1:
                found.append(
                    Violation(cid, "fill_twice", f"execution {exec_id} is in order_events {times} times")
                )
            if exec_id not in at_venue.get(cid, set()):
                found.append(Violation(cid, "fill_not_at_venue", f"execution {exec_id} is not the venue's"))
    return found
