"""The span store: spans exported through the SDK's batch processor land in Postgres, a command's
trace comes back whole and in order, pruning removes only what is older than the cut, and the
runtime roles hold exactly the rights the store needs."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from config.settings import FloorSettings
from ledger import roles
from ledger.span_store import MAX_DELAY_S, SpanStore
from ledger.spans import PostgresSpanExporter, SpanRow, insert_spans, prune_spans, spans_for_command
from observability.tracing import ATTR_COMMAND_ID
from tests.helpers import eventually
from tests.ledger.conftest import make_owned_database, with_database

RUN = uuid.uuid4().hex[:8]
"""The session's span store is shared: this module's command ids are its own."""
CMD_1, CMD_2, CMD_3, CMD_4, OLD, NEW = (
    f"{name}-{RUN}" for name in ("cmd-1", "cmd-2", "cmd-3", "cmd-4", "old", "new")
)


def _row(trace_id: str, span_id: str, parent: str | None, command_id: str | None, start_ns: int) -> SpanRow:
    return SpanRow(
        trace_id, span_id, parent, f"span {span_id}", "test", command_id, start_ns, start_ns + 1000, "ok", {}
    )


async def test_exported_spans_come_back_as_the_commands_trace(ledger_pool: asyncpg.Pool) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "door"}))
    exporter = PostgresSpanExporter.to_db(asyncio.get_running_loop(), ledger_pool)
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=50))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("door", attributes={ATTR_COMMAND_ID: CMD_1}) as door:
        with tracer.start_as_current_span("intake"):
            pass
        with tracer.start_as_current_span("broker.write") as write:
            write.set_status(trace.StatusCode.ERROR)
    with tracer.start_as_current_span("another command", attributes={ATTR_COMMAND_ID: CMD_2}):
        pass
    # force_flush blocks until the export ran; the export waits on this loop: run it off-loop.
    assert await asyncio.to_thread(provider.force_flush, 5000)
    provider.shutdown()

    rows = await spans_for_command(ledger_pool, CMD_1)
    assert [r.name for r in rows] == ["door", "intake", "broker.write"]
    root = rows[0]
    trace_id = format(door.get_span_context().trace_id, "032x")
    assert {r.trace_id for r in rows} == {trace_id}
    assert root.parent_span_id is None and root.command_id == CMD_1 and root.service == "door"
    assert all(r.parent_span_id == root.span_id for r in rows[1:])
    assert rows[2].status == "error" and rows[1].status == "ok"
    assert root.attributes[ATTR_COMMAND_ID] == CMD_1
    assert root.duration_ns >= rows[1].duration_ns
    assert exporter.dropped == 0
    assert await spans_for_command(ledger_pool, "no such command") == []


async def test_the_stores_processor_writes_on_the_loop_what_ended_anywhere(ledger_pool: asyncpg.Pool) -> None:
    store = SpanStore(ledger_pool, asyncio.get_running_loop())
    provider = TracerProvider(resource=Resource.create({"service.name": "hotpath"}))
    provider.add_span_processor(store)
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("hotpath.intake", attributes={ATTR_COMMAND_ID: CMD_3}) as root:
        pass
    context = trace.set_span_in_context(root)

    def elsewhere() -> None:  # a span ended on another thread is handed to the loop
        tracer.start_span("broker.fill", context=context).end()

    await asyncio.to_thread(elsewhere)
    await asyncio.sleep(0)  # the hand-over runs on the loop
    await store.flush()
    assert [r.name for r in await spans_for_command(ledger_pool, CMD_3)] == ["hotpath.intake", "broker.fill"]
    assert (store.written, store.dropped) == (2, 0)


async def test_a_busy_processs_spans_wait_for_quiet_or_for_their_longest_delay(
    ledger_pool: asyncpg.Pool,
) -> None:
    busy = [True]
    store = SpanStore(ledger_pool, asyncio.get_running_loop(), every_s=0.01, quiet=lambda: not busy[0])
    provider = TracerProvider(resource=Resource.create({"service.name": "hotpath"}))
    provider.add_span_processor(store)
    tracer = provider.get_tracer("test")
    tracer.start_span("hotpath.intake", attributes={ATTR_COMMAND_ID: CMD_4}).end()
    writing = asyncio.create_task(store.run())
    try:
        await asyncio.sleep(0.1)  # ten turns of the writer while busy: nothing written
        assert store.written == 0 and not store.due()
        store._oldest -= MAX_DELAY_S  # the span has now waited its longest: written, busy or not
        assert store.due()
        await eventually(lambda: store.written == 1, timeout=5.0)
        tracer.start_span("broker.ack", attributes={ATTR_COMMAND_ID: CMD_4}).end()
        assert not store.due()
        busy[0] = False  # the burst is over
        await eventually(lambda: store.written == 2, timeout=5.0)
    finally:
        writing.cancel()
    assert [r.name for r in await spans_for_command(ledger_pool, CMD_4)] == ["hotpath.intake", "broker.ack"]


async def test_prune_removes_only_spans_older_than_the_cut(ledger_pool: asyncpg.Pool) -> None:
    now = datetime.now(UTC)
    old_ns = int((now - timedelta(hours=50)).timestamp() * 1e9)
    new_ns = int((now - timedelta(minutes=5)).timestamp() * 1e9)
    t_old, t_new = uuid.uuid4().hex, uuid.uuid4().hex
    await insert_spans(
        ledger_pool,
        [
            _row(t_old, "a" * 16, None, OLD, old_ns),
            _row(t_old, "b" * 16, "a" * 16, None, old_ns + 5),
            _row(t_new, "c" * 16, None, NEW, new_ns),
        ],
    )
    # A batch exported twice is kept once.
    await insert_spans(ledger_pool, [_row(t_new, "c" * 16, None, NEW, new_ns)])
    assert await prune_spans(ledger_pool, now - timedelta(hours=48)) >= 2  # the store is the session's
    assert await spans_for_command(ledger_pool, OLD) == []
    assert [r.span_id for r in await spans_for_command(ledger_pool, NEW)] == ["c" * 16]


@pytest.fixture(scope="module")
def owned_spans_database(postgres_url: str, floor_settings: FloorSettings) -> str:
    return make_owned_database(postgres_url, floor_settings.owner_url, "spans")


@pytest.fixture
async def connect_as(
    owned_spans_database: str, floor_settings: FloorSettings
) -> AsyncIterator[dict[str, asyncpg.Connection]]:
    conns = {
        role.process: await asyncpg.connect(
            with_database(floor_settings.role_url(role.process), owned_spans_database)
        )
        for role in roles.RUNTIME_ROLES
    }
    yield conns
    for conn in conns.values():
        await conn.close()


async def test_every_role_inserts_only_the_api_and_cli_read_and_prune(
    connect_as: dict[str, asyncpg.Connection],
) -> None:
    start = int(datetime.now(UTC).timestamp() * 1e9)
    for process, conn in connect_as.items():
        await insert_spans(conn, [_row(uuid.uuid4().hex, "d" * 16, None, f"by-{process}", start)])
    for process, conn in connect_as.items():
        if process in ("api", "cli"):
            assert len(await spans_for_command(conn, "by-hotpath")) == 1
            assert await prune_spans(conn, datetime(2000, 1, 1, tzinfo=UTC)) == 0
        else:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await spans_for_command(conn, "by-hotpath")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await prune_spans(conn, datetime(2000, 1, 1, tzinfo=UTC))
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM spans")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("UPDATE spans SET name = 'x'")
