"""The signed command record the floor's workflows put on ``agent.commands``.

Canonical JSON (RFC 8785) of the command, signed with Ed25519; the record is
``{"command": {...}, "signer": agent_id, "signature": base64}``. Prices travel as decimal
strings. The nonce is derived from the command id, so a resend of the same command is the same
record and the sentry's replay guard treats it as the duplicate it is.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC
from typing import TYPE_CHECKING

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

if TYPE_CHECKING:
    from activities.commands import CancelCommandRequest, OrderCommandRequest


def _nonce(command_id: str) -> str:
    return hashlib.sha256(command_id.encode()).hexdigest()[:32]


def order_command(req: OrderCommandRequest) -> dict[str, object]:
    return {
        "type": "enter",
        "command_id": req.command_id,
        "parent_id": req.parent_id,
        "agent_id": req.agent_id,
        "account": req.account,
        "symbol": req.symbol,
        "side": req.side,
        "quantity": req.quantity,
        "order_type": "LMT",
        "limit_price": str(req.limit_price),
        "tif": req.tif,
        "issued_at": req.issued_at.astimezone(UTC).isoformat(),
        "nonce": _nonce(req.command_id),
    }


def cancel_command(req: CancelCommandRequest) -> dict[str, object]:
    return {
        "type": "cancel",
        "command_id": req.command_id,
        "target_command_id": req.target_command_id,
        "agent_id": req.agent_id,
        "account": req.account,
        "symbol": req.symbol,
        "reason": req.reason,
        "issued_at": req.issued_at.astimezone(UTC).isoformat(),
        "nonce": _nonce(req.command_id),
    }


def sign_command(command: dict[str, object], agent_id: str, key: Ed25519PrivateKey) -> bytes:
    signature = key.sign(rfc8785.dumps(command))  # type: ignore[arg-type]
    record = {"command": command, "signer": agent_id, "signature": base64.b64encode(signature).decode()}
    return json.dumps(record, separators=(",", ":"), sort_keys=True).encode()
