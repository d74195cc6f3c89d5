"""A hot path starting in group mode sends nothing the ledger holds unsent.

Alone, a starting hot path is the only one that could have decided an order the ledger holds
as accepted with no sign of the broker (no state row past ``accepted``): its previous run did,
and died between the ledger commit and the broker write, so the order is checked again and
sent (:func:`hotpath.startup.release_held`). In a group, such an order is far more often
another member's, live, whose state rows have not caught up with its broker writes (under a
burst, a member joining found over a thousand of them): sending it again would place it twice.
So a member starting in group mode leaves every held and parked order to the member that
decided it: it drops them from its order map and its account book (the owner of each account
counts them from the state rows, :mod:`hotpath.group_handover`) and records them in the ops
event ``recovery.deferred_to_owner``. An order whose member died in that microsecond window
stays accepted and unsent, named in that event: check the venue by its orderRef.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from hotpath.intake import Intake
from hotpath.startup import Startup

DEFERRED_TO_OWNER = "recovery.deferred_to_owner"
"""Ops event (warning): accepted orders with no sign of the broker that a member starting in
group mode did not send (see the module)."""


def defer_to_owners(
    startup: Startup, intake: Intake, record_ops: Callable[[str, str, Mapping[str, Any]], None]
) -> Startup:
    """``startup`` without its held and parked orders, which leave ``intake``'s order map and
    book; records them as :data:`DEFERRED_TO_OWNER`."""
    restored = startup.restored
    held = [r.command.command_id for r in restored.to_send]
    parked = [p.order.order_ref for p in restored.parked]
    for command_id in (*held, *parked):
        order = intake.orders.pop(command_id, None)
        if order is not None:
            intake.book.order_done(order.account, command_id)
    if held or parked:
        record_ops(
            DEFERRED_TO_OWNER,
            "warning",
            {
                "held": held,
                "parked": parked,
                "what_to_do": "each is its deciding member's to send; one whose member died before "
                "writing it to the broker is not at the venue under its orderRef: cancel it in the "
                "ledger's terms or send it again",
            },
        )
    return dataclasses.replace(startup, restored=dataclasses.replace(restored, to_send=(), parked=()))
