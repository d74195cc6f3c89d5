"""The Sniper end to end: Temporal worker and bridge as processes, slices through Kafka and the
real hot path to the paper venue, fills back through ``orders.events``.

The large run: an iceberg of 10,000 shares in 100-share slices fills completely with no
overfill, and the worker, killed (SIGKILL) a third of the way in and restarted, carries on
without sending any slice twice. It trades AAPL under a profile with room for it, in a market
made eight times as active as usual with the slice intervals scaled to an eighth (about two
minutes in all), and leaves the account as it found it (``tests/temporal/large_iceberg.py``).
The other tests send iceberg commands through intake.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import statistics
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from temporalio.client import Client
from typer.testing import CliRunner

from activities.commands import ATTR_PARENT_TRACE_ID, SLICE_SPAN
from bus.topics import AGENT_COMMANDS, ORDERS_EVENTS
from config.processes import ServiceSpec, child_env, log_probe
from config.settings import FloorSettings
from config.workflow_ids import iceberg_workflow_id
from floor.sniper_cmd import app as sniper_app
from floor.supervisor import RunningService, Supervisor, stop_process_group
from hotpath.refusals import DUPLICATE_DELIVERY
from ledger.keys import register_key
from ledger.spans import SpanRow, spans_for_command
from temporal.client import iceberg_input
from temporal.record_traces import DELIVER_SPAN
from tests.factories import Agent, new_agent
from tests.fixtures.hotpath import RecordWriters, await_event, send
from tests.fixtures.paper import PaperStack
from tests.helpers import eventually
from tests.hotpath.conftest import (  # noqa: F401 - fixtures used by name
    VENUE_ACCOUNT,
    HotPathProcess,
    command_producer,
    risk_profiles,
    running_hotpath,
)
from tests.hotpath.test_circuit_breaker_flow import rearm
from tests.temporal.conftest import group_starts_at_the_end, ledgered_iceberg, workflow_exists
from tests.temporal.large_iceberg import (  # noqa: F401 - fixture used by name
    BUSY_FACTOR,
    STOP_DISTANCE,
    IcebergRoom,
    large_iceberg_room,
)
from tests.temporal.large_iceberg import SYMBOL as LARGE_SYMBOL
from tests.temporal.large_iceberg import position as _position
from trading.commands import Command, CommandKind, Edge, Side, TimeInForce, utc_now_ms
from trading.order_events import EventKind
from trading.record_signing import RECONCILE_WRITER
from trading.signing import generate_private_key, private_key_to_pem, public_key_bytes
from workflows.iceberg import Iceberg, IcebergStatus, ProgressQuery


@pytest.fixture(scope="module")
async def hotpath(
    floor_settings: FloorSettings,
    supervisor: Supervisor,
    paper: PaperStack,
    risk_profiles: None,  # noqa: F811
    ledger_pool: asyncpg.Pool,
    command_producer: AIOKafkaProducer,  # noqa: F811
    sniper_agent: str,
) -> AsyncIterator[HotPathProcess]:
    """This module's own hot path, stopped when the module ends; slices are its Sniper's alone."""
    async with running_hotpath(
        floor_settings, supervisor, paper, ledger_pool, command_producer, sniper_agents=(sniper_agent,)
    ) as process:
        yield process


@pytest.fixture(scope="module")
def sniper_agent() -> str:
    """The agent this module's worker signs slices as, and the only one its hot path takes them from."""
    return f"sniper-{uuid.uuid4().hex[:8]}"


SYMBOL = "MSFT"
REFERENCE = Decimal("418.52")
"""The paper venue's initial MSFT price; the edge's stop sits well away from it."""
DISPLAY = 100
INTERVAL_SCALE = Decimal(1) / BUSY_FACTOR
"""The slices' 3-7 s intervals at the pace of a market BUSY_FACTOR times as active."""
INTERVAL_SCALE_F = float(INTERVAL_SCALE)
TIMER_SLACK_S = 1.0
"""How much later than its interval a slice may typically go out: Temporal timers fire late."""


def _pred(check: Callable[[], Awaitable[bool]]) -> Callable[[], bool | Awaitable[bool]]:
    """An async predicate as :func:`eventually` types it (its TypeVar cannot be solved from a
    bare coroutine function)."""
    return check


def _process(settings: FloorSettings, name: str, argv: list[str], ready: str) -> ServiceSpec:
    return ServiceSpec(
        name=name,
        argv=[sys.executable, "-m", *argv],
        address=name,
        probe=log_probe(settings.log_dir / f"{name}.log", ready),
        env=child_env(settings, "worker"),
        ready_timeout=60.0,
    )


@dataclass
class SniperStack:
    """The bridge and a worker as processes, on a task queue of their own, with a sniper agent
    whose key the worker signs slices with (and whose name the bridge gives new icebergs)."""

    agent_id: str
    queue: str
    keys_dir: Path
    settings: FloorSettings
    supervisor: Supervisor
    worker: RunningService | None = None
    worker_client_id: int = 0

    def worker_spec(self, client_id: int) -> ServiceSpec:
        argv = [
            "temporal.worker",
            "--keys-dir",
            str(self.keys_dir),
            "--agent",
            self.agent_id,
            "--sniper-agent",
            self.agent_id,
            "--task-queue",
            self.queue,
            "--ib-client-id",
            str(client_id),
            "--iceberg-min-interval-scale",
            str(INTERVAL_SCALE),
        ]
        return _process(self.settings, f"worker-{self.queue}", argv, "worker polling")

    async def start_worker(self, client_id: int) -> RunningService:
        self.worker_client_id = client_id
        self.worker = await asyncio.to_thread(self.supervisor.start, self.worker_spec(client_id))
        return self.worker


@pytest.fixture(scope="module")
async def sniper(
    hotpath: HotPathProcess,  # noqa: F811
    supervisor: Supervisor,
    ledger_pool: asyncpg.Pool,
    tmp_path_factory: pytest.TempPathFactory,
    record_writers: RecordWriters,
    sniper_agent: str,
) -> AsyncIterator[SniperStack]:
    tag = uuid.uuid4().hex[:8]
    agent_id = sniper_agent
    key = generate_private_key()
    keys_dir = tmp_path_factory.mktemp("keys")
    (keys_dir / f"{agent_id}.key").write_bytes(private_key_to_pem(key))
    # Reconciliation's records are signed by the floor's own writer key, as under `floor up`.
    (keys_dir / f"{RECONCILE_WRITER}.key").write_bytes(private_key_to_pem(record_writers.reconcile))
    await register_key(ledger_pool, agent_id, public_key_bytes(key), "service", [VENUE_ACCOUNT])
    stack = SniperStack(agent_id, f"it-{tag}", keys_dir, hotpath.settings, supervisor)
    await group_starts_at_the_end(stack.settings.kafka, f"bridge-{tag}", ORDERS_EVENTS)
    bridge = _process(
        stack.settings,
        f"bridge-{tag}",
        ["temporal.bridge", "--group-id", f"bridge-{tag}", "--task-queue", stack.queue,
         "--sniper-agent", agent_id],
        "bridging",
    )  # fmt: skip
    bridge_service = await asyncio.to_thread(supervisor.start, bridge)
    await stack.start_worker(61)
    yield stack
    # Later suites need the machine: the bridge and worker stop with this module.
    for service in (stack.worker, bridge_service):
        if service is not None and service in supervisor.running:
            supervisor.running.remove(service)
            await asyncio.to_thread(stop_process_group, service.pid)


async def test_iceberg_fills_through_the_hot_path_and_survives_a_worker_restart(
    sniper: SniperStack,
    large_iceberg_room: IcebergRoom,  # noqa: F811
    paper: PaperStack,
    ledger_pool: asyncpg.Pool,
    temporal_client: Client,
) -> None:
    """Ten slices, the worker killed after the third: the representative run of the one below."""
    await _fills_through_the_hot_path_and_survives_a_worker_restart(
        sniper, large_iceberg_room, paper, ledger_pool, temporal_client, total=1_000
    )


@pytest.mark.long
async def test_a_10000_share_iceberg_fills_through_the_hot_path_and_survives_a_worker_restart(
    sniper: SniperStack,
    large_iceberg_room: IcebergRoom,  # noqa: F811
    paper: PaperStack,
    ledger_pool: asyncpg.Pool,
    temporal_client: Client,
) -> None:
    """A hundred slices (about three minutes): `make test-long`."""
    await _fills_through_the_hot_path_and_survives_a_worker_restart(
        sniper, large_iceberg_room, paper, ledger_pool, temporal_client, total=10_000
    )


async def _fills_through_the_hot_path_and_survives_a_worker_restart(
    sniper: SniperStack,
    large_iceberg_room: IcebergRoom,  # noqa: F811
    paper: PaperStack,
    ledger_pool: asyncpg.Pool,
    temporal_client: Client,
    *,
    total: int,
) -> None:
    agent_id, queue = sniper.agent_id, sniper.queue
    start = large_iceberg_room.start_position
    side = Side.SELL if start >= 0 else Side.BUY
    bid, ask = await paper.quote(LARGE_SYMBOL)
    stop = (bid + ask) / 2 - side.sign * STOP_DISTANCE
    # The parent as intake leaves one it accepted (the ledger entry the Iceberg checks first);
    # started here rather than by the bridge, to scale its slice intervals to the busy market.
    parent = await ledgered_iceberg(
        ledger_pool, new_agent(accounts=frozenset({VENUE_ACCOUNT})), account=VENUE_ACCOUNT,
        symbol=LARGE_SYMBOL, side=side, quantity=total, display_size=DISPLAY, limit_price=None,
        edge=Edge(Decimal("0.55"), Decimal("2"), stop.quantize(Decimal("0.01"))),
    )  # fmt: skip
    iceberg_id = iceberg_workflow_id(parent.command_id)
    handle = await temporal_client.start_workflow(
        Iceberg.run,
        dataclasses.replace(iceberg_input(parent, agent_id=agent_id), interval_scale=INTERVAL_SCALE),
        id=iceberg_id,
        task_queue=queue,
    )
    large_iceberg_room.icebergs.append(handle)

    async def a_third_filled() -> bool:
        return (await handle.query(Iceberg.progress, ProgressQuery())).filled_qty >= total // 3

    await eventually(_pred(a_third_filled), timeout=120, interval=0.2)
    first = sniper.worker
    assert first is not None
    first_client_id = sniper.worker_client_id
    os.killpg(first.pid, signal.SIGKILL)  # no goodbye: the worker just vanishes
    await asyncio.to_thread(first.process.wait)
    await sniper.start_worker(first_client_id + 1)

    result = await asyncio.wait_for(handle.result(), timeout=300)
    assert result.status is IcebergStatus.COMPLETED, result.notes
    assert result.filled_qty == total == sum(s.filled_qty for s in result.slices)
    # Display-size slices (the sizer cut none), the last ones sized to what was left, and
    # none filled beyond its size.
    filled_before = 0
    for s in result.slices:
        assert s.qty == min(DISPLAY, total - filled_before), (s, filled_before)
        assert s.filled_qty <= s.qty, s
        filled_before += s.filled_qty
    assert not [n for n in result.notes if "overfilled" in n], result.notes

    # The ledger saw each slice command exactly once (a resent slice would be a second entry
    # or a replay refusal), and the venue's fills add up to the parent, no more, slice by slice.
    slice_qty = {s.command_id: s.qty for s in result.slices}
    accepted = await ledger_pool.fetch(
        "SELECT command_id, count(*) AS n FROM order_events WHERE parent_id = $1 AND kind = 'accepted'"
        " GROUP BY command_id",
        iceberg_id,
    )
    assert {r["command_id"]: r["n"] for r in accepted} == dict.fromkeys(slice_qty, 1)
    fills = await ledger_pool.fetch(
        "SELECT command_id, sum(fill_qty) AS q FROM order_events WHERE parent_id = $1 AND exec_id IS NOT NULL"
        " GROUP BY command_id",
        iceberg_id,
    )
    assert sum(int(r["q"]) for r in fills) == total
    assert all(int(r["q"]) <= slice_qty[r["command_id"]] for r in fills), fills
    assert await _position(ledger_pool, LARGE_SYMBOL) == start + side.sign * total

    # Slices at the scaled 3-7 s intervals: never sooner than the scaled 3 s; typically within
    # the scaled 7 s plus the dev server's timer lateness (0.2-0.7 s here) and the quote. The gap
    # across the restart and those behind a cancel are longer, hence the median.
    gaps = [
        (b.sent_at - a.sent_at).total_seconds()
        for a, b in zip(result.slices, result.slices[1:], strict=False)
    ]
    assert min(gaps) >= 3 * INTERVAL_SCALE_F, gaps
    assert statistics.median(gaps) <= 7 * INTERVAL_SCALE_F + TIMER_SLACK_S, gaps
    assert result.quality is not None


# --- an agent's iceberg command through intake -----------------------------------------------

PARENT_TOTAL = 200


def _iceberg_command(agent_id: str, side: Side, **overrides: object) -> Command:
    stop = REFERENCE - 20 if side is Side.BUY else REFERENCE + 20
    fields: dict[str, object] = dict(
        kind=CommandKind.ICEBERG, command_id=f"ice-cmd-{uuid.uuid4().hex}", agent_id=agent_id,
        account=VENUE_ACCOUNT, nonce=uuid.uuid4().hex, issued_at=utc_now_ms(), symbol=SYMBOL,
        side=side, edge=Edge(Decimal("0.55"), Decimal("2"), stop), tif=TimeInForce.DAY,
        quantity=PARENT_TOTAL, display_size=DISPLAY,
    )  # fmt: skip
    fields.update(overrides)
    return Command(**fields)  # type: ignore[arg-type]


async def _parent_entries(pool: asyncpg.Pool, command_id: str) -> list[tuple[str, str, dict[str, object]]]:
    rows = await pool.fetch(
        "SELECT kind, decision, detail FROM ledger_entries WHERE command_id = $1 ORDER BY seq", command_id
    )
    return [(r["kind"], r["decision"], json.loads(r["detail"] or "{}")) for r in rows]


async def test_a_signed_iceberg_on_agent_commands_is_started_by_the_bridge_and_filled_exactly(
    sniper: SniperStack,
    agent: Agent,
    command_producer: AIOKafkaProducer,  # noqa: F811
    ledger_pool: asyncpg.Pool,
    temporal_client: Client,
    temporal_address: str,
    api_url: str,
) -> None:
    """Through the API's door (so its trace starts there), Kafka, the hot path, the bridge and
    the worker, each its own process."""
    position = await _position(ledger_pool, SYMBOL)
    side = Side.SELL if position >= 0 else Side.BUY
    envelope = agent.sign(_iceberg_command(agent.agent_id, side))
    cid = envelope.command.command_id
    workflow_id = iceberg_workflow_id(cid)
    async with httpx.AsyncClient(base_url=api_url, timeout=10.0) as client:
        response = await client.post(
            "/v1/commands", content=envelope.to_wire(), headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 202, response.text

    await eventually(_pred(lambda: workflow_exists(temporal_client, workflow_id)), timeout=30)
    handle = temporal_client.get_workflow_handle_for(Iceberg.run, workflow_id)
    result = await asyncio.wait_for(handle.result(), timeout=240)
    assert result.status is IcebergStatus.COMPLETED, result.notes
    assert (result.account, result.symbol, result.side) == (VENUE_ACCOUNT, SYMBOL, side)
    assert result.filled_qty == PARENT_TOTAL == sum(s.filled_qty for s in result.slices)
    assert all(s.filled_qty <= s.qty <= DISPLAY for s in result.slices)
    # What the venue filled for the parent's slices, from the floor's own records: no overfill.
    filled = await ledger_pool.fetchval(
        "SELECT coalesce(sum(fill_qty), 0) FROM order_events WHERE parent_id = $1 AND exec_id IS NOT NULL",
        workflow_id,
    )
    assert filled == PARENT_TOTAL
    # The slices were signed by the sniper, not by the parent's author.
    signers = await ledger_pool.fetch(
        "SELECT DISTINCT agent_id FROM order_events WHERE parent_id = $1", workflow_id
    )
    assert [r["agent_id"] for r in signers] == [sniper.agent_id]
    # Before the parent is sent again below (a second delivery is a trace of its own).
    await _traced_across_the_processes(ledger_pool, cid, result.slices[0].command_id)

    # The parent: one accepted ledger entry naming it a parent, and no order of its own.
    assert await _parent_entries(ledger_pool, cid) == [
        ("iceberg", "accepted",
         {"role": "iceberg_parent", "quantity": PARENT_TOTAL, "display_size": DISPLAY,
          "reference_price": ANY_PRICE}),
    ]  # fmt: skip
    assert await ledger_pool.fetchval("SELECT count(*) FROM order_events WHERE command_id = $1", cid) == 0

    # Kafka delivering the parent again changes nothing: a duplicate delivery, one entry, one run.
    await send(command_producer, envelope)

    async def duplicate_seen() -> bool:
        return bool(
            await ledger_pool.fetchval(
                "SELECT count(*) FROM security_events WHERE command_id = $1 AND reason = $2",
                cid,
                DUPLICATE_DELIVERY,
            )
        )

    await eventually(_pred(duplicate_seen), timeout=20)
    assert len(await _parent_entries(ledger_pool, cid)) == 1
    runs = [w async for w in temporal_client.list_workflows(f'WorkflowId = "{workflow_id}"')]
    assert len(runs) == 1

    # The CLI runs its own event loop: give it a thread.
    status = await asyncio.to_thread(
        CliRunner().invoke, sniper_app, ["status", cid, "--temporal", temporal_address]
    )
    assert status.exit_code == 0, status.output
    assert "Completed" in status.output and f"filled {PARENT_TOTAL}/{PARENT_TOTAL}" in status.output


async def _spans(pool: asyncpg.Pool, command_id: str, *names: str) -> list[SpanRow]:
    """The span store's spans of ``command_id``'s traces, once the processes have exported the
    ``names`` (in batches, about every half second)."""

    async def exported() -> list[SpanRow] | None:
        spans = await spans_for_command(pool, command_id)
        return spans if set(names) <= {s.name for s in spans} else None

    found: list[SpanRow] = await eventually(exported, timeout=20)
    return found


async def _traced_across_the_processes(pool: asyncpg.Pool, parent_id: str, slice_id: str) -> None:
    """The parent command is one trace from the API's door through Kafka and the hot path, then
    through the bridge to the Iceberg's workflow and activities in the worker; its first slice
    is a trace of its own, rooted at its publication in the worker, continued by the hot path,
    and by the bridge into its lifecycle."""
    parent = await _spans(
        pool, parent_id, "POST /v1/commands", "agent.commands send", "hotpath.intake", DELIVER_SPAN,
        "StartWorkflow:Iceberg", "RunWorkflow:Iceberg", "RunActivity:check_iceberg_parent",
        "RunActivity:publish_order",
    )  # fmt: skip
    assert len({s.trace_id for s in parent}) == 1
    assert {"api", "hotpath", "bridge", "worker"} <= {s.service for s in parent}
    by_id = {s.span_id: s for s in parent}

    def ancestors(span: SpanRow) -> list[str]:
        names = []
        while span.parent_span_id is not None and span.parent_span_id in by_id:
            span = by_id[span.parent_span_id]
            names.append(span.name)
        return names

    door = next(s for s in parent if s.name == "POST /v1/commands")
    assert door.parent_span_id is None  # the trace's root
    intake = next(s for s in parent if s.name == "hotpath.intake")
    assert ancestors(intake) == ["agent.commands send", "POST /v1/commands"]
    start = next(s for s in parent if s.name == "StartWorkflow:Iceberg")
    assert ancestors(start)[:2] == [DELIVER_SPAN, "hotpath.intake"]
    assert ancestors(start)[-1] == "POST /v1/commands"
    run = next(s for s in parent if s.name == "RunActivity:publish_order")
    assert "StartWorkflow:Iceberg" in ancestors(run)

    own = await _spans(
        pool, slice_id, SLICE_SPAN, "hotpath.intake", "broker.place", DELIVER_SPAN,
        "SignalWithStartWorkflow:OrderLifecycle", "RunWorkflow:OrderLifecycle",
    )  # fmt: skip
    assert len({s.trace_id for s in own}) == 1 and own[0].trace_id != parent[0].trace_id
    root = next(s for s in own if s.name == SLICE_SPAN)
    assert root.parent_span_id is None and root.service == "worker"
    assert root.attributes[ATTR_PARENT_TRACE_ID] == parent[0].trace_id
    intake = next(s for s in own if s.name == "hotpath.intake")
    assert intake.parent_span_id == root.span_id


class _AnyPrice:
    """Equal to any positive decimal string (the touch when the parent was accepted)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and Decimal(other) > 0

    def __repr__(self) -> str:
        return "<any price>"


ANY_PRICE = _AnyPrice()


async def _refused_without_an_iceberg(
    kafka_bootstrap: str, temporal_client: Client, command_id: str, reason: str
) -> None:
    refused = await await_event(kafka_bootstrap, command_id, *EventKind)
    assert (refused.kind, refused.reason, refused.iceberg_envelope) == (EventKind.REJECTED, reason, None)
    # The bridge has handled the refusal once the refusal's lifecycle exists; by then it would
    # have started the iceberg, had the record been an accepted parent.
    await eventually(_pred(lambda: workflow_exists(temporal_client, command_id)), timeout=20)
    assert not await workflow_exists(temporal_client, iceberg_workflow_id(command_id))


@pytest.mark.parametrize("forgery", ["unsigned", "tampered"])
async def test_an_unsigned_or_tampered_iceberg_is_refused_by_the_sentry_and_starts_nothing(
    forgery: str,
    sniper: SniperStack,
    agent: Agent,
    command_producer: AIOKafkaProducer,  # noqa: F811
    kafka_bootstrap: str,
    ledger_pool: asyncpg.Pool,
    temporal_client: Client,
) -> None:
    envelope = agent.sign(_iceberg_command(agent.agent_id, Side.BUY))
    cid = envelope.command.command_id
    wire = envelope.to_wire_dict()
    if forgery == "unsigned":
        del wire["signature"]
        reason = "sentry.no_signature"
    else:
        wire["command"]["quantity"] = 900  # the signature covered 300
        reason = "sentry.bad_signature"
    await command_producer.send_and_wait(
        AGENT_COMMANDS, json.dumps(wire).encode(), key=f"{VENUE_ACCOUNT}/{SYMBOL}".encode()
    )
    # A command the sentry refused yields no order record at all (its id is unauthenticated):
    # the security event is its only trace, and the bridge never hears of it.
    await eventually(_pred(lambda: _security_reasons(ledger_pool, cid, reason)), timeout=20)
    assert not await workflow_exists(temporal_client, iceberg_workflow_id(cid))
    assert await ledger_pool.fetchval("SELECT count(*) FROM order_events WHERE command_id = $1", cid) == 0
    assert all(decision == "rejected" for _, decision, _ in await _parent_entries(ledger_pool, cid))


async def _security_reasons(pool: asyncpg.Pool, command_id: str, reason: str) -> bool:
    rows = await pool.fetch("SELECT reason FROM security_events WHERE command_id = $1", command_id)
    return [r["reason"] for r in rows] == [reason]


async def test_an_iceberg_while_the_breaker_is_halted_is_refused_and_starts_nothing(
    sniper: SniperStack,
    hotpath: HotPathProcess,  # noqa: F811
    paper: PaperStack,
    agent: Agent,
    operator: Agent,
    command_producer: AIOKafkaProducer,  # noqa: F811
    kafka_bootstrap: str,
    ledger_pool: asyncpg.Pool,
    temporal_client: Client,
) -> None:
    await paper.acontrol("POST", "/symbols/AAPL/flash-crash", {"pct": 15, "ms": 300})
    try:
        await eventually(_pred(lambda: _halted(hotpath)), timeout=20)
        envelope = agent.sign(_iceberg_command(agent.agent_id, Side.BUY))
        cid = envelope.command.command_id
        await send(command_producer, envelope)
        await _refused_without_an_iceberg(kafka_bootstrap, temporal_client, cid, "breaker.halted")
        assert await _parent_entries(ledger_pool, cid) == [("iceberg", "rejected", {})]
    finally:
        await rearm(hotpath, command_producer, operator)
        # Restore the price for the rest of the session (up 1/0.85 - 1 = 17.65%).
        await paper.acontrol("POST", "/symbols/AAPL/move", {"pct": 17.65, "ms": 0})
    assert (await hotpath.health())["trading_state"] == "ACTIVE"


async def _halted(process: HotPathProcess) -> bool:
    return (await process.health())["trading_state"] == "HALTED"
