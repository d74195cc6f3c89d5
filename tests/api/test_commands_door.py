"""``POST /v1/commands`` over real HTTP against a real API process, Postgres and Kafka."""

from __future__ import annotations

import dataclasses
import json
import uuid

import asyncpg
import httpx
import pytest

from bus.topics import AGENT_COMMANDS, SECURITY_EVENTS
from ledger.keys import revoke_agent
from observability.security import CRITICAL_BREACH
from tests.factories import Agent, enter_command, new_agent
from tests.fixtures.hotpath import command_id_of, read_until
from trading import sentry
from trading.security_events import SecurityEvent
from trading.signing import SignedCommand
from trading.symbols import UNKNOWN_SYMBOL


async def post(api_url: str, body: bytes) -> httpx.Response:
    async with httpx.AsyncClient(base_url=api_url, timeout=10.0) as client:
        return await client.post("/v1/commands", content=body, headers={"Content-Type": "application/json"})


async def publish_sentinel(api_url: str, agent: Agent) -> str:
    """A valid command through the door: once it is on agent.commands, anything published
    before it would be too (one partition, one producer)."""
    env = agent.sign(enter_command(agent.agent_id))
    response = await post(api_url, env.to_wire())
    assert response.status_code == 202, response.text
    return env.command.command_id


async def assert_refused_as_breach(
    api_url: str,
    kafka_bootstrap: str,
    ledger_pool: asyncpg.Pool,
    sentinel_agent: Agent,
    body: bytes,
    reason: str,
    command_id: str,
) -> None:
    response = await post(api_url, body)
    assert response.status_code == 403, response.text
    assert response.json()["error"] == reason

    row = await ledger_pool.fetchrow(
        "SELECT severity, reason, source, remote_addr, detail FROM security_events WHERE command_id = $1",
        command_id,
    )
    assert row is not None, "no security_events row"
    assert (row["severity"], row["reason"], row["source"], row["remote_addr"]) == (
        "critical",
        reason,
        "api",
        "127.0.0.1",
    )
    assert json.loads(row["detail"])["title"] == CRITICAL_BREACH

    records = await read_until(
        kafka_bootstrap,
        SECURITY_EVENTS,
        lambda raw: SecurityEvent.decode(raw).command_id == command_id,
    )
    event = SecurityEvent.decode(records[-1])
    assert (event.title, event.reason, event.source_address) == (CRITICAL_BREACH, reason, "127.0.0.1")

    sentinel = await publish_sentinel(api_url, sentinel_agent)
    published = await read_until(kafka_bootstrap, AGENT_COMMANDS, lambda raw: command_id_of(raw) == sentinel)
    assert command_id not in {command_id_of(raw) for raw in published}, "a refused command reached Kafka"


async def test_a_valid_signed_command_is_published_to_agent_commands(
    api_url: str, kafka_bootstrap: str, agent: Agent
) -> None:
    env = agent.sign(enter_command(agent.agent_id))
    response = await post(api_url, env.to_wire())
    assert response.status_code == 202, response.text
    assert response.json()["command_id"] == env.command.command_id
    records = await read_until(
        kafka_bootstrap, AGENT_COMMANDS, lambda raw: command_id_of(raw) == env.command.command_id
    )
    assert SignedCommand.from_wire(records[-1]) == env


async def test_an_unsigned_command_is_refused_with_403_and_a_breach_event(
    api_url: str, kafka_bootstrap: str, ledger_pool: asyncpg.Pool, agent: Agent
) -> None:
    wire = agent.sign(enter_command(agent.agent_id)).to_wire_dict()
    del wire["signature"]
    await assert_refused_as_breach(
        api_url,
        kafka_bootstrap,
        ledger_pool,
        agent,
        json.dumps(wire).encode(),
        sentry.NO_SIGNATURE,
        wire["command"]["command_id"],
    )


async def test_a_tampered_command_is_refused_as_bad_signature(
    api_url: str, kafka_bootstrap: str, ledger_pool: asyncpg.Pool, agent: Agent
) -> None:
    env = agent.sign(enter_command(agent.agent_id, quantity=10))
    wire = env.to_wire_dict()
    wire["command"]["quantity"] = 10_000
    await assert_refused_as_breach(
        api_url,
        kafka_bootstrap,
        ledger_pool,
        agent,
        json.dumps(wire).encode(),
        sentry.BAD_SIGNATURE,
        env.command.command_id,
    )


async def test_a_key_that_is_not_registered_is_refused_as_unknown(
    api_url: str, kafka_bootstrap: str, ledger_pool: asyncpg.Pool, agent: Agent
) -> None:
    stranger = new_agent()
    env = stranger.sign(enter_command(stranger.agent_id))
    await assert_refused_as_breach(
        api_url,
        kafka_bootstrap,
        ledger_pool,
        agent,
        env.to_wire(),
        sentry.UNKNOWN_KEY,
        env.command.command_id,
    )


async def test_a_revoked_key_is_refused(
    api_url: str, kafka_bootstrap: str, ledger_pool: asyncpg.Pool, agent: Agent
) -> None:
    from tests.fixtures.hotpath import register

    revoked = new_agent()
    await register(ledger_pool, revoked)
    await revoke_agent(ledger_pool, revoked.agent_id)
    env = revoked.sign(enter_command(revoked.agent_id))
    await assert_refused_as_breach(
        api_url,
        kafka_bootstrap,
        ledger_pool,
        agent,
        env.to_wire(),
        sentry.REVOKED_KEY,
        env.command.command_id,
    )


async def test_a_replayed_nonce_is_refused_and_not_published_twice(
    api_url: str, kafka_bootstrap: str, ledger_pool: asyncpg.Pool, agent: Agent
) -> None:
    first = agent.sign(enter_command(agent.agent_id, nonce=f"n-{uuid.uuid4().hex}"))
    assert (await post(api_url, first.to_wire())).status_code == 202
    # Same nonce, new command id and a fresh, valid signature: still a replay.
    again = agent.sign(dataclasses.replace(first.command, command_id=f"cmd-{uuid.uuid4().hex}"))
    await assert_refused_as_breach(
        api_url,
        kafka_bootstrap,
        ledger_pool,
        agent,
        again.to_wire(),
        sentry.REPLAYED_NONCE,
        again.command.command_id,
    )


async def test_malformed_json_is_422_naming_the_body(api_url: str, ledger_pool: asyncpg.Pool) -> None:
    before = await ledger_pool.fetchval("SELECT count(*) FROM security_events")
    response = await post(api_url, b'{"command": ')
    assert response.status_code == 422
    assert response.json()["field"] == "body"
    assert await ledger_pool.fetchval("SELECT count(*) FROM security_events") == before


@pytest.mark.parametrize(
    "body",
    [
        b'{"command": ' + b"9" * 5000 + b"}",  # longer than Python converts to an int
        b"[" * 30_000 + b"]" * 30_000,  # deeper than the parser recurses, inside the body limit
    ],
    ids=["huge_integer", "deep_nesting"],
)
async def test_json_the_parser_cannot_take_is_422_not_500(
    api_url: str, ledger_pool: asyncpg.Pool, body: bytes
) -> None:
    response = await post(api_url, body)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "body"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda w: w["command"].__setitem__("side", "HOLD"), "side"),
        (lambda w: w["command"].__setitem__("limit_price", "189.5x"), "limit_price"),
        (lambda w: w["command"]["edge"].__setitem__("p", "1.5"), "edge.p"),
        (lambda w: w["command"].pop("account"), "account"),
        (lambda w: w.__setitem__("extra", "x"), "extra"),
        # Types a set lookup cannot hash once raised TypeError: a 500 instead of a 422.
        (lambda w: w["command"].__setitem__("side", ["BUY"]), "side"),
        (lambda w: w["command"].__setitem__("tif", {}), "tif"),
    ],
)
async def test_a_schema_violation_is_422_naming_the_field(
    api_url: str, agent: Agent, mutate: object, field: str
) -> None:
    wire = agent.sign(enter_command(agent.agent_id)).to_wire_dict()
    mutate(wire)  # type: ignore[operator]
    response = await post(api_url, json.dumps(wire).encode())
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field


async def test_an_order_in_a_symbol_the_floor_does_not_trade_is_422_unknown_symbol_and_not_published(
    api_url: str, kafka_bootstrap: str, agent: Agent
) -> None:
    env = agent.sign(enter_command(agent.agent_id, symbol="ZZZZ"))
    response = await post(api_url, env.to_wire())
    assert response.status_code == 422, response.text
    body = response.json()
    assert (body["error"], body["field"]) == (UNKNOWN_SYMBOL, "symbol")
    assert "FLOOR_HOTPATH_SYMBOLS" in body["detail"]

    # The floor's list decides, not the venue's: NVDA is on it and goes through.
    listed = agent.sign(enter_command(agent.agent_id, symbol="NVDA"))
    assert (await post(api_url, listed.to_wire())).status_code == 202
    published = await read_until(
        kafka_bootstrap, AGENT_COMMANDS, lambda raw: command_id_of(raw) == listed.command.command_id
    )
    assert env.command.command_id not in {command_id_of(raw) for raw in published}


async def test_health_answers(api_url: str) -> None:
    async with httpx.AsyncClient(base_url=api_url) as client:
        response = await client.get("/health")
    assert response.status_code == 200 and response.json()["status"] == "ok"


@pytest.mark.parametrize(
    ("case", "reason", "severity"),
    [
        ("stale", sentry.STALE, "warning"),
        ("account", sentry.ACCOUNT_NOT_ALLOWED, "error"),
        ("impersonation", sentry.SIGNER_MISMATCH, "critical"),
    ],
)
async def test_other_sentry_refusals_are_403_with_their_severity(
    api_url: str, ledger_pool: asyncpg.Pool, case: str, reason: str, severity: str
) -> None:
    from datetime import timedelta

    from tests.fixtures.hotpath import register
    from trading.commands import utc_now_ms

    agent = new_agent(accounts=frozenset({"DU100"}))
    await register(ledger_pool, agent)
    if case == "stale":
        command = enter_command(agent.agent_id, issued_at=utc_now_ms() - timedelta(minutes=2))
    elif case == "account":
        command = enter_command(agent.agent_id, account="DU999")
    else:
        command = enter_command("someone-else")
    response = await post(api_url, agent.sign(command).to_wire())
    assert response.status_code == 403 and response.json()["error"] == reason
    row = await ledger_pool.fetchrow(
        "SELECT severity, remote_addr, detail FROM security_events WHERE command_id = $1", command.command_id
    )
    assert (row["severity"], row["remote_addr"]) == (severity, "127.0.0.1")
    expected_title = CRITICAL_BREACH if severity == "critical" else "Security Refusal"
    assert json.loads(row["detail"])["title"] == expected_title


async def test_a_traders_key_is_refused_at_the_door_without_the_traders_authorization(
    api_url: str, kafka_bootstrap: str, ledger_pool: asyncpg.Pool, agent: Agent
) -> None:
    """The trader's key is the API's to use after the WebAuthn checks: a command it signed with
    no authorization is a breach, and an agent's command carrying one claims what nobody checked."""
    from tests.factories import authorization, manual_enter_command, new_trader
    from tests.fixtures.hotpath import register

    alice = new_trader(accounts=frozenset({"DU100"}))
    await register(ledger_pool, alice, alice.role)
    bare = alice.sign(manual_enter_command(alice.agent_id, quantity=5))
    await assert_refused_as_breach(
        api_url, kafka_bootstrap, ledger_pool, agent, bare.to_wire(), sentry.TRADER_UNAUTHORISED,
        bare.command.command_id,
    )  # fmt: skip
    claimed = agent.sign(
        manual_enter_command(agent.agent_id, quantity=5, authorization=authorization(alice.trader))
    )
    response = await post(api_url, claimed.to_wire())
    assert response.status_code == 403 and response.json()["error"] == sentry.TRADER_UNAUTHORISED

    authorised = alice.sign(
        manual_enter_command(alice.agent_id, quantity=5, authorization=authorization(alice.trader))
    )
    response = await post(api_url, authorised.to_wire())
    assert response.status_code == 202, response.text
