"""Which command intake may decide while the one before it still waits for its ledger commit.

An order's checks read the account as the earlier orders left it, so intake decides the
commands one after another; but an order that passed its checks then only waits for its
write-ahead commit and goes to the broker. The command loop (:mod:`hotpath.command_loop`) lets
the next record in at that point: intake *releases* the loop right before it submits the
accepted entry (:func:`release`), and the next command is decided, and its entry queued behind
(:mod:`hotpath.group_commit`), while that commit is in flight.

The rule that keeps this equal to deciding one at a time:

- the released order is already counted in the account book as working (open orders, working
  shares), so the next order's risk checks see it;
- only a plain ``enter`` or ``exit`` overlaps the commands before it. Any other command (a
  cancel, a cancel-all, an iceberg and its controls, an iceberg slice, a breaker command), and
  a copy of a command that may be a redelivery, first waits until every command before it has
  been handled to its end (:func:`settle`): what it reads (the order map, a parent's slices,
  the ledger) is then as a one-at-a-time intake would have left it.

Outside the command loop (a test handing intake a record, a restart's replay) there is no
overlap: :func:`release` does nothing and :func:`settle` returns at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextvars import ContextVar
from typing import Any

from trading.commands import Command, CommandKind


class Overlap:
    """One record's place in the loop: the records still in flight before it, and the gate the
    loop waits on before it takes the next record."""

    def __init__(self, earlier: Sequence[asyncio.Future[Any]], gate: asyncio.Future[None]) -> None:
        self._earlier = list(earlier)
        self._gate = gate

    def release(self) -> None:
        if not self._gate.done():
            self._gate.set_result(None)

    async def settled(self) -> None:
        if self._earlier:
            await asyncio.wait(self._earlier)


CURRENT: ContextVar[Overlap | None] = ContextVar("hotpath_overlap", default=None)
"""The overlap of the record the running task decides (set by the command loop in that task)."""


def overlaps(command: Command) -> bool:
    """Whether ``command`` may be decided while earlier commands wait for their commits."""
    return command.kind in (CommandKind.ENTER, CommandKind.EXIT) and command.parent_id is None


def release() -> None:
    """The command being decided has passed every check and its entry is about to be queued:
    the loop may take the next record. Call it with nothing awaited between it and the append,
    so the next record's entry is queued after this one's."""
    overlap = CURRENT.get()
    if overlap is not None:
        overlap.release()


async def settle() -> None:
    """Wait until every record before this one has been handled to its end."""
    overlap = CURRENT.get()
    if overlap is not None:
        await overlap.settled()
