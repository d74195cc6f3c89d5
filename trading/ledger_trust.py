"""Whether the floor may act on a command it reads back from its own ledger.

The database cannot check an Ed25519 signature, and whoever holds a role that may append can
write an ``authenticated``, ``accepted`` row of their choosing. So a process that acts on an
entry after the fact (a restart re-sending held orders, intake loading an iceberg parent) checks
it again, as intake checked the command when it came in: the signature against the key the
registry holds for the signer, that key belonging to the agent the row names and allowed on
its account, the signed command being the very one the row's columns describe (kind,
account, agent, command id), and a trader's key having signed only with that trader's
authorization over the command's own terms, and only a trader's key a manual order
(:func:`trading.sentry.authority_problem`). A row that fails is not acted on; the
caller reports it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trading.commands import Command, CommandInvalid
from trading.sentry import RegisteredKey, authority_problem
from trading.signing import KeyInvalid, SignatureInvalid, public_key_from_bytes, verify_bytes


@dataclass(frozen=True)
class LedgerRow:
    """The columns of a ledger entry that say what was decided, and the signed bytes."""

    seq: int
    kind: str
    account: str | None
    agent_id: str | None
    command_id: str | None
    payload: bytes
    signer: str
    signature: bytes

    @classmethod
    def from_mapping(cls, row: Mapping[str, Any]) -> LedgerRow:
        """From a row of ``ledger_entries`` selected with these columns."""
        return cls(
            seq=row["seq"],
            kind=row["kind"],
            account=row["account"],
            agent_id=row["agent_id"],
            command_id=row["command_id"],
            payload=bytes(row["payload"]),
            signer=row["signer"],
            signature=bytes(row["signature"]),
        )


@dataclass(frozen=True)
class Checked:
    command: Command | None
    """The verified command; None when ``problem`` says why the row is not trusted."""
    problem: str | None = None


def check_entry(row: LedgerRow, key: RegisteredKey | None, *, revoked_is_problem: bool = True) -> Checked:
    """Verify ``row`` against ``key`` (the registry's entry for ``row.signer``, or None).

    ``revoked_is_problem``: a key revoked since counts against the row (an order held at a
    restart is not sent for a key revoked since it was accepted); callers that must still see
    what a revoked key did (a parent it stopped) pass False and act on ``key.revoked``.
    """
    if key is None:
        return Checked(None, f"signer {row.signer} is not a registered key")
    if key.agent_id != row.agent_id:
        return Checked(None, f"key {row.signer} belongs to {key.agent_id}, the entry names {row.agent_id}")
    if revoked_is_problem and key.revoked:
        return Checked(None, f"{key.agent_id}'s key {key.key_id} is revoked")
    try:
        verify_bytes(public_key_from_bytes(key.public_key), row.payload, row.signature)
    except (SignatureInvalid, KeyInvalid):
        return Checked(None, f"the signature does not verify with {key.key_id}")
    try:
        command = Command.from_json_dict(json.loads(row.payload))
    except (CommandInvalid, ValueError) as exc:
        return Checked(None, f"the signed payload is not a command ({exc})")
    columns = {
        "kind": (command.kind.value, row.kind),
        "account": (command.account, row.account),
        "agent_id": (command.agent_id, row.agent_id),
        "command_id": (command.command_id, row.command_id),
    }
    differ = [name for name, (signed, column) in columns.items() if signed != column]
    if differ:
        return Checked(None, f"the signed command differs from the entry in {', '.join(differ)}")
    if not key.allows(command.account):
        return Checked(None, f"{key.agent_id} may not trade {command.account}")
    if (problem := authority_problem(command, key.role, key.agent_id)) is not None:
        return Checked(None, problem)
    return Checked(command)


def payload_mismatch(payload: bytes, columns: dict[str, str | None]) -> str | None:
    """Which of ``columns`` (kind, agent_id, ...) the signed JSON payload does not carry as
    the entry's row does; None when all agree. For signed records that are not commands (the
    breaker's trip record) as well as commands."""
    try:
        document = json.loads(payload)
    except ValueError:
        return "the signed payload is not JSON"
    if not isinstance(document, dict):
        return "the signed payload is not a JSON object"
    differ = [name for name, value in columns.items() if document.get(name) != value]
    return f"the signed payload differs from the entry in {', '.join(differ)}" if differ else None
