"""The desk end to end: a signed-in trader's orders go through the door to the real hot path,
which ledgers them (naming the WebAuthn assertion that authorised each) and sends them to the
paper venue; its refusals come back as the desk's named results. REST's Execute is served by
the real app over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn

from api import desk_results as d
from api.app import create_app
from api.desk import Desk
from api.door import Door
from api.hub import Hub
from api.orders import CROSS_SITE, JSON_REQUIRED
from api.principals import SESSION_COOKIE
from api.services import Services
from api.webauthn_ceremonies import Ceremonies
from api.webauthn_results import AssertionProof
from config.ports import free_port
from config.settings import FloorSettings
from tests.api.desk_live import (  # noqa: F401 - fixtures used by name
    HotPathProcess,
    active_floor,
    command_producer,
    module_hotpath,
    resting_limit,
    risk_profiles,
    trading_state,
)
from tests.fixtures.desk import ACCOUNT, DeskTrader, arm, desk_settings, desk_trader, ticket
from tests.fixtures.hotpath import await_event
from tests.fixtures.identity import sign_in
from tests.fixtures.paper import PaperStack
from tests.helpers import eventually
from tests.hotpath.conftest import TIGHT_ACCOUNT
from trading.arming_limits import OVER_NOTIONAL, OVER_QUANTITY
from trading.order_events import EventKind


async def stage(desk: Desk, who: DeskTrader, **fields: Any) -> d.Staged:
    staged = await desk.stage(who.principal, ticket(**fields))
    assert isinstance(staged, d.Staged), staged
    return staged


async def authorization_of(pool: asyncpg.Pool, command_id: str) -> tuple[str, dict[str, Any]]:
    """The decision and the signed command's authorization in the order's ledger entry."""
    row = await pool.fetchrow(
        "SELECT decision, payload FROM ledger_entries WHERE command_id = $1 AND authenticated", command_id
    )
    assert row is not None, f"no ledger entry for {command_id}"
    return row["decision"], json.loads(bytes(row["payload"]))["authorization"]


async def ledgered(pool: asyncpg.Pool, command_id: str) -> tuple[str, dict[str, Any]] | None:
    """:func:`authorization_of` once the hot path has ledgered the command."""
    exists = await pool.fetchval(
        "SELECT true FROM ledger_entries WHERE command_id = $1 AND authenticated", command_id
    )
    return await authorization_of(pool, command_id) if exists else None


def authorization_json(proof: AssertionProof | None, ceremony: str) -> dict[str, Any]:
    """The authorization a command carries when ``proof``'s assertion, made in ``ceremony``
    (``arming`` or ``session``, the sign-in), authorised it."""
    assert proof is not None
    return {
        "trader": proof.trader,
        "credential_id": proof.credential_id,
        "sign_count": proof.sign_count,
        "authenticator_data_sha256": proof.authenticator_data_sha256,
        "client_data_sha256": proof.client_data_sha256,
        "ceremony": ceremony,
    }


async def test_execute_armed_is_accepted_sent_to_the_venue_and_ledgered_with_the_arming_assertion(
    floor_up: HotPathProcess,
    desk: Desk,
    alice: DeskTrader,
    ceremonies: Ceremonies,
    paper: PaperStack,
    kafka_bootstrap: str,
    ledger_pool: asyncpg.Pool,
) -> None:
    limit = await resting_limit(paper)
    order = await stage(desk, alice, limit_price=str(limit), stop_loss=str(limit - 5), quantity=2)
    grant = await arm(ceremonies, alice)

    result = await desk.execute(alice.principal, order.staged_id)

    assert isinstance(result, d.Executed), result
    assert (result.state, result.ceremony) == (d.ACCEPTED, "arming")
    working = await await_event(kafka_bootstrap, result.command_id, EventKind.SUBMITTED)
    assert (working.account, working.symbol, working.quantity, working.limit_price) == (
        ACCOUNT,
        "AAPL",
        2,
        limit,
    )
    decision, authorization = await authorization_of(ledger_pool, result.command_id)
    proof = grant.proof
    assert decision == "accepted"
    assert authorization == authorization_json(proof, "arming") and authorization["trader"] == alice.name

    cancel = await desk.cancel(alice.principal, result.command_id)
    assert isinstance(cancel, d.CancelSent), cancel
    await await_event(kafka_bootstrap, result.command_id, EventKind.CANCELLED)


async def test_a_step_up_answer_executes_that_order_and_the_ledger_records_the_step_up(
    floor_up: HotPathProcess,
    desk: Desk,
    alice: DeskTrader,
    ceremonies: Ceremonies,
    paper: PaperStack,
    kafka_bootstrap: str,
    ledger_pool: asyncpg.Pool,
) -> None:
    limit = await resting_limit(paper)
    grant = await arm(ceremonies, alice, max_quantity=1)
    order = await stage(desk, alice, limit_price=str(limit), stop_loss=str(limit - 5), quantity=3)
    required = await desk.execute(alice.principal, order.staged_id)
    assert isinstance(required, d.StepUpRequired) and required.reason == OVER_QUANTITY
    answer = d.StepUpAnswer(required.challenge_id, alice.trader.authenticator.get(required.options_json))

    result = await desk.execute(alice.principal, order.staged_id, answer)

    assert isinstance(result, d.Executed) and result.ceremony == "step_up", result
    await await_event(kafka_bootstrap, result.command_id, EventKind.SUBMITTED)
    _, authorization = await authorization_of(ledger_pool, result.command_id)
    assert authorization["ceremony"] == "step_up"
    assert authorization["order_hash"] == order.order_hash
    assert authorization["sign_count"] > grant.proof.sign_count
    assert isinstance(await desk.cancel_all(alice.principal, ACCOUNT, "AAPL"), d.CancelSent)
    await await_event(kafka_bootstrap, result.command_id, EventKind.CANCELLED)


async def test_a_staged_order_executes_once_however_often_execute_is_pressed(
    floor_up: HotPathProcess,
    desk: Desk,
    alice: DeskTrader,
    ceremonies: Ceremonies,
    paper: PaperStack,
    kafka_bootstrap: str,
    ledger_pool: asyncpg.Pool,
) -> None:
    limit = await resting_limit(paper)
    order = await stage(desk, alice, limit_price=str(limit), stop_loss=str(limit - 5))
    await arm(ceremonies, alice)

    results = await asyncio.gather(*(desk.execute(alice.principal, order.staged_id) for _ in range(3)))
    again = await desk.execute(alice.principal, order.staged_id)

    executed = [r for r in results if isinstance(r, d.Executed)]
    assert len(executed) == 1, results
    assert all(
        isinstance(r, d.Invalid) and r.reason == d.ALREADY_EXECUTED
        for r in [*results, again]
        if r not in executed
    )
    entries = await ledger_pool.fetchval(
        "SELECT count(*) FROM ledger_entries WHERE agent_id = $1 AND kind = 'enter'", alice.agent_id
    )
    assert entries == 1
    await await_event(kafka_bootstrap, executed[0].command_id, EventKind.SUBMITTED)
    assert isinstance(await desk.cancel(alice.principal, executed[0].command_id), d.CancelSent)
    await await_event(kafka_bootstrap, executed[0].command_id, EventKind.CANCELLED)


async def test_an_order_beyond_the_risk_profile_is_risk_rejected_and_ledgered(
    floor_up: HotPathProcess,
    desk: Desk,
    alice: DeskTrader,
    ceremonies: Ceremonies,
    paper: PaperStack,
    ledger_pool: asyncpg.Pool,
) -> None:
    # No stop loss: the whole notional is at risk, far above the account's Max Dollar Risk.
    limit = await resting_limit(paper)
    order = await stage(desk, alice, limit_price=str(limit), quantity=100)
    await arm(ceremonies, alice)

    result = await desk.execute(alice.principal, order.staged_id)

    assert isinstance(result, d.RiskRejected), result
    assert result.reason.startswith("risk.")
    decision, authorization = await authorization_of(ledger_pool, result.command_id)
    assert decision == "rejected" and authorization["trader"] == alice.name


async def test_a_trader_who_signed_in_but_never_armed_cancels_a_working_order_with_the_sign_in(
    floor_up: HotPathProcess,
    desk: Desk,
    alice: DeskTrader,
    ceremonies: Ceremonies,
    paper: PaperStack,
    kafka_bootstrap: str,
    ledger_pool: asyncpg.Pool,
) -> None:
    # The order comes from another session of hers (another browser) that armed; this one never did.
    elsewhere = DeskTrader(alice.trader, *await sign_in(ceremonies, alice.trader))
    limit = await resting_limit(paper)
    order = await stage(desk, elsewhere, limit_price=str(limit), stop_loss=str(limit - 5))
    await arm(ceremonies, elsewhere)
    executed = await desk.execute(elsewhere.principal, order.staged_id)
    assert isinstance(executed, d.Executed) and executed.state == d.ACCEPTED, executed
    await await_event(kafka_bootstrap, executed.command_id, EventKind.SUBMITTED)
    assert await ceremonies.current_grant(alice.principal) is None

    cancel = await desk.cancel(alice.principal, executed.command_id)

    assert isinstance(cancel, d.CancelSent), cancel
    await await_event(kafka_bootstrap, executed.command_id, EventKind.CANCELLED)
    decision, authorization = await eventually(lambda: ledgered(ledger_pool, cancel.command_id), timeout=20.0)
    assert decision == "accepted"
    assert authorization == authorization_json(await ceremonies.session_proof(alice.principal), "session")

    cancel_all = await desk.cancel_all(alice.principal, ACCOUNT, "AAPL")
    assert isinstance(cancel_all, d.CancelSent), cancel_all
    _, swept = await eventually(lambda: ledgered(ledger_pool, cancel_all.command_id), timeout=20.0)
    assert swept["ceremony"] == "session"


async def test_the_trader_trips_the_breaker_orders_are_breaker_halted_and_an_armed_trader_re_arms(
    floor_up: HotPathProcess,
    desk: Desk,
    alice: DeskTrader,
    ceremonies: Ceremonies,
    paper: PaperStack,
    ledger_pool: asyncpg.Pool,
) -> None:
    # A kill switch waits for no arming: alice signed in and never armed; her sign-in is its evidence.
    tripped = await desk.trip_breaker(alice.principal)
    assert isinstance(tripped, d.BreakerCommandSent), tripped
    await eventually(lambda: trading_state(floor_up, "HALTED"), timeout=20.0)
    decision, authorization = await eventually(
        lambda: ledgered(ledger_pool, tripped.command_id), timeout=20.0
    )
    assert decision == "accepted"
    assert authorization == authorization_json(await ceremonies.session_proof(alice.principal), "session")

    await arm(ceremonies, alice)
    order = await stage(desk, alice, limit_price=str(await resting_limit(paper)))
    result = await desk.execute(alice.principal, order.staged_id)
    assert isinstance(result, d.BreakerHalted) and result.reason == "breaker.halted", result

    await ceremonies.disarm(alice.principal)
    assert isinstance(await desk.rearm_breaker(alice.principal), d.NotArmed)
    await arm(ceremonies, alice)
    rearmed = await desk.rearm_breaker(alice.principal)
    assert isinstance(rearmed, d.BreakerCommandSent), rearmed
    await eventually(lambda: trading_state(floor_up, "ACTIVE"), timeout=20.0)


async def test_a_market_order_is_measured_against_the_grant_at_the_books_far_side(
    floor_up: HotPathProcess, desk: Desk, desk_hub: Hub, alice: DeskTrader, ceremonies: Ceremonies
) -> None:
    await eventually(lambda: desk_hub.book("AAPL", 1) is not None, timeout=20.0)
    await arm(ceremonies, alice, max_notional=Decimal("1"))
    order = await stage(desk, alice, order_type="MKT", limit_price=None)
    result = await desk.execute(alice.principal, order.staged_id)
    # With no book the notional would be unknown (grant.notional_unknown): the ask priced it.
    assert isinstance(result, d.StepUpRequired) and result.reason == OVER_NOTIONAL, result


# --- REST ------------------------------------------------------------------------------------


@pytest.fixture
async def api(
    api_pool: asyncpg.Pool, desk_door: Door, desk_hub: Hub, desk: Desk, floor_settings: FloorSettings
) -> AsyncIterator[str]:
    """The API's app (``create_app``) served by uvicorn on a free port, with this test's desk."""

    @contextlib.asynccontextmanager
    async def services() -> AsyncIterator[Services]:
        yield Services(db=api_pool, door=desk_door, hub=desk_hub, settings=floor_settings, desk=desk)

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(services), host="127.0.0.1", port=port, log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    await eventually(lambda: server.started, timeout=10.0)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await serving


async def test_rest_execute_answers_403_naming_why_and_200_once_armed(
    floor_up: HotPathProcess,
    api: str,
    desk: Desk,
    alice: DeskTrader,
    ceremonies: Ceremonies,
    paper: PaperStack,
    kafka_bootstrap: str,
) -> None:
    limit = await resting_limit(paper)
    order = await stage(desk, alice, limit_price=str(limit), stop_loss=str(limit - 5), quantity=2)
    url = f"{api}/v1/orders/{order.staged_id}/execute"
    async with httpx.AsyncClient(timeout=30.0) as client:
        anonymous = await client.post(url)
        assert (anonymous.status_code, anonymous.json()["error"]) == (401, "auth.unauthenticated")

        client.cookies.set(SESSION_COOKIE, alice.cookie)
        unarmed = await client.post(url, json={})
        assert unarmed.status_code == 403
        assert (unarmed.json()["result"], unarmed.json()["error"]) == ("NotArmed", d.NOT_ARMED)

        await arm(ceremonies, alice, max_quantity=1)
        beyond = await client.post(url, json={})
        assert beyond.status_code == 403
        body = beyond.json()
        assert (body["result"], body["error"]) == ("StepUpRequired", OVER_QUANTITY)
        step_up = body["step_up"]
        assert step_up["order_hash"] == order.order_hash
        credential = json.loads(alice.trader.authenticator.get(json.dumps(step_up["options"])))

        executed = await client.post(
            url, json={"step_up": {"challenge_id": step_up["challenge_id"], "credential": credential}}
        )
        assert executed.status_code == 200, executed.text
        assert (executed.json()["result"], executed.json()["state"]) == ("Executed", d.ACCEPTED)

        twice = await client.post(url, json={})
        assert (twice.status_code, twice.json()["error"]) == (409, d.ALREADY_EXECUTED)
    command_id = executed.json()["command_id"]
    await await_event(kafka_bootstrap, command_id, EventKind.SUBMITTED)
    assert isinstance(await desk.cancel(alice.principal, command_id), d.CancelSent)
    await await_event(kafka_bootstrap, command_id, EventKind.CANCELLED)


async def test_rest_execute_takes_only_json_from_the_floors_own_page(
    api: str, desk: Desk, alice: DeskTrader, floor_settings: FloorSettings
) -> None:
    """The session cookie rides along on a form another page posts: such a request is refused
    by name before the desk is asked (here the desk would answer NotArmed)."""
    order = await stage(desk, alice)
    url = f"{api}/v1/orders/{order.staged_id}/execute"
    async with httpx.AsyncClient(timeout=30.0, cookies={SESSION_COOKIE: alice.cookie}) as client:
        form = await client.post(url, data={"step_up": "x"})
        assert (form.status_code, form.json()["error"]) == (415, JSON_REQUIRED)
        bare = await client.post(url)
        assert (bare.status_code, bare.json()["error"]) == (415, JSON_REQUIRED)

        elsewhere = await client.post(url, json={}, headers={"Origin": "http://localhost:9999"})
        assert (elsewhere.status_code, elsewhere.json()["error"]) == (403, CROSS_SITE)
        cross_site = await client.post(url, json={}, headers={"Sec-Fetch-Site": "same-site"})
        assert (cross_site.status_code, cross_site.json()["error"]) == (403, CROSS_SITE)

        own_page = await client.post(
            url,
            json={},
            headers={"Origin": floor_settings.webauthn_origin, "Sec-Fetch-Site": "same-origin"},
        )
        assert (own_page.status_code, own_page.json()["error"]) == (403, d.NOT_ARMED)


async def test_cancel_all_without_an_account_cancels_every_account_the_trader_trades(
    floor_up: HotPathProcess,
    desk: Desk,
    ceremonies: Ceremonies,
    cli_pool: asyncpg.Pool,
    ledger_pool: asyncpg.Pool,
    floor_settings: FloorSettings,
    paper: PaperStack,
    kafka_bootstrap: str,
) -> None:
    # A trader of two accounts; the open order is in the one a HUD showing the other never loads.
    trader = await desk_trader(
        ceremonies, cli_pool, ledger_pool, desk_settings(floor_settings), accounts=(TIGHT_ACCOUNT, ACCOUNT)
    )
    limit = await resting_limit(paper)
    order = await stage(desk, trader, limit_price=str(limit), stop_loss=str(limit - 5))
    await arm(ceremonies, trader)
    executed = await desk.execute(trader.principal, order.staged_id)
    assert isinstance(executed, d.Executed) and executed.state == d.ACCEPTED, executed
    await await_event(kafka_bootstrap, executed.command_id, EventKind.SUBMITTED)

    swept = await desk.cancel_all(trader.principal, None)

    assert isinstance(swept, d.CancelSent), swept
    assert swept.accounts == tuple(sorted((TIGHT_ACCOUNT, ACCOUNT))) and len(swept.command_ids) == 2
    await await_event(kafka_bootstrap, executed.command_id, EventKind.CANCELLED)
