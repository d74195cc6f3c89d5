"""A staged order's life: it can be executed only for FLOOR_STAGED_TTL_S after it was staged,
is listed only while it can, and its session can discard it for good (nothing was sent)."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import pytest

from api import desk_results as d
from api.desk import Desk
from api.staged_orders import open_staged
from api.webauthn_ceremonies import Ceremonies
from config.settings import FloorSettings
from tests.fixtures.desk import DeskTrader, arm, ticket
from tests.fixtures.identity import sign_in


async def staged(desk: Desk, who: DeskTrader) -> d.Staged:
    result = await desk.stage(who.principal, ticket())
    assert isinstance(result, d.Staged), result
    return result


async def live_ids(pool: asyncpg.Pool, who: DeskTrader, ttl_s: int) -> list[str]:
    assert who.principal.session_id is not None
    return [s.staged_id for s in await open_staged(pool, who.name, who.principal.session_id, 200, ttl_s)]


async def claimed(pool: asyncpg.Pool, staged_id: str) -> str | None:
    command_id: str | None = await pool.fetchval(
        "SELECT command_id FROM staged_orders WHERE id = $1", staged_id
    )
    return command_id


async def test_a_staged_order_older_than_its_lifetime_is_not_executed_nor_listed(
    desk: Desk,
    alice: DeskTrader,
    ceremonies: Ceremonies,
    api_pool: asyncpg.Pool,
    ledger_pool: asyncpg.Pool,
    floor_settings: FloorSettings,
) -> None:
    await arm(ceremonies, alice)
    order = await staged(desk, alice)
    ttl = floor_settings.staged_ttl_s
    assert order.staged_id in await live_ids(api_pool, alice, ttl)
    # Staged a lifetime ago (by the database's clock, which the lifetime is measured by).
    await ledger_pool.execute(
        "UPDATE staged_orders SET created_at = created_at - $2::interval WHERE id = $1",
        order.staged_id,
        timedelta(seconds=ttl),
    )
    result = await desk.execute(alice.principal, order.staged_id)
    assert isinstance(result, d.Invalid) and result.reason == d.STAGED_EXPIRED, result
    assert await claimed(api_pool, order.staged_id) is None
    assert order.staged_id not in await live_ids(api_pool, alice, ttl)


async def test_a_discarded_staged_order_can_no_longer_be_executed_nor_is_listed(
    desk: Desk,
    alice: DeskTrader,
    ceremonies: Ceremonies,
    api_pool: asyncpg.Pool,
    floor_settings: FloorSettings,
) -> None:
    await arm(ceremonies, alice)
    order = await staged(desk, alice)
    kept = await staged(desk, alice)
    assert await desk.discard(alice.principal, order.staged_id) == d.Discarded(order.staged_id)
    assert await desk.discard(alice.principal, order.staged_id) == d.Discarded(order.staged_id)  # idempotent
    result = await desk.execute(alice.principal, order.staged_id)
    assert isinstance(result, d.Invalid) and result.reason == d.STAGED_DISCARDED, result
    assert await claimed(api_pool, order.staged_id) is None
    assert await live_ids(api_pool, alice, floor_settings.staged_ttl_s) == [kept.staged_id]
    # The API's role cannot bring it back.
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await api_pool.execute("UPDATE staged_orders SET discarded_at = NULL WHERE id = $1", order.staged_id)


async def test_only_the_session_that_staged_an_order_discards_it(
    desk: Desk,
    alice: DeskTrader,
    ceremonies: Ceremonies,
    floor_settings: FloorSettings,
    api_pool: asyncpg.Pool,
) -> None:
    order = await staged(desk, alice)
    other_session, _ = await sign_in(ceremonies, alice.trader)
    refused = await desk.discard(other_session, order.staged_id)
    assert isinstance(refused, d.Invalid) and refused.reason == d.STAGED_ELSEWHERE
    unknown = await desk.discard(alice.principal, "stg-nothing")
    assert isinstance(unknown, d.Invalid) and unknown.reason == d.NOT_STAGED
    assert order.staged_id in await live_ids(api_pool, alice, floor_settings.staged_ttl_s)
