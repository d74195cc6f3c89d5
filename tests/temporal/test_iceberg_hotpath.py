"""The Sniper end to end: Temporal worker and bridge as processes, slices through Kafka and the
real hot path to the paper venue, fills back through ``orders.events``; the worker is killed
mid-iceberg and restarted, and the iceberg carries on without sending any slice twice.

Size: the shared hot-path fixture trades under a risk profile with ``max_position`` 1,000, so
the parent here is 1,000 shares in 100-share slices (10,000 needs a profile that allows it; set
``FLOOR_ICEBERG_IT_TOTAL`` with such a profile to run that size).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import asyncpg
from temporalio.client import Client

from floor.services import _child_env
from floor.settings import FloorSettings
from floor.supervisor import RunningService, ServiceSpec, Supervisor, log_probe
from ledger.keys import register_key
from tests.helpers import eventually
from tests.hotpath.conftest import (  # noqa: F401 - fixtures used by name
    VENUE_ACCOUNT,
    HotPathProcess,
    hotpath,
    risk_profiles,
)
from trading.commands import Edge, Side
from trading.signing import generate_private_key, private_key_to_pem, public_key_bytes
from workflows.iceberg import Iceberg, IcebergInput, IcebergStatus, ProgressQuery

SYMBOL = "MSFT"
REFERENCE = Decimal("418.52")
"""The paper venue's initial MSFT price; the edge's stop sits well away from it."""
TOTAL = int(os.environ.get("FLOOR_ICEBERG_IT_TOTAL", "1000"))
DISPLAY = 100
MAX_POSITION = 1000


def _process(settings: FloorSettings, name: str, argv: list[str], ready: str) -> ServiceSpec:
    return ServiceSpec(
        name=name,
        argv=[sys.executable, "-m", *argv],
        address=name,
        probe=log_probe(settings.log_dir / f"{name}.log", ready),
        env=_child_env(settings),
        ready_timeout=60.0,
    )


async def _position(pool: asyncpg.Pool) -> int:
    rows = await pool.fetch(
        "SELECT side, coalesce(sum(fill_qty), 0) AS q FROM order_events"
        " WHERE account = $1 AND symbol = $2 AND exec_id IS NOT NULL GROUP BY side",
        VENUE_ACCOUNT,
        SYMBOL,
    )
    return sum(int(r["q"]) * (1 if r["side"] == "BUY" else -1) for r in rows)


async def test_iceberg_fills_through_the_hot_path_and_survives_a_worker_restart(
    hotpath: HotPathProcess,  # noqa: F811
    floor_settings: FloorSettings,
    supervisor: Supervisor,
    ledger_pool: asyncpg.Pool,
    temporal_client: Client,
    tmp_path: Path,
) -> None:
    tag = uuid.uuid4().hex[:8]
    agent_id = f"sniper-{tag}"
    key = generate_private_key()
    keys_dir = tmp_path / "keys"
    keys_dir.mkdir()
    (keys_dir / f"{agent_id}.key").write_bytes(private_key_to_pem(key))
    await register_key(ledger_pool, agent_id, public_key_bytes(key), "service", [VENUE_ACCOUNT])

    queue = f"it-{tag}"
    settings = hotpath.settings
    bridge = _process(
        settings,
        f"bridge-{tag}",
        ["temporal.bridge", "--group-id", f"bridge-{tag}", "--task-queue", queue],
        "bridging",
    )

    def worker(client_id: int) -> ServiceSpec:
        argv = [
            "temporal.worker",
            "--keys-dir",
            str(keys_dir),
            "--agent",
            agent_id,
            "--task-queue",
            queue,
            "--ib-client-id",
            str(client_id),
        ]
        return _process(settings, f"worker-{tag}", argv, "worker polling")

    await asyncio.to_thread(supervisor.start, bridge)
    first: RunningService = await asyncio.to_thread(supervisor.start, worker(61))

    position = await _position(ledger_pool)
    side = Side.SELL if position >= 0 else Side.BUY
    assert abs(position + (TOTAL if side is Side.BUY else -TOTAL)) <= MAX_POSITION, position
    stop = REFERENCE - 20 if side is Side.BUY else REFERENCE + 20
    iceberg_id = f"ice-it-{tag}"
    handle = await temporal_client.start_workflow(
        Iceberg.run,
        IcebergInput(
            account=VENUE_ACCOUNT,
            symbol=SYMBOL,
            side=side,
            total_qty=TOTAL,
            display_qty=DISPLAY,
            edge=Edge(Decimal("0.55"), Decimal("2"), stop),
            agent_id=agent_id,
        ),
        id=iceberg_id,
        task_queue=queue,
    )

    async def slices_sent(n: int) -> bool:
        return (await handle.query(Iceberg.progress, ProgressQuery())).slices_sent >= n

    await eventually(lambda: slices_sent(3), timeout=120)
    os.killpg(first.pid, signal.SIGKILL)  # no goodbye: the worker just vanishes
    await asyncio.to_thread(first.process.wait)
    await asyncio.to_thread(supervisor.start, worker(62))

    result = await asyncio.wait_for(handle.result(), timeout=600)
    assert result.status is IcebergStatus.COMPLETED, result.notes
    assert result.filled_qty == TOTAL == sum(s.filled_qty for s in result.slices)
    assert all(s.filled_qty <= s.qty <= DISPLAY for s in result.slices)

    # The ledger saw each slice command exactly once (a resent slice would be a second entry
    # or a replay refusal), and the venue's fills add up to the parent, no more.
    slice_ids = [s.command_id for s in result.slices]
    accepted = await ledger_pool.fetch(
        "SELECT command_id, count(*) AS n FROM order_events WHERE parent_id = $1 AND kind = 'accepted'"
        " GROUP BY command_id",
        iceberg_id,
    )
    assert {r["command_id"]: r["n"] for r in accepted} == dict.fromkeys(slice_ids, 1)
    filled = await ledger_pool.fetchval(
        "SELECT coalesce(sum(fill_qty), 0) FROM order_events WHERE parent_id = $1 AND exec_id IS NOT NULL",
        iceberg_id,
    )
    assert filled == TOTAL
    gaps = [
        (b.sent_at - a.sent_at).total_seconds()
        for a, b in zip(result.slices, result.slices[1:], strict=False)
    ]
    assert min(gaps) >= 3.0
    assert result.quality is not None
