"""The venue's id counters, kept in a small JSON file so they survive a venue restart.

IB never reuses a permId and never hands a client an order id below one it has used. Books,
orders and fills of the paper venue live in memory (a restart starts a fresh market), but these
counters are written at most once a second (never on the order path) and on shutdown. After a
crash the last second may be missing, so a restarted venue skips ``PERM_ID_GAP`` permIds,
``ORDER_ID_GAP`` order ids per client and ``EXEC_SEQ_GAP`` execution numbers ahead of what was
saved.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

PERM_ID_GAP = 100_000
ORDER_ID_GAP = 1_000
EXEC_SEQ_GAP = 1_000_000
FIRST_PERM_ID = 1_000_001


@dataclass(frozen=True)
class Counters:
    next_perm_id: int = FIRST_PERM_ID
    highest_order_ids: dict[int, int] = field(default_factory=dict)
    exec_seq: int = 0

    def after_restart(self) -> Counters:
        """What a restarted venue continues from (skipping what it may not have saved)."""
        return Counters(
            self.next_perm_id + PERM_ID_GAP,
            {client: oid + ORDER_ID_GAP for client, oid in self.highest_order_ids.items()},
            self.exec_seq + EXEC_SEQ_GAP,
        )


def load(path: Path) -> Counters:
    """The saved counters, or fresh ones if there is no file; a corrupt file is an error."""
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return Counters()
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read venue counters from {path}: {exc}") from exc
    try:
        next_perm_id = int(raw["next_perm_id"])
        highest = {int(k): int(v) for k, v in raw["highest_order_ids"].items()}
        exec_seq = int(raw.get("exec_seq", 0))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"venue counters in {path} are malformed: {exc}") from exc
    return Counters(next_perm_id, highest, exec_seq)


def save(path: Path, counters: Counters) -> None:
    """Write atomically (temp file + rename) so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    payload = {
        "next_perm_id": counters.next_perm_id,
        "highest_order_ids": {str(k): v for k, v in sorted(counters.highest_order_ids.items())},
        "exec_seq": counters.exec_seq,
    }
    tmp.write_text(json.dumps(payload))
    os.replace(tmp, path)
