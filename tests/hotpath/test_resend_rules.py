"""What a restart does with what the ledger holds but the broker never got: only what would be
sent now goes out. A DAY order of a session that closed ends ``expired``; a held order past the
staleness limit is ``rejected: sentry.stale``; one the risk gate refuses now is rejected with the
gate's reason; one that passes is sent; an iceberg parent that never started is started.

One hot path restart (the package's process, stopped, the ledger planted as a crash leaves it,
started again) serves the process-level tests; the session-close rules for orders within the
resend horizon are checked on :func:`hotpath.recovery.restore_orders` with a fixed clock."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from bus.topics import ORDERS_EVENTS
from hotpath.account import AccountBook
from hotpath.floor_orders import FloorOrder
from hotpath.recovery import SESSION_CLOSED, restore_orders
from ledger.append import Decision, append_command
from ledger.order_events import order_state, record_order_event
from tests.factories import Agent, cancel_command, enter_command
from tests.fixtures.hotpath import await_event, decoded, fresh_agent, read_until, send
from tests.fixtures.paper import PaperStack
from tests.hotpath.conftest import VENUE_ACCOUNT, HotPathProcess
from tests.hotpath.live_floor import CENT, kinds_of
from trading import sentry
from trading.commands import Command, CommandKind, Edge, Side, TimeInForce, utc_now_ms
from trading.iceberg_parents import parent_workflow_id
from trading.order_events import EventKind
from trading.session_calendar import SessionCalendar

THURSDAY_CLOSE = datetime(2026, 12, 3, 21, 0, tzinfo=UTC)
"""16:00 in New York on a Thursday: a session close."""


@dataclass(frozen=True)
class Planted:
    """Orders a crashed hot path left ledgered as accepted and never sent, one per rule."""

    stale: str
    risky: str
    fresh: str
    past_session: str
    parent: str


def _ms(ts: datetime) -> datetime:
    return ts.replace(microsecond=ts.microsecond - ts.microsecond % 1000)


async def _ledger(pool: asyncpg.Pool, agent: Agent, command: Command, quantity: int, **detail: object) -> str:
    await append_command(
        pool, agent.sign(command), decision=Decision.ACCEPTED, detail={"quantity": quantity, **detail}
    )
    return command.command_id


@pytest.fixture(scope="module")
async def planted(
    hotpath: HotPathProcess, paper: PaperStack, ledger_pool: asyncpg.Pool, command_producer: AIOKafkaProducer
) -> AsyncIterator[Planted]:
    agent = await fresh_agent(ledger_pool)
    bid, _ = await paper.quote("AAPL")
    resting = (bid * Decimal("0.8")).quantize(CENT)
    ids: dict[str, str] = {}

    def order(quantity: int, issued_at: datetime | None = None) -> Command:
        stop = resting - 5
        return enter_command(
            agent.agent_id,
            account=VENUE_ACCOUNT,
            limit=resting,
            stop=stop,
            quantity=quantity,
            issued_at=issued_at,
        )

    async def as_a_crash_leaves_it() -> None:
        now = datetime.now(UTC)
        ids["stale"] = await _ledger(
            ledger_pool, agent, order(1, issued_at=_ms(now - timedelta(seconds=90))), 1
        )
        # Within the signed command's own quantity and the position limit, but 900 shares 5
        # below the entry risk more than the profile's dollar risk: the gate refuses it now.
        ids["risky"] = await _ledger(ledger_pool, agent, order(900), 900)
        ids["fresh"] = await _ledger(ledger_pool, agent, order(1), 1)
        # Accepted three days ago (its state row written), never acknowledged by the broker.
        old = order(1, issued_at=_ms(now - timedelta(days=3)))
        ids["past_session"] = await _ledger(ledger_pool, agent, old, 1)
        await record_order_event(
            ledger_pool,
            dataclasses.replace(FloorOrder.from_command(old, 1).event(EventKind.ACCEPTED), ts=old.issued_at),
        )
        parent = Command(
            kind=CommandKind.ICEBERG, command_id=f"cmd-{uuid.uuid4().hex}", agent_id=agent.agent_id,
            account=VENUE_ACCOUNT, nonce=uuid.uuid4().hex, issued_at=utc_now_ms(), symbol="AAPL",
            side=Side.BUY, edge=Edge(Decimal("0.55"), Decimal("2"), resting - 5), tif=TimeInForce.GTC,
            quantity=4, display_size=2, limit_price=resting,
        )  # fmt: skip
        ids["parent"] = await _ledger(
            ledger_pool, agent, parent, 4, role="parent", display_size=2, reference_price=str(resting)
        )

    await hotpath.restart(while_down=as_a_crash_leaves_it)
    yield Planted(**ids)
    # The one that went out rests at the venue: take it off for the suites after this one.
    await send(
        command_producer, agent.sign(cancel_command(agent.agent_id, ids["fresh"], account=VENUE_ACCOUNT))
    )


async def test_a_held_order_past_the_staleness_limit_is_rejected_stale_not_sent(
    planted: Planted, kafka_bootstrap: str, ledger_pool: asyncpg.Pool
) -> None:
    rejected = await await_event(kafka_bootstrap, planted.stale, EventKind.REJECTED, EventKind.SUBMITTED)
    assert (rejected.kind, rejected.reason) == (EventKind.REJECTED, sentry.STALE)
    assert "submitted" not in await kinds_of(ledger_pool, planted.stale)


async def test_a_held_order_the_risk_gate_refuses_now_is_rejected_with_its_reason(
    planted: Planted, kafka_bootstrap: str, ledger_pool: asyncpg.Pool
) -> None:
    rejected = await await_event(kafka_bootstrap, planted.risky, EventKind.REJECTED, EventKind.SUBMITTED)
    assert rejected.kind is EventKind.REJECTED
    assert rejected.reason is not None and rejected.reason.startswith("risk."), rejected.reason
    assert "submitted" not in await kinds_of(ledger_pool, planted.risky)


async def test_a_held_order_that_passes_every_check_is_sent(planted: Planted, kafka_bootstrap: str) -> None:
    sent = await await_event(kafka_bootstrap, planted.fresh, EventKind.SUBMITTED, EventKind.REJECTED)
    assert sent.kind is EventKind.SUBMITTED, sent.reason


async def test_a_held_day_order_of_a_closed_session_ends_expired(
    planted: Planted, kafka_bootstrap: str, ledger_pool: asyncpg.Pool
) -> None:
    expired = await await_event(kafka_bootstrap, planted.past_session, EventKind.EXPIRED, EventKind.SUBMITTED)
    assert (expired.kind, expired.reason) == (EventKind.EXPIRED, SESSION_CLOSED)
    state = await order_state(ledger_pool, planted.past_session)
    assert state is not None and state.kind is EventKind.EXPIRED


async def test_an_accepted_iceberg_parent_that_never_started_is_started(
    planted: Planted, kafka_bootstrap: str
) -> None:
    records = await read_until(
        kafka_bootstrap,
        ORDERS_EVENTS,
        lambda raw: (e := decoded(raw)) is not None and e.command_id == planted.parent and e.iceberg_parent,
        timeout=20.0,
    )
    record = decoded(records[-1])
    assert record is not None and record.kind is EventKind.ACCEPTED
    assert record.iceberg_envelope is not None
    assert json.loads(record.iceberg_envelope)["command"]["command_id"] == planted.parent
    assert parent_workflow_id(planted.parent) == f"iceberg-{planted.parent}"


async def test_a_day_order_held_within_the_horizon_whose_session_closed_is_expired_not_resent(
    ledger_pool: asyncpg.Pool, agent: Agent, risk_profiles: None
) -> None:
    issued = THURSDAY_CLOSE - timedelta(minutes=2)
    held = enter_command(agent.agent_id, account=VENUE_ACCOUNT, quantity=2, issued_at=issued)
    gtc = dataclasses.replace(
        enter_command(agent.agent_id, account=VENUE_ACCOUNT, quantity=2, issued_at=issued),
        tif=TimeInForce.GTC,
    )
    for command in (held, gtc):
        await _ledger(ledger_pool, agent, command, 2)

    restored = await restore_orders(
        ledger_pool, {}, AccountBook(), now=THURSDAY_CLOSE + timedelta(minutes=5), calendar=SessionCalendar()
    )

    to_send = {r.order.order_ref for r in restored.to_send}
    assert held.command_id not in to_send and gtc.command_id in to_send
    assert [
        (e.command_id, e.kind, e.reason) for e in restored.expired if e.command_id == held.command_id
    ] == [(held.command_id, EventKind.EXPIRED, SESSION_CLOSED)]
    state = await order_state(ledger_pool, held.command_id)
    assert state is not None and (state.kind, state.reason) == (EventKind.EXPIRED, SESSION_CLOSED)
