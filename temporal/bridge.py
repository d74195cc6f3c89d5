"""The ``orders.events`` (and ``broker.sessions``) -> Temporal bridge, off the hot path.

Kafka authenticates nobody, so every record is verified first (:mod:`bus.signed_records`): it
must carry the signature of a registered, unrevoked service key of a writer of its topic (the
hot path; reconciliation for missed fills). A record that does not is dropped with a
``security.events`` record naming the topic and never acted on.

For every verified record: signal-with-start the order's ``OrderLifecycle`` (workflow id =
command id; the start input is built from the record, so whichever record comes first starts
it), and for an iceberg slice (``parent_id`` set) signal the ``Iceberg`` workflow too. Both are
sent the record as signed (``record``, ``slice_record``) and verify it again themselves, since
anyone who can reach Temporal can signal them. The ``accepted`` record of
an iceberg parent starts the ``Iceberg`` workflow instead (id ``iceberg-<command id>``, refused
by Temporal while a run is open or after one completed, so a redelivered record starts nothing,
but allowed after a failed run: a run someone else started, which its parent check failed, does
not lock the parent out; the workflow takes its expiry from that check, not from the bridge),
from the parent's entry in the ledger, not from the record: only
a parent the ledger holds as accepted starts, and with the very command its author signed. The
parent is no broker order, so it gets no lifecycle. The ``accepted`` record of an iceberg control
(``control`` set) is handed to its parent as the ``control`` signal, naming the command only: the
Iceberg reads the command from the ledger itself. Offsets are committed only after a batch
has been delivered, so a crash re-delivers rather than loses; the workflows dedupe on event id
and execution id.

A record that cannot be decoded is logged with its offset and skipped (it stays in the topic
for inspection); a record for an order whose workflow has already finished is logged and
skipped (the ledger has it). Run with ``python -m temporal.bridge``.

Each delivery runs in the trace its record's headers carry (:mod:`temporal.record_traces`), so
the workflows it starts or signals join the order's trace.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from opentelemetry.trace import Tracer
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from bus.kafka import consumer, start_producer
from bus.signed_records import RecordVerifier
from bus.topics import ORDERS_EVENTS, SECURITY_EVENTS
from config.settings import FloorSettings
from config.workflow_ids import lifecycle_workflow_id
from ledger.access import LedgerAccess
from ledger.command_entries import command_entry
from ledger.db import Db
from ledger.key_trust import trusted_key
from ledger.record_keys import writer_keys
from ledger.span_store import SpanStore
from observability.flood import FloodSummary
from observability.logs import setup_logs
from observability.prometheus import MetricsServer
from observability.security import SecurityLog, SecurityRecorder, unverified_record_event
from observability.telemetry import install_global, observe_counts, setup
from observability.tracing import flush_tracing, setup_tracing
from temporal import session_records
from temporal.client import NotAnIceberg, connect, report_session_change, start_iceberg
from temporal.config import TASK_QUEUE
from temporal.record_traces import RawRecord, bridge_tracer, delivering
from trading.commands import Command, CommandInvalid, CommandKind, TimeInForce
from trading.order_events import OrderEvent, OrderEventError, encode, from_dict
from trading.record_signing import RecordRefused
from trading.session_calendar import SessionCalendar
from trading.signing import EnvelopeInvalid, SignatureInvalid, SignedCommand, public_key_from_bytes
from workflows import ticket
from workflows.iceberg import ControlSignal
from workflows.order_lifecycle import LifecycleInput, OrderLifecycle
from workflows.signed_events import SignedOrderEvent

log = logging.getLogger(__name__)

GROUP_ID = "temporal-bridge"


@dataclass
class BridgeStats:
    delivered: int = 0
    undecodable: int = 0
    finished: int = 0
    orphan_slices: int = 0
    session_changes: int = 0
    icebergs_started: int = 0
    icebergs_already_started: int = 0
    controls: int = 0
    unverified: int = 0
    """Records dropped because no writer of their topic signed them."""
    parents_not_ledgered: int = 0
    """Iceberg parent records the ledger does not back (no accepted entry, or not genuine)."""
    errors: list[str] = field(default_factory=list)


def iceberg_expiry(command: Command, accepted_at: datetime, calendar: SessionCalendar) -> datetime | None:
    """When an iceberg parent stops sending slices: a DAY parent (the default) at the first
    session close at or after its acceptance, as its DAY slices' lifecycles expire; any other
    time in force (GTC), never."""
    day = (command.tif or TimeInForce.DAY) is TimeInForce.DAY
    return calendar.close_after(accepted_at) if day else None


class Bridge:
    def __init__(
        self,
        client: Client,
        *,
        ledger: Db,
        security: SecurityRecorder,
        task_queue: str = TASK_QUEUE,
        calendar: SessionCalendar | None = None,
        linger_seconds: float = 300.0,
        sniper_agent: str = "sniper",
        flood_window: timedelta = timedelta(seconds=60),
        tracer: Tracer | None = None,
    ) -> None:
        self._client = client
        self._tracer = tracer or bridge_tracer()
        self._ledger = ledger
        # Forged records cost a few security events per partition and window, not one each.
        self._security = FloodSummary(security, flood_window)
        self._verifier = RecordVerifier(lambda: writer_keys(ledger))
        self._sniper = sniper_agent
        self._task_queue = task_queue
        self._calendar = calendar or SessionCalendar()
        self._linger = linger_seconds
        self.stats = BridgeStats()

    def lifecycle_input(self, event: OrderEvent) -> LifecycleInput:
        day = event.tif in (None, "DAY")
        return LifecycleInput(
            command_id=event.command_id,
            account=event.account,
            symbol=event.symbol,
            agent_id=event.agent_id,
            side=event.side,
            quantity=event.quantity,
            parent_id=event.parent_id,
            tif=event.tif or "DAY",
            expires_at=self._calendar.close_after(event.ts) if day else None,
            linger_seconds=self._linger,
        )

    async def deliver(self, event: OrderEvent, signed: bytes | None = None) -> None:
        """Drive the workflows this verified record concerns (idempotent: safe to call again).
        ``signed``: the record as its writer signed it, passed on to the workflows (default: the
        event encoded, which a workflow that checks signatures ignores)."""
        if event.iceberg_parent:
            await self._start_iceberg(event)
            self.stats.delivered += 1
            return
        if event.control is not None:
            await self._deliver_control(event)
            self.stats.delivered += 1
            return
        # Workflows verify the record again themselves: they are sent it as it was signed.
        record = (signed if signed is not None else encode(event)).decode()
        inp = self.lifecycle_input(event)
        try:
            await self._client.start_workflow(
                OrderLifecycle.run,
                inp,
                id=lifecycle_workflow_id(event.command_id),
                task_queue=self._task_queue,
                start_signal="record",
                start_signal_args=[SignedOrderEvent(record)],
                # A finished order's id is not reused: a late record must not start a second
                # lifecycle that knows only that record.
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                # What the list shows; the workflow's current details say what it is doing.
                static_summary=ticket.lifecycle_start(
                    inp.side, inp.quantity, inp.symbol, inp.account, inp.agent_id
                ),
                static_details=ticket.lifecycle_start_details(inp.command_id, inp.tif, inp.parent_id),
            )
        except WorkflowAlreadyStartedError:
            self.stats.finished += 1
            log.info("event %s for finished order %s: ledger only", event.event_id, event.command_id)
        if event.parent_id is not None:
            parent: WorkflowHandle = self._client.get_workflow_handle(event.parent_id)
            try:
                await parent.signal("slice_record", SignedOrderEvent(record))
            except RPCError as exc:
                if exc.status is not RPCStatusCode.NOT_FOUND:
                    raise
                self.stats.orphan_slices += 1
                log.warning("slice event %s: iceberg %s is not running", event.event_id, event.parent_id)
        self.stats.delivered += 1

    async def _deliver_control(self, event: OrderEvent) -> None:
        """Name the ledgered control to its Iceberg, which reads the command from the ledger; the
        record carries no authority of its own."""
        assert event.parent_id is not None
        parent: WorkflowHandle = self._client.get_workflow_handle(event.parent_id)
        try:
            await parent.signal("control", ControlSignal(command_id=event.command_id))
        except RPCError as exc:
            if exc.status is not RPCStatusCode.NOT_FOUND:
                raise
            log.warning("control %s: iceberg %s is not running", event.command_id, event.parent_id)
            return
        self.stats.controls += 1

    async def _start_iceberg(self, event: OrderEvent) -> None:
        try:
            command = await self._ledgered_parent(event)
            if command is None:
                return
            handle = await start_iceberg(
                self._client,
                command,
                task_queue=self._task_queue,
                agent_id=self._sniper,
                expires_at=iceberg_expiry(command, event.ts, self._calendar),
            )
        except (EnvelopeInvalid, CommandInvalid, NotAnIceberg) as exc:
            self.stats.undecodable += 1
            log.error("iceberg parent record %s cannot start a workflow: %s", event.event_id, exc)
            return
        except WorkflowAlreadyStartedError:
            self.stats.icebergs_already_started += 1
            log.info(
                "iceberg %s already started: record %s delivered again", event.command_id, event.event_id
            )
            return
        self.stats.icebergs_started += 1
        log.info("iceberg %s started as %s", event.command_id, handle.id)

    async def _ledgered_parent(self, event: OrderEvent) -> Command | None:
        """The parent command as the ledger holds it, if it holds it as an accepted iceberg
        signed by its author's registered key; None (logged) otherwise. The record's own copy of
        the envelope is never used: the ledger entry is what the floor decided on. (The Iceberg
        checks the entry again, and the author's standing, before it sends anything.)"""
        entry = await command_entry(self._ledger, event.command_id)
        problem = None
        if entry is None or entry.decision != "accepted" or entry.kind != CommandKind.ICEBERG.value:
            problem = "the ledger holds no accepted iceberg under its command id"
        else:
            envelope = SignedCommand.from_wire_dict(
                {
                    "command": json.loads(entry.payload),
                    "signer": entry.signer,
                    "scheme": entry.scheme,
                    "signature": entry.signature.hex(),
                }
            )
            key = await trusted_key(self._ledger, entry.signer)
            try:
                if key is None:
                    raise SignatureInvalid(f"key {entry.signer} is not registered")
                envelope.verify(public_key_from_bytes(key.public_key))
            except SignatureInvalid as exc:
                problem = f"its ledger entry does not verify ({exc})"
            else:
                return envelope.command
        self.stats.parents_not_ledgered += 1
        log.error("iceberg parent %s (record %s) not started: %s", event.command_id, event.event_id, problem)
        return None

    async def deliver_raw(self, records: Iterable[RawRecord]) -> None:
        for record in records:
            where, raw = record.where, record.value
            data = await self._verified(ORDERS_EVENTS, where, raw)
            if data is None:
                continue
            try:
                event = from_dict(data)
            except OrderEventError as exc:
                self.stats.undecodable += 1
                log.error("undecodable orders.events record at %s: %s", where, exc)
                continue
            with delivering(self._tracer, record, event):
                await self.deliver(event, raw)

    async def deliver_session_raw(self, records: Iterable[RawRecord]) -> None:
        for where, raw, _ in records:
            if await self._verified(session_records.SESSIONS_TOPIC, where, raw) is None:
                continue
            try:
                account, change = session_records.decode(raw)
            except session_records.SessionRecordError as exc:
                self.stats.undecodable += 1
                log.error("undecodable %s record at %s: %s", session_records.SESSIONS_TOPIC, where, exc)
                continue
            await report_session_change(self._client, account, change, task_queue=self._task_queue)
            self.stats.session_changes += 1

    async def _verified(self, topic: str, where: str, raw: bytes) -> dict[str, Any] | None:
        """The record if a writer of ``topic`` signed it; else None, and a security event."""
        try:
            return await self._verifier.verify(topic, raw)
        except RecordRefused as exc:
            self.stats.unverified += 1
            await self._security.record(
                unverified_record_event(topic, where, raw, exc, source="temporal-bridge")
            )
            return None

    async def close(self) -> None:
        """Write the counts of the flood windows still open (when the bridge stops)."""
        await self._security.close()

    async def run(self, consumer: AIOKafkaConsumer, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        summaries = asyncio.create_task(self._security.run(), name="flood-summaries")
        try:
            await self._bridge(consumer, stop)
        finally:
            summaries.cancel()
            await self.close()

    async def _bridge(self, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> None:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=200)
            for tp, records in batches.items():
                raw = [
                    RawRecord(f"{tp.topic}[{tp.partition}]@{r.offset}", r.value, r.headers or ())
                    for r in records
                    if r.value is not None
                ]
                if tp.topic == session_records.SESSIONS_TOPIC:
                    await self.deliver_session_raw(raw)
                else:
                    await self.deliver_raw(raw)
            if batches:
                try:
                    await consumer.commit()
                except KafkaError as exc:
                    # A broker that restarted without its log no longer knows the group or the
                    # topic until it is made again; the next batch's commit covers these records,
                    # and a record delivered again is delivered idempotently.
                    log.warning("could not commit offsets (%s: %s); going on", type(exc).__name__, exc)


def serve_bridge_metrics(bridge: Bridge, settings: FloorSettings) -> MetricsServer:
    """``GET /metrics`` on ``settings.bridge_health_port``: the bridge's record counts by outcome."""
    telemetry = setup("bridge")
    install_global(telemetry)
    observe_counts(
        telemetry,
        "floor.bridge.records",
        lambda: {k: v for k, v in dataclasses.asdict(bridge.stats).items() if isinstance(v, int)},
        "outcome",
        "orders.events and broker.sessions records the bridge handled, by outcome",
    )
    server = MetricsServer(telemetry)
    port = server.start(settings.host, settings.bridge_health_port, "FLOOR_BRIDGE_HEALTH_PORT")
    log.info("bridge metrics at http://%s:%d/metrics", settings.host, port)
    return server


def bridge_consumer(bootstrap: str, group_id: str = GROUP_ID, *, sessions: bool = False) -> AIOKafkaConsumer:
    """Consumes ``orders.events``, and ``broker.sessions`` too when ``sessions``; offsets are
    committed after delivery to Temporal, not automatically."""
    topics = (ORDERS_EVENTS, session_records.SESSIONS_TOPIC) if sessions else (ORDERS_EVENTS,)
    return consumer(bootstrap, *topics, group_id=group_id, auto_commit=False, fetch_max_wait_ms=50)


async def main(argv: list[str] | None = None) -> None:
    settings = FloorSettings()
    parser = argparse.ArgumentParser(prog="python -m temporal.bridge", description=__doc__)
    parser.add_argument("--temporal", default=settings.temporal)
    parser.add_argument("--namespace", default=settings.temporal_namespace)
    parser.add_argument("--kafka", default=settings.kafka)
    parser.add_argument(
        "--database-url",
        default=None,
        help="the ledger and key registry records are checked against (default: the worker's role)",
    )
    parser.add_argument("--group-id", default=GROUP_ID)
    parser.add_argument("--task-queue", default=TASK_QUEUE)
    parser.add_argument(
        "--sniper-agent", default="sniper", help="the agent whose key signs iceberg slices (the worker's)"
    )
    parser.add_argument(
        "--sessions",
        action="store_true",
        help=f"also bridge {session_records.SESSIONS_TOPIC} to BrokerSession",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    setup_logs("temporal-bridge")  # security and ops events as OpenTelemetry logs; flushed at exit
    client = await connect(args.temporal, args.namespace)
    # The worker's least-privilege role: read the ledger and keys, write security events.
    pool = await asyncpg.create_pool(args.database_url or settings.role_url("worker"), min_size=1, max_size=2)
    # Each delivery's span, and the Temporal client's, go to the span store through the pool.
    span_store = SpanStore(pool, asyncio.get_running_loop())
    setup_tracing("bridge", processors=[span_store])
    writing = asyncio.create_task(span_store.run(), name="span-store")
    producer = await start_producer(args.kafka, "temporal-bridge")
    consumer = bridge_consumer(args.kafka, args.group_id, sessions=args.sessions)
    await consumer.start()
    metrics_server: MetricsServer | None = None
    try:
        log.info("bridging %s to Temporal %s (%s)", ORDERS_EVENTS, args.temporal, args.task_queue)
        bridge = Bridge(
            client,
            ledger=pool,
            security=SecurityLog(LedgerAccess(pool), producer, SECURITY_EVENTS),
            task_queue=args.task_queue,
            sniper_agent=args.sniper_agent,
            flood_window=timedelta(seconds=settings.kafka_flood_window_s),
        )
        metrics_server = serve_bridge_metrics(bridge, settings)
        await bridge.run(consumer)  # writes the open windows' counts as it stops
    finally:
        if metrics_server is not None:
            metrics_server.close()
        await consumer.stop()
        await producer.stop()
        writing.cancel()
        await flush_tracing()  # an OTLP exporter's batch
        await span_store.flush()  # through the pool: before it closes
        await pool.close()


if __name__ == "__main__":
    asyncio.run(main())
