"""The hot path process: wiring of intake, broker events, market data, breaker and control port.

``python -m hotpath --health-port P [--symbols AAPL,MSFT] [--group-id hotpath]
[--breaker-agent floor-breaker]``; everything else comes from
:class:`~config.settings.FloorSettings` (the environment).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from brokers.base import Broker
from bus.command_topic import ensure_command_topic
from bus.kafka import ensure_topics, start_producer
from bus.signed_records import SigningProducer
from bus.topics import AGENT_COMMANDS, MARKET_DEPTH, MARKET_TRADES, SECURITY_EVENTS
from config.settings import FloorSettings
from hotpath.account import AccountBook
from hotpath.broker_events import BrokerEvents
from hotpath.checkpoints import LedgerCheckpointer
from hotpath.circuit_breaker import CircuitBreaker, Trip
from hotpath.circuit_breaker_log import BREAKER_AGENT, BreakerLog, load_breaker_key
from hotpath.circuit_breaker_sweep import CancelSweep, swept_metrics
from hotpath.command_loop import command_consumer, consume_commands
from hotpath.control import ControlServer
from hotpath.decided_offsets import DecidedOffsets
from hotpath.depth import DepthPublisher
from hotpath.exit_manager import ExitManager, StopMoved
from hotpath.floor_orders import FloorOrder
from hotpath.group_breaker import BreakerFollower
from hotpath.group_handover import Handover, group_command_consumer
from hotpath.group_startup import defer_to_owners
from hotpath.hot_path import HotPath, trip_dict
from hotpath.iceberg_commands import FLOOR_CONTROL
from hotpath.intake import Intake
from hotpath.ledger_store import LedgerStore
from hotpath.net_liquidation import NetLiquidationReporter
from hotpath.order_spans import OrderSpans
from hotpath.protective_stops import ProtectiveStops
from hotpath.registry import RegistryWatch
from hotpath.sessions import SESSIONS_TOPIC
from hotpath.startup import restore_and_connect, resume
from hotpath.stop_guard import StopGuard, send_command
from hotpath.stop_level_writer import StopLevelWriter
from hotpath.streams import stream_symbols
from hotpath.trades import TradePublisher
from hotpath.trailing_restore import reattach_trailing_stops
from ledger.checkpoints import CHECKPOINT_AGENT, CHECKPOINTS_FILE
from ledger.db import Db, DedicatedConnection, keep_session
from ledger.span_store import QUIET_S, SpanStore
from observability.flood import FloodSummary
from observability.gc_pauses import GcPauses, IdleCollector, freeze_start_up
from observability.logs import setup_logs
from observability.prometheus import exposition, registry_for
from observability.security import SecurityLog
from observability.telemetry import install_global, setup
from observability.tracing import flush_tracing, setup_tracing, tracer, tracing_enabled
from trading.iceberg_parents import FloorKeys
from trading.record_signing import HOTPATH_WRITER
from trading.signing import KeyInvalid, private_key_from_pem
from trading.trailing_pacing import ModifyBudget

log = logging.getLogger("hotpath")

SPAN_QUIET_NS = int(QUIET_S * 1e9)

# FloorSettings.command_fetch_wait_ms sets the command fetch's wait. Tansu wakes no waiting
# fetch on produce: a fetch that found nothing reads the log again only as its wait runs out,
# so a command waits for the fetch in flight to end (python -m bench.kafka_hop isolates the
# hop). 5 ms it is against the embedded Tansu: 1 ms took ~0.6 ms off the hop's median in short
# runs, but within two minutes of steady commands Tansu's CPU climbed to ~75% and commands
# stopped arriving (bench.hotpath with 2,000 commands; bench.kafka_hop --n 4000); 2 ms held
# for 100 s with a p99 twice 5 ms's. 5 ms costs ~5% of a core here and in the broker. A real
# Kafka answers a waiting fetch when a record arrives, so there a long wait costs no latency.
DRAIN_TIMEOUT_S = 5.0


class RecordKeyMissing(RuntimeError):
    """The hot path cannot sign its records; the message says how to provide the key."""


def load_record_key(settings: FloorSettings) -> Ed25519PrivateKey:
    """The hot path's own key (``<var>/keys/floor-hotpath.key``), which signs every record it
    publishes on ``orders.events`` and ``broker.sessions``: without it no consumer would act on
    them, so the process refuses to start."""
    path = settings.keys_dir / f"{HOTPATH_WRITER}.key"
    try:
        return private_key_from_pem(path.read_bytes())
    except (OSError, KeyInvalid) as exc:
        raise RecordKeyMissing(
            f"cannot read the hot path's record key {path} ({exc}); `floor up` makes and registers it"
        ) from exc


def ledger_checkpointer(settings: FloorSettings, db: Db, producer: Any) -> LedgerCheckpointer | None:
    """The checkpointer, signing with ``var/keys/floor-ledger.key`` (made by `floor up`)."""
    path = settings.keys_dir / f"{CHECKPOINT_AGENT}.key"
    try:
        key = private_key_from_pem(path.read_bytes())
    except FileNotFoundError:
        log.warning("no %s: the ledger head is not checkpointed (run `floor up` once to make the key)", path)
        return None
    return LedgerCheckpointer(
        db, key, settings.var_dir / CHECKPOINTS_FILE, producer, every=settings.ledger_checkpoint_every
    )


def make_broker(settings: FloorSettings) -> Broker:
    """The broker of every account ``FLOOR_BROKER_ACCOUNTS`` names: IBKR's, Schwab's, or both
    behind one that routes by account (IBKR first, so it streams the market data)."""
    routes = settings.account_brokers
    brokers: dict[str, Broker] = {}
    if "ibkr" in routes.values() or not routes:
        from brokers.ibkr import IbkrBroker, IbkrConfig  # heavy (ib_async); only in the process

        brokers["ibkr"] = IbkrBroker(IbkrConfig.from_settings(settings))
    if "schwab" in routes.values():
        from brokers.schwab import SchwabBroker, SchwabConfig  # heavy (schwab-py); only in the process

        brokers["schwab"] = SchwabBroker(SchwabConfig.from_settings(settings))
    if len(brokers) == 1:
        return next(iter(brokers.values()))
    from brokers.by_account import ByAccountBroker

    return ByAccountBroker(brokers, routes)


async def run(
    settings: FloorSettings,
    health_port: int,
    symbols: Sequence[str],
    group_id: str,
    stop: asyncio.Event,
    broker: Broker | None = None,
    breaker_agent: str = BREAKER_AGENT,
    floor_keys: FloorKeys | None = None,
) -> None:
    record_key = load_record_key(settings)
    telemetry = setup("hotpath")
    install_global(telemetry)
    dsn = settings.role_url("hotpath")  # its own role: fails here, naming what to set
    # Its users keep no session state (ledger.db.keep_session): no reset round trip per query.
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4, reset=keep_session)
    # Spans go to the span store through the pool, in batches on this loop, never on the
    # order's path (ledger.span_store).
    span_store = SpanStore(pool, asyncio.get_running_loop())
    setup_tracing("hotpath", processors=[span_store])
    # Before anything else: a hot path that could not ledger its trips must not start.
    breaker_log = BreakerLog(
        pool, await load_breaker_key(pool, settings.keys_dir, breaker_agent), breaker_agent
    )
    # Ledger appends get a connection of their own: through the pool each call pays a reset
    # round trip and queues behind the order and ops event writes.
    writer = DedicatedConnection(dsn)
    await writer.connect()
    kafka_producer = await start_producer(
        settings.kafka, "hotpath", linger_ms=settings.hotpath_publish_linger_ms
    )
    producer = SigningProducer(kafka_producer, record_key)
    await ensure_topics(settings.kafka, (SESSIONS_TOPIC,))
    broker = broker or make_broker(settings)
    ledger = LedgerStore(pool, writer)
    book = AccountBook()
    accounts = settings.accounts
    orders: dict[str, FloorOrder] = {}
    spans = OrderSpans(tracer("hotpath"), orders) if tracing_enabled() else None
    hot: HotPath | None = None

    def on_move(move: StopMoved) -> None:
        if hot is not None:
            hot.trail_moves.append(move)

    # Stop levels reach Postgres in the background (coalesced), never on the tick's path.
    stop_levels = StopLevelWriter(
        pool,
        lambda command_id: order.account if (order := orders.get(command_id)) is not None else None,
        lambda kind, severity, detail: events.record_ops(kind, severity, detail),
    )
    exits = ExitManager(
        lambda ref, stop: broker.modify(ref, stop_price=stop),
        on_move,
        stop_levels.put,
        # A TRAIL entry is a stop-limit: its limit moves with its stop, in the same modify.
        modify_stop_limit=lambda ref, stop, limit: broker.modify(ref, stop_price=stop, limit_price=limit),
        budget=ModifyBudget(settings.exits_modify_rate, settings.exits_modify_burst),
        schedule=asyncio.get_running_loop().call_later,
    )
    control_key_file = settings.keys_dir / f"{FLOOR_CONTROL}.key"
    control_key = private_key_from_pem(control_key_file.read_bytes()) if control_key_file.is_file() else None
    protector = ProtectiveStops(
        exits,
        orders,
        book,
        lambda envelope: send_command(kafka_producer, envelope),
        lambda ref: broker.cancel(ref),
        control_key,
        FLOOR_CONTROL,
        lambda kind, severity, detail: events.record_ops(kind, severity, detail),
        lambda: breaker.halted,
        enabled=settings.exits_protect_entries,
    )
    book.on_change = protector.on_change
    guard = StopGuard(exits, protector, lambda kind, sev, detail: events.record_ops(kind, sev, detail))

    def order_done(order: FloorOrder) -> None:
        guard.on_done(order)  # forgets the order's trailing stop; re-places a protective stop lost
        sweep.on_done(order)

    events = BrokerEvents(
        orders,
        book,
        ledger,
        producer,
        telemetry.metrics,
        on_done=order_done,
        accounts=accounts,
        spans=spans,
    )
    # After a trip's global cancel: explicit cancels, every acknowledgement awaited, reported.
    sweep = CancelSweep(broker, orders, swept_metrics(events.record_ops, telemetry.metrics))

    def on_trip(trip: Trip) -> None:
        # Read before any cancel confirmation arrives: the orders the global cancel went out for.
        cancelled = sum(len(ids) for ids in book.working.values())
        if hot is not None:
            hot.trips.append(trip)
        telemetry.metrics.breaker_trips.add(1, {"symbol": trip.symbol})
        telemetry.metrics.breaker_cancel.record(max(0, trip.cancel_written_ns - trip.tick_recv_ns) / 1e9)
        # Its breaker.tripped event, with what the cancels did, once every acknowledgement is in.
        sweep.begin(
            trip.tick_recv_ns, {**trip_dict(trip), "working_at_global_cancel": cancelled}, trip.symbol
        )
        breaker_log.record_trip(trip, breaker, cancelled_orders=cancelled)

    breaker = CircuitBreaker(broker.cancel_all, on_trip)
    if control_key is None:
        log.warning(
            "no %s: a revoked key's icebergs will have their slices pulled but no stop ledgered;"
            " `floor up` provisions it",
            control_key_file,
        )
    # Forged records cost a few security events per partition and window, not one each.
    security = FloodSummary(
        SecurityLog(ledger, producer, SECURITY_EVENTS), timedelta(seconds=settings.kafka_flood_window_s)
    )
    intake = Intake(
        broker=broker,
        ledger=ledger,
        producer=producer,
        security=security,
        breaker=breaker,
        book=book,
        orders=orders,
        metrics=telemetry.metrics,
        exits=exits,
        emit=events.emit,
        publish_only=events.publish_only,
        breaker_log=breaker_log,
        symbols=symbols,
        control_key=control_key,
        floor_keys=floor_keys,
        market_collar_bps=settings.market_collar_bps,
        spans=spans,
    )
    intake.breaker_commands.sweep = sweep
    intake.exit_clearance = protector.clearance
    # Spans are written between bursts, not during them (ledger.span_store).
    span_store.quiet = lambda: time.perf_counter_ns() - intake.last_intake_ns >= SPAN_QUIET_NS
    hot = HotPath(intake, events, breaker, broker)
    hot.sweep = sweep
    depth = DepthPublisher(producer, MARKET_DEPTH, settings.depth_publish_interval_ms / 1000)
    tape = TradePublisher(producer, MARKET_TRADES)
    intake.on_timing = hot.timings.append
    hot.reader = telemetry.reader
    hot.gc = GcPauses(telemetry.metrics.gc_pause)
    registry = registry_for(telemetry)
    control = ControlServer(
        {
            ("GET", "/health"): hot.health,
            ("GET", "/stats"): hot.stats,
            ("GET", "/metrics.json"): hot.metrics_json,
        },
        {("GET", "/metrics"): lambda accept: exposition(registry, accept)},
    )
    handover: Handover | None = None
    if settings.hotpath_group_mode:
        # One member of a group: the partitions (accounts) it decides are the group's to give.
        handover = Handover(pool, broker, book, orders, events.record_ops)
        await ensure_command_topic(settings.kafka, settings.command_partitions)
        cmd_consumer: Any = group_command_consumer(settings, group_id, handover)
    else:
        cmd_consumer = command_consumer(settings.kafka, group_id, settings.command_fetch_wait_ms)
    offsets = DecidedOffsets(cmd_consumer)
    if handover is not None:
        handover.consumer, handover.offsets = cmd_consumer, offsets
        hot.handover = handover
    checkpointer = ledger_checkpointer(settings, pool, producer)
    tasks: list[asyncio.Task[None]] = []
    try:
        broker.set_event_handler(events.on_event)
        tasks.append(asyncio.create_task(events.run(), name="broker-events"))
        tasks.append(asyncio.create_task(stop_levels.run(), name="stop-levels"))
        tasks.append(asyncio.create_task(span_store.run(), name="span-store"))
        # The order map comes back before the broker connects, so the callbacks of orders that
        # were working before a restart are recognised as the floor's (hotpath.startup).
        startup = await restore_and_connect(pool, intake, breaker, breaker_log, events)
        if not startup.halted:
            # Every trailing stop still working trails on from its last level, not its first.
            await reattach_trailing_stops(pool, broker, intake, orders, events.record_ops)
        for position in await broker.positions():
            book.set_position(position.account, position.symbol, position.quantity, position.avg_cost)
        protector.start()  # positions and orders are the broker's now: protect what needs it
        tasks.append(asyncio.create_task(protector.run(), name="protective-stops"))
        tasks.append(asyncio.create_task(depth.run(), name="depth"))
        tasks.append(asyncio.create_task(tape.run(), name="trades"))
        tasks.append(asyncio.create_task(security.run(), name="flood-summaries"))
        intake.symbols = await stream_symbols(broker, symbols, hot.on_quote, depth.on_depth, tape.on_trade)
        await intake.warm()
        # What the ledger held but the broker never got goes out only if it would now.
        if settings.hotpath_group_mode:
            # What the ledger holds unsent is, in a group, most likely a live member's.
            startup = defer_to_owners(startup, intake, events.record_ops)
        await resume(pool, intake, startup, events)
        tasks.append(
            asyncio.create_task(NetLiquidationReporter(broker, pool, accounts).run(), name="net-liq")
        )
        # Keys and profiles are reloaded off the order path, as soon as Postgres announces a change.
        tasks.append(asyncio.create_task(RegistryWatch(dsn, intake).run(), name="registry"))
        if checkpointer is not None:
            tasks.append(asyncio.create_task(checkpointer.run(), name="ledger-checkpoints"))
        # Start-up's objects live as long as the process: no full collection walks them again.
        frozen = freeze_start_up()
        hot.gc.install()
        tasks.append(asyncio.create_task(hot.gc.run(), name="gc-pauses"))
        idle_gc = IdleCollector(lambda: intake.last_intake_ns, hot.gc)
        tasks.append(asyncio.create_task(idle_gc.run(), name="idle-gc"))
        log.info("%d start-up objects moved out of the garbage collector's reach", frozen)
        await cmd_consumer.start()
        await control.start(settings.host, health_port)
        hot.consuming = True
        log.info("hot path consuming %s as %s; control port %d", AGENT_COMMANDS, group_id, health_port)
        tasks.append(asyncio.create_task(offsets.run(), name="offsets"))
        consume = asyncio.create_task(
            consume_commands(intake, cmd_consumer, offsets, hot.held), name="intake"
        )
        stopped = asyncio.create_task(stop.wait())
        watched = {consume, stopped}
        if handover is not None:
            tasks.append(asyncio.create_task(handover.run(), name="handover-refresh"))
            # A breaker command reaches one member: the others take its state from the ledger.
            follower = BreakerFollower(pool, breaker, breaker_agent, events.record_ops)
            tasks.append(asyncio.create_task(follower.run(), name="breaker-follower"))
            watched.add(asyncio.create_task(handover.failed.wait()))
        done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        if consume in done:
            consume.result()
        consume.cancel()
        if handover is not None and handover.consumer is not None:
            handover.consumer.intake_stopped()
        if handover is not None and handover.failure is not None:
            raise handover.failure
    finally:
        hot.consuming = False
        # Records already decided on reach the ledger and Kafka before the process goes.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(events.drained(), DRAIN_TIMEOUT_S)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(breaker_log.settled(), DRAIN_TIMEOUT_S)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(stop_levels.drained(), DRAIN_TIMEOUT_S)
        await protector.close()
        hot.gc.close()
        for task in tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await control.close()
        with contextlib.suppress(Exception):
            # Every decided record's offset, before the group lets go (bounded: Kafka may be away).
            await asyncio.wait_for(offsets.close(), DRAIN_TIMEOUT_S)
        with contextlib.suppress(Exception):
            await cmd_consumer.stop()
        with contextlib.suppress(Exception):
            await broker.close()
        with contextlib.suppress(Exception):
            await security.close()  # the counts of windows still open
        if checkpointer is not None:
            await checkpointer.close()  # the ledger's head as this process leaves it
        with contextlib.suppress(Exception):
            await producer.stop()
        if spans is not None:
            spans.flush()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(span_store.flush(), DRAIN_TIMEOUT_S)  # through the pool: before it closes
        with contextlib.suppress(Exception):
            await flush_tracing()  # an OTLP exporter's
        await writer.close()
        await pool.close()
        telemetry.shutdown()


def main(
    health_port: int,
    symbols: Sequence[str],
    group_id: str,
    breaker_agent: str = BREAKER_AGENT,
    floor_keys: FloorKeys | None = None,
) -> None:
    import uvloop

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    setup_logs("hotpath")  # security and ops events as OpenTelemetry logs; flushed at exit
    settings = FloorSettings()

    async def amain() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run(
            settings, health_port, symbols, group_id, stop, breaker_agent=breaker_agent, floor_keys=floor_keys
        )

    started = time.monotonic()
    uvloop.run(amain())
    log.info("hot path stopped after %.1f s", time.monotonic() - started)
