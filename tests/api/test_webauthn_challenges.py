"""The ceremonies' challenges do not pile up: expired ones are pruned as new ones are issued,
and anyone's sign-in challenges (nobody is known before the passkey answers) are capped."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from api import webauthn_results as r
from api.webauthn_ceremonies import Ceremonies
from api.webauthn_challenges import PRUNE_BATCH
from api.webauthn_results import Challenge, Refusal
from bus.topics import SECURITY_EVENTS
from config.settings import FloorSettings
from ledger.access import LedgerAccess
from observability.security import SecurityLog
from tests.fixtures.identity import Clock, enrol, new_trader


async def _exists(db: asyncpg.Pool, challenge_id: str) -> bool:
    return bool(
        await db.fetchval("SELECT true FROM webauthn_challenges WHERE challenge_id = $1", challenge_id)
    )


async def _expire(db: asyncpg.Pool, challenge_ids: list[str]) -> None:
    """Pruning goes by the database's clock (the API's cannot expire a live challenge): let
    these challenges' time run out there."""
    await db.execute(
        "UPDATE webauthn_challenges SET expires_at = now() - interval '1 second'"
        " WHERE challenge_id = ANY($1)",
        challenge_ids,
    )


async def test_expired_challenges_are_pruned_when_a_ceremony_begins(
    ceremonies: Ceremonies, ledger_pool: asyncpg.Pool, clock: Clock
) -> None:
    old = await ceremonies.begin_login()
    assert isinstance(old, Challenge)
    # The ceremonies' clock says it expired; the database's does not: kept.
    clock.advance(ceremonies._settings.step_up_ttl_s)
    fresh = await ceremonies.begin_login()
    assert isinstance(fresh, Challenge)
    assert await _exists(ledger_pool, old.challenge_id)

    await _expire(ledger_pool, [old.challenge_id])
    newest = await ceremonies.begin_login()

    assert isinstance(newest, Challenge)
    assert not await _exists(ledger_pool, old.challenge_id)
    assert await _exists(ledger_pool, fresh.challenge_id)
    # Its answer, if it ever comes, still finds nothing to answer.
    refused = await ceremonies.finish_login(old.challenge_id, "{}")
    assert isinstance(refused, Refusal) and refused.reason == r.CHALLENGE_UNKNOWN


async def test_pruning_is_bounded_per_ceremony(
    ceremonies: Ceremonies, ledger_pool: asyncpg.Pool, clock: Clock
) -> None:
    begun = [await ceremonies.begin_login() for _ in range(PRUNE_BATCH + 5)]
    ids = [c.challenge_id for c in begun if isinstance(c, Challenge)]
    await _expire(ledger_pool, ids)

    async def expired() -> int:
        return int(
            await ledger_pool.fetchval("SELECT count(*) FROM webauthn_challenges WHERE expires_at <= now()")
        )

    before = await expired()
    await ceremonies.begin_login()
    assert before - await expired() == PRUNE_BATCH
    # Later ceremonies prune the rest.
    for _ in range(before // PRUNE_BATCH + 1):
        await ceremonies.begin_login()
    assert (
        await ledger_pool.fetchval(
            "SELECT count(*) FROM webauthn_challenges WHERE challenge_id = ANY($1)", ids
        )
        == 0
    )


async def test_open_sign_in_challenges_are_capped(
    api_pool: asyncpg.Pool, cli_pool: asyncpg.Pool, floor_settings: FloorSettings, clock: Clock
) -> None:
    settings = floor_settings.model_copy(update={"open_login_challenges_max": 3})
    security = SecurityLog(LedgerAccess(api_pool), None, SECURITY_EVENTS)
    ceremonies = Ceremonies(api_pool, settings, security, clock=clock)
    trader = await new_trader(cli_pool)
    await enrol(ceremonies, trader)
    # A time by which every sign-in challenge of earlier tests has expired: only these are open.
    clock.advance(timedelta(days=40).total_seconds())
    begun = [await ceremonies.begin_login() for _ in range(3)]
    assert all(isinstance(c, Challenge) for c in begun)

    refused = await ceremonies.begin_login()

    assert isinstance(refused, Refusal) and refused.reason == r.TOO_MANY_CHALLENGES
    assert "try again" in refused.detail
    # Answering one frees its place; so does expiry.
    first = begun[0]
    assert isinstance(first, Challenge)
    signed_in = await ceremonies.finish_login(
        first.challenge_id, trader.authenticator.get(first.options_json)
    )
    assert isinstance(signed_in, tuple)
    assert isinstance(await ceremonies.begin_login(), Challenge)
    assert isinstance(await ceremonies.begin_login(), Refusal)
    clock.advance(settings.step_up_ttl_s)
    assert isinstance(await ceremonies.begin_login(), Challenge)
    # Other ceremonies have their caller's session or enrolment, and no such cap.
    _ = await ceremonies.begin_login()
    _ = await ceremonies.begin_login()
    principal, _cookie = signed_in
    assert isinstance(await ceremonies.begin_arming(principal, r.GrantLimits(None, None, None)), Challenge)
