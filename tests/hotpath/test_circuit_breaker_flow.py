"""Circuit breaker end to end: a flash crash at the paper venue cancels every open order,
halts intake and is ledgered; only an operator's signed command re-arms (or trips) the floor,
each a ledger entry naming the signer; a hot path restarted while halted comes up halted and
sends none of the orders it held."""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer
from prometheus_client.metrics_core import Metric
from typer.testing import CliRunner

from bus.topics import AGENT_COMMANDS
from floor.breaker_cmd import app as breaker_app
from floor.breaker_cmd import breaker_command
from hotpath.control import READ_ONLY
from ledger.append import Decision, append_command
from tests.factories import Agent
from tests.helpers import eventually
from tests.hotpath.conftest import HotPathProcess
from tests.hotpath.live_floor import LiveFloor
from tests.observability.scrape import families, scrape, value
from trading import sentry
from trading.circuit_breaker_state import KIND_TRIPPED, TripRecord
from trading.commands import CommandKind
from trading.order_events import EventKind
from trading.signing import SignedCommand, private_key_to_pem


async def send_breaker(producer: AIOKafkaProducer, signer: Agent, kind: CommandKind) -> SignedCommand:
    envelope = signer.sign(breaker_command(kind, signer.agent_id))
    await producer.send_and_wait(AGENT_COMMANDS, envelope.to_wire(), key=b"*/")
    return envelope


async def applied(hotpath: HotPathProcess, command_id: str) -> bool:
    """The hot path shows this breaker command behind its trading state."""
    change = (await hotpath.health())["breaker"]
    return isinstance(change, dict) and change["command_id"] == command_id


async def rearm(hotpath: HotPathProcess, producer: AIOKafkaProducer, operator: Agent) -> None:
    """Leave the floor ACTIVE for the suites after this one: the state outlives the process."""
    if (await hotpath.health())["trading_state"] != "ACTIVE":
        arm = await send_breaker(producer, operator, CommandKind.BREAKER_ARM)
        await eventually(lambda: applied(hotpath, arm.command.command_id), timeout=20.0)


async def security_reasons(pool: asyncpg.Pool, command_id: str) -> list[str]:
    rows = await pool.fetch(
        "SELECT reason FROM security_events WHERE command_id = $1 ORDER BY id", command_id
    )
    return [r["reason"] for r in rows]


async def test_a_flash_crash_is_ledgered_cancels_every_open_order_and_halts_until_an_operator_re_arms(
    on_broker: LiveFloor, operator: Agent
) -> None:
    live = on_broker
    # Priced 20% under the bid: below a whole flash crash, so it never fills.
    working = await live.resting_buy(2, Decimal("0.80"))
    resting = working.command.limit_price
    assert await live.open_orders() >= 1
    crash_from = await live.pool.fetchval("SELECT max(seq) FROM ledger_entries")
    metrics_url = f"{live.hotpath.control_url}/metrics"
    before = families(await scrape(metrics_url))

    await live.paper.acontrol("POST", "/symbols/AAPL/flash-crash", {"pct": 15, "ms": 300})
    try:
        cancelled = await live.event(working.command.command_id, EventKind.CANCELLED)
        assert cancelled.filled_qty == 0
        await eventually(lambda: _open_orders(live, 0), timeout=10.0)
        health = await live.hotpath.health()
        assert health["trading_state"] == "HALTED"
        trip = health["last_trip"]
        assert isinstance(trip, dict) and trip["symbol"] == "AAPL" and Decimal(trip["drop_pct"]) >= 10
        assert trip["tick_to_cancel_us"] < 50_000  # goal: within 50 ms of the crashing tick

        # The trip, its cancel time and, once every acknowledgement is in, its sweep, as metrics.
        async def sweep_counted() -> dict[str, Metric] | None:
            found = families(await scrape(metrics_url))
            swept = "floor_breaker_sweep_seconds"
            grew = value(found, swept, f"{swept}_count") > value(before, swept, f"{swept}_count")
            return found if grew else None

        after = await eventually(sweep_counted, timeout=10.0)
        trips = ("floor_breaker_trips", "floor_breaker_trips_total")
        assert value(after, *trips, symbol="AAPL") == value(before, *trips, symbol="AAPL") + 1
        cancel = "floor_breaker_cancel_seconds"
        assert value(after, cancel, f"{cancel}_count") == value(before, cancel, f"{cancel}_count") + 1

        # The trip is a ledger entry signed by the floor's breaker key: symbol, move and time.
        entry = await eventually(lambda: _trip_entry(live.pool, crash_from), timeout=10.0)
        record = TripRecord.from_canonical(bytes(entry["payload"]))
        assert (record.symbol, record.threshold_pct) == ("AAPL", Decimal(10))
        assert record.drop_pct == Decimal(trip["drop_pct"]) and record.price < record.reference_high
        # Signed with it, what the cancel did: the orders it went out for (ours at least), how fast.
        assert record.cancelled_orders is not None and record.cancelled_orders >= 1
        assert record.tick_to_cancel_us is not None and record.tick_to_cancel_us < 50_000
        assert json.loads(entry["detail"])["cancelled_orders"] == record.cancelled_orders  # for people
        assert (entry["decision"], entry["role"], entry["agent_id"]) == (
            "applied",
            "service",
            record.agent_id,
        )

        halted = await live.submit(live.enter(limit=resting, stop=resting - 5))
        refused = await live.event(halted.command.command_id, *EventKind)
        assert (refused.kind, refused.reason) == (EventKind.REJECTED, "breaker.halted")
        assert await live.kinds(halted.command.command_id) == ["rejected"]

        # The control port changes nothing: no credentials there, so no re-arm either.
        async with httpx.AsyncClient(timeout=5.0) as client:
            answer = await client.post(f"{live.hotpath.control_url}/breaker/arm")
        assert (answer.status_code, answer.json()) == (405, {"error": READ_ONLY})
        # Unsigned, and signed by an agent's key: refused, named, a security event each.
        unsigned = json.loads(
            operator.sign(breaker_command(CommandKind.BREAKER_ARM, operator.agent_id)).to_wire()
        )
        del unsigned["signature"]
        await live.producer.send_and_wait(AGENT_COMMANDS, json.dumps(unsigned).encode(), key=b"*/")
        by_agent = await send_breaker(live.producer, live.agent, CommandKind.BREAKER_ARM)
        for command_id, reason in (
            (unsigned["command"]["command_id"], sentry.NO_SIGNATURE),
            (by_agent.command.command_id, sentry.NOT_OPERATOR),
        ):
            await eventually(lambda c=command_id, r=reason: _reasons_are(live.pool, c, [r]), timeout=10.0)
        assert (await live.hotpath.health())["trading_state"] == "HALTED"

        arm = await send_breaker(live.producer, operator, CommandKind.BREAKER_ARM)
        await eventually(lambda: applied(live.hotpath, arm.command.command_id), timeout=20.0)
    finally:
        await rearm(live.hotpath, live.producer, operator)
        # Restore the price for the rest of the session (up 1/0.85 - 1 = 17.65%).
        await live.paper.acontrol("POST", "/symbols/AAPL/move", {"pct": 17.65, "ms": 0})
    assert (await live.hotpath.health())["trading_state"] == "ACTIVE"
    armed = await live.pool.fetchrow(
        "SELECT kind, agent_id, signer, decision FROM ledger_entries WHERE command_id = $1 AND authenticated",
        arm.command.command_id,
    )
    assert dict(armed) == {"kind": "breaker_arm", "agent_id": operator.agent_id, "signer": operator.key_id,
                           "decision": "accepted"}  # fmt: skip
    ops = await live.pool.fetch(
        "SELECT kind, severity, detail FROM ops_events WHERE source = 'hotpath' AND kind LIKE 'breaker.%'"
        " ORDER BY id"
    )
    assert [(r["kind"], r["severity"]) for r in ops][-2:] == [
        ("breaker.tripped", "critical"),
        ("breaker.armed", "warning"),
    ]
    assert json.loads(ops[-1]["detail"])["by"] == operator.agent_id

    accepted = await live.submit(live.enter(limit=resting, stop=resting - 5, quantity=1))
    after = await live.event(accepted.command.command_id, EventKind.SUBMITTED, EventKind.REJECTED)
    assert after.kind is EventKind.SUBMITTED, after.reason


async def test_an_operators_trip_survives_a_restart_which_sends_no_held_order_until_re_armed(
    live: LiveFloor, operator: Agent, api_url: str, tmp_path: Path
) -> None:
    # Priced 20% under the bid: below a whole flash crash, so it never fills.
    working = await live.resting_buy(2, Decimal("0.80"))
    resting = working.command.limit_price
    held = live.agent.sign(live.enter(limit=resting, stop=resting - 5))
    try:
        trip = await send_breaker(live.producer, operator, CommandKind.BREAKER_TRIP)
        await eventually(lambda: applied(live.hotpath, trip.command.command_id), timeout=20.0)
        assert (await live.hotpath.health())["trading_state"] == "HALTED"
        await live.event(working.command.command_id, EventKind.CANCELLED)
        tripped = await live.pool.fetchrow(
            "SELECT kind, account, agent_id, signer FROM ledger_entries"
            " WHERE command_id = $1 AND authenticated",
            trip.command.command_id,
        )
        assert dict(tripped) == {"kind": "breaker_trip", "account": "*", "agent_id": operator.agent_id,
                                 "signer": operator.key_id}  # fmt: skip

        async def ledgered_but_never_sent() -> None:
            # As a hot path leaves an order it committed but could not send (the broker was down).
            await append_command(
                live.pool,
                held,
                decision=Decision.ACCEPTED,
                detail={"quantity": 1, "entry_price": str(resting)},
            )

        await live.hotpath.restart(while_down=ledgered_but_never_sent)
        health = await live.hotpath.health()
        assert health["trading_state"] == "HALTED"
        assert (
            isinstance(health["breaker"], dict) and health["breaker"]["command_id"] == trip.command.command_id
        )
        cancelled = await live.event(held.command.command_id, EventKind.CANCELLED)
        assert cancelled.filled_qty == 0
        assert "submitted" not in await live.kinds(held.command.command_id)
        await eventually(lambda: _open_orders(live, 0), timeout=10.0)

        # Re-armed by the operator from the command line: signed with the key file, through the door.
        (tmp_path / "keys").mkdir()
        (tmp_path / "keys" / f"{operator.agent_id}.key").write_bytes(private_key_to_pem(operator.private_key))
        os.chmod(tmp_path / "keys" / f"{operator.agent_id}.key", 0o600)
        result = CliRunner().invoke(
            breaker_app,
            ["arm", "--as", operator.agent_id, "--api", api_url],
            env={
                "FLOOR_VAR_DIR": str(tmp_path),
                "FLOOR_HOTPATH_HEALTH_PORT": str(live.hotpath.settings.hotpath_health_port),
            },
        )
        assert result.exit_code == 0, result.output
        assert f"breaker re-armed by {operator.agent_id}" in result.output and "ACTIVE" in result.output
    finally:
        await rearm(live.hotpath, live.producer, operator)
    # The held order stays what the halt made it: cancelled, never sent.
    assert "submitted" not in await live.kinds(held.command.command_id)
    assert await live.open_orders() == 0


async def _trip_entry(pool: asyncpg.Pool, after_seq: int) -> asyncpg.Record | None:
    return await pool.fetchrow(
        "SELECT e.payload, e.detail, e.decision, e.agent_id, k.role FROM ledger_entries e"
        " JOIN agent_keys k ON k.key_id = e.signer WHERE e.kind = $1 AND e.seq > $2 ORDER BY e.seq LIMIT 1",
        KIND_TRIPPED,
        after_seq,
    )


async def _reasons_are(pool: asyncpg.Pool, command_id: str, expected: list[str]) -> bool:
    return await security_reasons(pool, command_id) == expected


async def _open_orders(live: LiveFloor, expected: int) -> bool:
    return await live.open_orders() == expected
