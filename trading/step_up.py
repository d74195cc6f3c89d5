"""What you see is what you sign: the bytes of a staged order, its hash, and the step-up
challenge derived from them.

A trader's order beyond the arming grant (or every order, when the trader asks for it) needs a
WebAuthn ceremony of its own. The authenticator signs the challenge the server hands it, so the
server derives that challenge from the very order it will execute: an assertion over it
authorises that order and no other, and the HUD shows the first characters of
:func:`order_hash` next to Execute so the trader can see which order they are confirming.

:func:`order_bytes` is RFC 8785 canonical JSON of the order's terms (never of the command,
whose id, nonce and time are made only at execution)::

    {"v": 1, "account": "DU1234567", "symbol": "AAPL", "side": "BUY", "order_type": "LMT",
     "limit_price": "230.5", "quantity": 100, "tif": "DAY", "stop_loss": "228"}

Prices are the decimal strings of :mod:`trading.commands` (plain notation, as given); a price
the order does not have is omitted, never null. :func:`order_hash` is the lowercase hex
SHA-256 of those bytes.

:func:`step_up_challenge` is the 32-byte SHA-256 of, in this order::

    b"execution-floor/step-up/v1\\x00"    the domain label, NUL-terminated
    len(nonce) as 2 bytes, big-endian     so the nonce's end is never ambiguous
    nonce                                 16 to 64 fresh random bytes from the server
    SHA-256(order_bytes)                  32 raw bytes: the order
    session_id, UTF-8                     the web session the order was staged in

The label keeps a step-up challenge from ever equalling a hash made for another purpose; the
nonce makes every challenge single-use even for two identical orders; the session binds it to
the session that asked.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import rfc8785

from trading.commands import Command, CommandKind, OrderType, Side, TimeInForce

DOMAIN_LABEL = b"execution-floor/step-up/v1\x00"
ORDER_BYTES_VERSION = 1
MIN_NONCE_BYTES = 16
MAX_NONCE_BYTES = 64
HASH_PREFIX_CHARS = 8
"""How many characters of the order hash the HUD shows next to Execute."""


@dataclass(frozen=True)
class OrderTerms:
    """The order a staged order will execute: everything that reaches the broker or the risk
    gate, and nothing that is made at execution (command id, nonce, time)."""

    account: str
    symbol: str
    side: Side
    order_type: OrderType
    quantity: int
    tif: TimeInForce
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    stop_loss: Decimal | None = None

    def to_json_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "v": ORDER_BYTES_VERSION,
            "account": self.account,
            "symbol": self.symbol,
            "side": self.side.value,
            "order_type": self.order_type.value,
            "quantity": self.quantity,
            "tif": self.tif.value,
        }
        for name in ("limit_price", "stop_price", "stop_loss"):
            value = getattr(self, name)
            if value is not None:
                out[name] = format(value, "f")
        return out


def order_bytes(terms: OrderTerms) -> bytes:
    """RFC 8785 canonical JSON of the order's terms (the layout is in the module docstring)."""
    return rfc8785.dumps(terms.to_json_dict())


def order_hash(order: bytes) -> str:
    """Lowercase hex SHA-256 of :func:`order_bytes`."""
    return hashlib.sha256(order).hexdigest()


def hash_prefix(hex_hash: str) -> str:
    """The first characters of an order hash, as the HUD shows them."""
    return hex_hash[:HASH_PREFIX_CHARS]


def step_up_challenge(nonce: bytes, order: bytes, session_id: str) -> bytes:
    """The WebAuthn challenge for a step-up over ``order`` (its :func:`order_bytes`) in
    ``session_id``; the exact layout is in the module docstring."""
    if not MIN_NONCE_BYTES <= len(nonce) <= MAX_NONCE_BYTES:
        raise ValueError(f"a step-up nonce is {MIN_NONCE_BYTES} to {MAX_NONCE_BYTES} bytes, got {len(nonce)}")
    if not session_id:
        raise ValueError("a step-up challenge needs the session id")
    digest = hashlib.sha256()
    digest.update(DOMAIN_LABEL)
    digest.update(len(nonce).to_bytes(2, "big"))
    digest.update(nonce)
    digest.update(hashlib.sha256(order).digest())
    digest.update(session_id.encode())
    return digest.digest()


def command_terms(command: Command) -> OrderTerms | None:
    """The order terms a command executes, when :class:`OrderTerms` covers all of them: an
    ``enter`` or ``exit`` with no edge (never sized: its quantity is the order's), no trail and
    no iceberg parent. None for anything else, whose terms no order hash can stand for."""
    if command.kind not in (CommandKind.ENTER, CommandKind.EXIT) or command.edge is not None:
        return None
    if command.trail_amount is not None or command.trail_percent is not None or command.parent_id is not None:
        return None
    assert command.symbol is not None and command.side is not None and command.order_type is not None
    assert command.tif is not None and command.quantity is not None
    return OrderTerms(
        account=command.account,
        symbol=command.symbol,
        side=command.side,
        order_type=command.order_type,
        quantity=command.quantity,
        tif=command.tif,
        limit_price=command.limit_price,
        stop_price=command.stop_price,
        stop_loss=command.stop_loss,
    )


def command_order_hash(command: Command) -> str | None:
    """:func:`order_hash` of :func:`command_terms` (None when the command has no such terms):
    what a step-up over this command must have been over."""
    terms = command_terms(command)
    return None if terms is None else order_hash(order_bytes(terms))
