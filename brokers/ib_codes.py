"""IB error/notice codes in named sets; each set drives one explicit reaction in the adapter.

Codes not in any set are reported as :class:`~brokers.base.BrokerNotice` (or, when they name one
of our orders and are not warnings, as a rejection with category ``"order_error"``).
"""

from __future__ import annotations

CONNECTIVITY_LOST = frozenset({1100, 2110})
"""Gateway lost its upstream: orders may not reach the exchange. The session stops carrying
orders (the standby takes over) but stays connected for the gateway's 1101/1102."""
CONNECTIVITY_RESTORED_DATA_LOST = frozenset({1101})
"""Upstream back, market-data subscriptions lost: resubscribe."""
CONNECTIVITY_RESTORED = frozenset({1102})
"""Upstream back with market data kept: the session carries orders again."""
CLIENT_ID_IN_USE = frozenset({326})

ORDER_REJECTED = frozenset(
    {103, 105, 106, 107, 109, 110, 111, 113, 116, 117, 118, 119, 120, 121, 122, 123, 124, 125, 126,
     129, 131, 132, 133, 134, 135, 136, 137, 140, 141, 146, 147, 148, 151, 152, 153, 154, 155, 156,
     157, 158, 159, 160, 163, 164, 166, 167, 168, 200, 201, 203, 382, 383, 387, 388, 389, 390,
     391, 392, 393, 399}
)  # fmt: skip
"""The broker refused a new order (e.g. 201 "Order rejected - reason: ...", 200 no security
definition, 103 duplicate order id)."""
MODIFY_REFUSED = frozenset({104})
"""A modify was refused; the original order keeps working (or is already filled)."""
CANCEL_REFUSED = frozenset({161, 10147, 10148})
"""A cancel was refused (not cancellable, unknown, already filled)."""
ORDER_CANCELLED_NOTICE = frozenset({202})
"""Confirmation that follows a ``Cancelled`` status; not a rejection."""
PACING = frozenset({100})
"""Message rate exceeded: the request was dropped by the gateway."""
DEPTH_RESET = frozenset({317})
"""The gateway reset a depth book (ib_async empties it): the L2 feed has a gap."""
MARKET_DATA = frozenset({300, 309, 317, 322, 354, 10167, 10168, 10189})
FARM_STATUS = frozenset(range(2100, 2200))
"""Farm connection notices (2104 market data OK, ...): informational."""

WARNINGS = frozenset({105, 110, 165, 321, 329, 399, 404, 434, 492, 10167}) | FARM_STATUS
"""Codes ib_async treats as warnings: they do not end a request or cancel an order."""


def category(code: int) -> str:
    """Name of the set ``code`` belongs to, as used in ``OrderRejected.category``."""
    if code in MODIFY_REFUSED:
        return "modify_refused"
    if code in CANCEL_REFUSED:
        return "cancel_refused"
    if code in ORDER_REJECTED:
        return "order_rejected"
    if code in ORDER_CANCELLED_NOTICE:
        return "order_cancelled"
    if code in CONNECTIVITY_LOST:
        return "connectivity_lost"
    if code in CONNECTIVITY_RESTORED | CONNECTIVITY_RESTORED_DATA_LOST:
        return "connectivity_restored"
    if code in PACING:
        return "pacing"
    if code in MARKET_DATA:
        return "market_data"
    if code in FARM_STATUS:
        return "farm_status"
    return "order_error"
