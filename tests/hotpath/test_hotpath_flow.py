"""Signed command to a paper fill through the real hot path process, Kafka, Postgres and the
paper venue; every refusal named in orders.events and the ledger; write-ahead."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal

import asyncpg
import httpx
import pytest

from bus.topics import AGENT_COMMANDS, ORDERS_EVENTS, SECURITY_EVENTS
from ledger.append import Decision, append_command
from ledger.keys import revoke_agent
from ledger.verify import verify_ledger
from tests.factories import cancel_all_command, cancel_command, enter_command, exit_command, new_agent
from tests.fixtures.hotpath import decoded, read_until
from tests.helpers import eventually
from tests.hotpath.conftest import TIGHT_ACCOUNT as TIGHT
from tests.hotpath.conftest import VENUE_ACCOUNT
from tests.hotpath.live_floor import LiveFloor
from trading import sentry
from trading.commands import Command, CommandKind, Side, TimeInForce, utc_now_ms
from trading.order_events import EventKind
from trading.security_events import SecurityEvent
from trading.signing import SignedCommand


async def test_a_signed_command_is_filled_at_the_venue_and_the_ledger_verifies(
    on_broker: LiveFloor, postgres_url: str
) -> None:
    live = on_broker
    limit = await live.above_ask(Decimal("1.01"))  # marketable: fills at once
    env = await live.submit(live.enter(limit=limit, stop=limit - 5, quantity=7))

    filled = await live.event(env.command.command_id, EventKind.FILLED, EventKind.REJECTED)
    assert filled.kind is EventKind.FILLED, filled.reason
    assert filled.quantity == filled.filled_qty == 7  # the requested bound binds below Kelly
    assert filled.avg_fill_price is not None and filled.avg_fill_price <= limit

    entry = await live.entry(env.command.command_id)
    assert (entry["decision"], entry["authenticated"], entry["signature_hash"]) == (
        "accepted",
        True,
        env.signature_hash,
    )
    kinds = await eventually(lambda: _has_all(live, env.command.command_id, {"accepted", "filled"}))
    assert kinds[0] == "accepted" and kinds[-1] == "filled"
    report = await verify_ledger(postgres_url)
    assert report.ok, report
    assert filled.last_fill is not None

    async def order_commission() -> Decimal | None:
        """The order's commission once every execution's report is in (IB charges an order's
        minimum on its first fill, so a later fill's own commission may be 0)."""
        row = await live.pool.fetchrow(
            "WITH execs AS (SELECT DISTINCT exec_id FROM order_events"
            "  WHERE command_id = $1 AND exec_id IS NOT NULL),"
            " reports AS (SELECT DISTINCT ON (detail->>'exec_id') (detail->>'commission')::numeric AS c"
            "  FROM ops_events WHERE kind = 'broker.commission'"
            "  AND detail->>'exec_id' IN (SELECT exec_id FROM execs))"
            " SELECT (SELECT count(*) FROM execs) AS executions, count(*) AS reports, sum(c) AS total"
            " FROM reports",
            env.command.command_id,
        )
        done = row["executions"] and row["reports"] == row["executions"]
        return Decimal(row["total"]) if done else None

    (commission,) = await eventually(lambda: _reported(order_commission))
    # IB charges its minimum on the first fill; Schwab's online equity trades are commission-free.
    assert commission > 0 if live.broker == "ibkr" else commission == 0

    async with httpx.AsyncClient() as client:
        stats = (await client.get(f"{live.hotpath.control_url}/stats")).json()["timings"]
        metrics = (await client.get(f"{live.hotpath.control_url}/metrics.json")).json()
    assert sum(p["value"] for p in metrics["floor.orders.sent"]) >= 1
    assert metrics["floor.hotpath.intake_to_write"][0]["count"] >= 1
    assert sum(p["value"] for p in metrics["floor.fills.shares"] if p["attributes"] == {"side": "BUY"}) >= 7
    assert sum(p["count"] for p in metrics["floor.broker.ack_latency"]) >= 1
    timing = next(t for t in stats if t["command_id"] == env.command.command_id)
    assert timing["intake_ns"] < timing["decided_ns"] < timing["ledgered_ns"] < timing["write_ns"]
    assert timing["produce_ts_ms"] is not None


async def _reported(commission: Callable[[], Awaitable[Decimal | None]]) -> tuple[Decimal] | None:
    """The commission, once reported, boxed so that a zero is a result too."""
    total = await commission()
    return None if total is None else (total,)


async def _has_all(live: LiveFloor, command_id: str, wanted: set[str]) -> list[str] | None:
    kinds = await live.kinds(command_id)
    return kinds if wanted <= set(kinds) else None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("no_edge", "sizing.no_edge"),
        ("stop_wrong_side", "risk.stop_wrong_side"),
        ("no_profile", "risk.no_profile"),
        ("unknown_symbol", "unknown_symbol"),
        ("exit_exceeds_position", "risk.exit_exceeds_position"),
        ("iceberg_max_position", "risk.max_position"),
        ("iceberg_max_gross_exposure", "risk.max_gross_exposure"),
    ],
)
async def test_each_floor_refusal_is_named_in_orders_events_and_the_ledger(
    live: LiveFloor, name: str, expected: str
) -> None:
    bid, ask = await live.quote()
    a = live.agent.agent_id

    def iceberg(total: int) -> Command:
        return Command(
            kind=CommandKind.ICEBERG, command_id=f"cmd-{uuid.uuid4().hex}", agent_id=a, account=TIGHT,
            nonce=uuid.uuid4().hex, issued_at=utc_now_ms(), symbol="AAPL", side=Side.BUY,
            edge=enter_command(a).edge, tif=TimeInForce.DAY, quantity=total, display_size=5,
        )  # fmt: skip

    commands = {
        "no_edge": lambda: enter_command(a, account=VENUE_ACCOUNT, limit=bid, p=Decimal("0.3"), b=Decimal(1)),
        "stop_wrong_side": lambda: enter_command(a, account=VENUE_ACCOUNT, limit=bid, stop=bid + 5),
        "no_profile": lambda: enter_command(a, account="DU-NOPROFILE", limit=bid, stop=bid - 5),
        # NVDA is listed at the venue but not among this hot path's symbols: it does not trade it
        # (not "no fresh price", which would send the sender looking for a market-data problem).
        "unknown_symbol": lambda: enter_command(a, account=VENUE_ACCOUNT, symbol="NVDA", limit=Decimal("100"),
                                                stop=Decimal("95")),
        # An exit only shrinks a position; the tight account holds none.
        "exit_exceeds_position": lambda: exit_command(a, account=TIGHT, side=Side.BUY, quantity=9, limit=bid),
        # An iceberg parent is held to the position limit on its total (15 on the tight account),
        # and to gross exposure ($1,000 there: 10 shares at ~$190 is over it).
        "iceberg_max_position": lambda: iceberg(100),
        "iceberg_max_gross_exposure": lambda: iceberg(10),
    }  # fmt: skip
    env = await live.submit(commands[name]())

    event = await live.event(env.command.command_id, *EventKind)
    assert (event.kind, event.reason, event.filled_qty) == (EventKind.REJECTED, expected, 0)
    entry = await live.entry(env.command.command_id)
    assert (entry["decision"], entry["reason"], entry["authenticated"]) == ("rejected", expected, True)
    assert await live.kinds(env.command.command_id) == ["rejected"]


@pytest.mark.parametrize("name", ["bad_signature", "unknown_key", "replayed_nonce", "stale"])
async def test_sentry_refusals_on_kafka_are_security_events_and_no_order_records(
    live: LiveFloor, name: str
) -> None:
    """Kafka is not a trust boundary: what bypasses the API door is checked again."""
    agent, ledger_pool = live.agent, live.pool
    a = agent.agent_id
    if name == "bad_signature":
        good = agent.sign(enter_command(a, account=VENUE_ACCOUNT, quantity=1))
        env = SignedCommand(dataclasses.replace(good.command, quantity=500), good.signer, good.signature)
        expected = sentry.BAD_SIGNATURE
    elif name == "unknown_key":
        stranger = new_agent()
        env = stranger.sign(enter_command(stranger.agent_id, account=VENUE_ACCOUNT))
        expected = sentry.UNKNOWN_KEY
    elif name == "replayed_nonce":
        first = await live.submit(enter_command(a, account="DU-NOPROFILE"))
        await live.event(first.command.command_id, EventKind.REJECTED)
        env = agent.sign(dataclasses.replace(first.command, command_id=f"cmd-{uuid.uuid4().hex}"))
        expected = sentry.REPLAYED_NONCE
    else:
        from datetime import timedelta

        env = agent.sign(
            enter_command(a, account=VENUE_ACCOUNT, issued_at=utc_now_ms() - timedelta(minutes=5))
        )
        expected = sentry.STALE
    await live.send(env)

    records = await read_until(
        live.bootstrap,
        SECURITY_EVENTS,
        lambda raw: SecurityEvent.decode(raw).command_id == env.command.command_id,
    )
    security = SecurityEvent.decode(records[-1])
    assert (security.reason, security.source) == (expected, "hotpath")
    assert security.severity.value == sentry.SEVERITY[expected].value
    row = await ledger_pool.fetchrow(
        "SELECT severity, reason FROM security_events WHERE command_id = $1 AND source = 'hotpath'",
        env.command.command_id,
    )
    assert (row["severity"], row["reason"]) == (sentry.SEVERITY[expected].value, expected)
    # What a registered key really signed is ledgered unauthenticated, as evidence that can never
    # block a genuine command; what nobody signed is no evidence of anything, and not ledgered.
    entry = await ledger_pool.fetchrow(
        "SELECT decision, reason, authenticated FROM ledger_entries"
        " WHERE signature_hash = $1 AND NOT authenticated",
        env.signature_hash,
    )
    if expected in sentry.UNATTRIBUTED:
        assert entry is None
    else:
        assert (entry["decision"], entry["reason"], entry["authenticated"]) == ("rejected", expected, False)
    # The command's id is its sender's unauthenticated claim: no order record is made under it.
    assert (
        await ledger_pool.fetchval(
            "SELECT count(*) FROM order_events WHERE command_id = $1", env.command.command_id
        )
        == 0
    )


async def test_the_broker_never_sees_an_order_before_its_ledger_entry_commits(live: LiveFloor) -> None:
    ledger_pool = live.pool
    resting = await live.below_bid(Decimal("0.9"))  # far below the market: rests
    before = await live.open_orders()
    env = live.agent.sign(live.enter(limit=resting, stop=resting - 5, quantity=3))

    async with ledger_pool.acquire() as blocker:
        transaction = blocker.transaction()
        await transaction.start()
        # Every append locks the ledger head first; holding it stalls the hot path's append.
        await blocker.execute("SELECT seq FROM ledger_head FOR UPDATE")
        try:
            await live.send(env)
            await eventually(lambda: _append_is_waiting(ledger_pool), timeout=20.0)
            status = await live.paper.acontrol("GET", "/status")
            assert status["open_orders"] == before, "the venue has an order the ledger has not committed"
            assert EventKind.SUBMITTED.value not in await live.kinds(env.command.command_id)
        finally:
            await transaction.rollback()

    submitted = await live.event(env.command.command_id, EventKind.SUBMITTED, EventKind.REJECTED)
    assert submitted.kind is EventKind.SUBMITTED, submitted.reason
    assert await live.open_orders() == before + 1
    seq = await ledger_pool.fetchval(
        "SELECT seq FROM ledger_entries WHERE command_id = $1 AND decision = 'accepted'",
        env.command.command_id,
    )
    assert seq is not None


async def _append_is_waiting(pool: asyncpg.Pool) -> bool:
    return bool(
        await pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND query LIKE '%ledger_append%'"
        )
    )


async def test_an_order_the_ledger_refuses_never_reaches_the_broker(live: LiveFloor) -> None:
    agent, ledger_pool = live.agent, live.pool
    resting = await live.below_bid(Decimal("0.9"))
    env = agent.sign(live.enter(limit=resting, stop=resting - 5, quantity=2))
    # The same command id already ledgered under another nonce: the unique index refuses the append.
    squatter = agent.sign(dataclasses.replace(env.command, nonce=uuid.uuid4().hex))
    await append_command(ledger_pool, squatter, decision=Decision.REJECTED, reason="test.squatter")
    before = await live.open_orders()
    await live.send(env)

    async def refused_as_replay() -> bool:
        reasons = await ledger_pool.fetch(
            "SELECT reason FROM security_events WHERE command_id = $1", env.command.command_id
        )
        return [r["reason"] for r in reasons] == [sentry.REPLAYED_COMMAND_ID]

    await eventually(refused_as_replay, timeout=20.0)

    # A later resting order proves intake moved on; only it may have reached the venue.
    sentinel = await live.submit(live.enter(limit=resting, stop=resting - 5, quantity=1))
    await live.event(sentinel.command.command_id, EventKind.SUBMITTED)
    assert await live.open_orders() == before + 1
    # The id belongs to the squatter's entry: the refused command publishes nothing under it.
    assert await live.kinds(env.command.command_id) == []


async def test_the_same_envelope_delivered_twice_is_decided_once(live: LiveFloor) -> None:
    ledger_pool = live.pool
    env = await live.submit(live.enter(account="DU-NOPROFILE"))
    await live.send(env)  # Kafka redelivers after a restart: the identical record
    sentinel = await live.submit(live.enter(account="DU-NOPROFILE"))
    records = await read_until(
        live.bootstrap,
        ORDERS_EVENTS,
        lambda raw: (e := decoded(raw)) is not None and e.command_id == sentinel.command.command_id,
    )
    events = [e for e in map(decoded, records) if e is not None]
    mine = [e for e in events if e.command_id == env.command.command_id]
    assert [(e.kind, e.reason) for e in mine] == [(EventKind.REJECTED, "risk.no_profile")]
    row = await eventually(
        lambda: ledger_pool.fetchrow(
            "SELECT severity FROM security_events"
            " WHERE command_id = $1 AND reason = 'intake.duplicate_delivery'",
            env.command.command_id,
        )
    )
    assert row["severity"] == "warning"
    assert await live.kinds(env.command.command_id) == ["rejected"]


async def test_a_record_that_is_not_a_command_is_logged_and_intake_goes_on(live: LiveFloor) -> None:
    meta = await live.producer.send_and_wait(AGENT_COMMANDS, b"\xffnot json", key=b"x/y")
    sentinel = await live.submit(live.enter(account="DU-NOPROFILE"))
    await live.event(sentinel.command.command_id, EventKind.REJECTED)
    # The source is the partition (a flood from it is summarised as one source); the offset is
    # in the detail.
    row = await live.pool.fetchrow(
        "SELECT severity, reason FROM security_events WHERE remote_addr = $1 AND detail->>'offset' = $2",
        f"{AGENT_COMMANDS}[{meta.partition}]",
        str(meta.offset),
    )
    assert (row["severity"], row["reason"]) == ("error", "intake.malformed")


async def test_a_revoked_key_stops_being_accepted_at_once(live: LiveFloor) -> None:
    ledger_pool = live.pool
    first = await live.submit(live.enter(account="DU-NOPROFILE"))
    event = await live.event(first.command.command_id, EventKind.REJECTED)
    assert event.reason == "risk.no_profile"  # the key is good: refused only further down
    await revoke_agent(ledger_pool, live.agent.agent_id)
    # The very next command: Postgres announces the revocation to the hot path, and the ledger
    # refuses the key's entries itself, so there is no periodic reload to wait for. A sentry
    # refusal makes no order record: the security event is its record.
    second = await live.submit(live.enter(account="DU-NOPROFILE"))

    async def reasons() -> list[str]:
        rows = await ledger_pool.fetch(
            "SELECT reason FROM security_events WHERE command_id = $1", second.command.command_id
        )
        return [r["reason"] for r in rows]

    assert await eventually(reasons, timeout=20) == [sentry.REVOKED_KEY]


async def test_a_cancel_command_cancels_the_working_order_and_is_ledgered(on_broker: LiveFloor) -> None:
    live = on_broker
    agent = live.agent
    order = await live.resting_buy(1)

    # Another account's agent cannot cancel it: the order is not theirs to name.
    foreign = await live.submit(cancel_command(agent.agent_id, order.command.command_id, account="DU-OTHER"))
    cancel = await live.submit(cancel_command(agent.agent_id, order.command.command_id, account=live.account))
    cancelled = await live.event(order.command.command_id, EventKind.CANCELLED)
    assert cancelled.filled_qty == 0
    decisions = {
        r["command_id"]: (r["decision"], r["reason"])
        for r in await live.pool.fetch(
            "SELECT command_id, decision, reason FROM ledger_entries WHERE command_id = ANY($1::text[])",
            [foreign.command.command_id, cancel.command.command_id],
        )
    }
    assert decisions == {
        foreign.command.command_id: ("rejected", "intake.unknown_order"),
        cancel.command.command_id: ("accepted", None),
    }


async def test_cancel_all_for_a_symbol_cancels_only_that_symbol(live: LiveFloor) -> None:
    agent = live.agent
    before = await live.open_orders()
    envs = {symbol: await live.resting_buy(1, symbol=symbol) for symbol in ("AAPL", "MSFT")}
    after = await live.paper.acontrol("GET", "/status")
    assert after["open_orders"] == before + 2, after

    await live.submit(cancel_all_command(agent.agent_id, account=VENUE_ACCOUNT, symbol="AAPL"))
    await live.event(envs["AAPL"].command.command_id, EventKind.CANCELLED)
    sentinel = await live.submit(live.enter(account="DU-NOPROFILE"))
    await live.event(sentinel.command.command_id, EventKind.REJECTED)
    # Every AAPL order of the account went (other tests' too); MSFT is still at the venue, so
    # cancelling it now takes exactly one more order off the book.
    remaining = await live.open_orders()
    assert remaining < after["open_orders"]
    await live.submit(cancel_command(agent.agent_id, envs["MSFT"].command.command_id, account=VENUE_ACCOUNT))
    await live.event(envs["MSFT"].command.command_id, EventKind.CANCELLED)
    await eventually(lambda: _open_orders_are(live, remaining - 1), timeout=10.0)


async def _open_orders_are(live: LiveFloor, expected: int) -> bool:
    return await live.open_orders() == expected
