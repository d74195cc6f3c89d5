"""The ceremonies' single-use challenges: issued by every ``begin_*``, taken once by its
``finish_*``.

Issuing first prunes a bounded batch of challenges expired by the database's clock
(``floor_prune_challenges``), so the table holds about what is open. Sign-in challenges are
issued to anyone (nobody is known before the passkey answers), so how many may be open at once
is capped (``FloorSettings.open_login_challenges_max``): beyond it ``begin_login`` is refused by
name until some expire, instead of filling the database.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from api import webauthn_results as r
from api.webauthn_results import Challenge, Refusal
from config.settings import FloorSettings
from ledger import webauthn_store as store
from ledger.db import Db

PRUNE_BATCH = 100
"""Expired challenges deleted per issue at most: more than one issue makes, so the backlog
shrinks, yet each begin_* does bounded work."""


class Challenges:
    def __init__(self, db: Db, settings: FloorSettings) -> None:
        self._db = db
        self._settings = settings

    async def issue(
        self, purpose: str, challenge: bytes, options_json: str, now: datetime, **bound: Any
    ) -> Challenge:
        """Store a challenge for a caller already known (by its enrolment link or its session):
        no cap, the caller's own ceremonies are few."""
        issued = await self._issue(purpose, challenge, options_json, now, None, bound)
        assert issued is not None  # no cap: the insert always happens
        return issued

    async def issue_login(self, challenge: bytes, options_json: str, now: datetime) -> Challenge | Refusal:
        """Store a sign-in challenge, unless ``open_login_challenges_max`` are open already."""
        issued = await self._issue(
            store.PURPOSE_LOGIN, challenge, options_json, now, self._settings.open_login_challenges_max, {}
        )
        if issued is None:
            # Not a security event: a flood of these would write one row per refusal, the very
            # growth the cap prevents.
            return Refusal(
                r.TOO_MANY_CHALLENGES,
                "too many sign-ins are in progress on this floor; try again in a minute",
            )
        return issued

    async def _issue(
        self,
        purpose: str,
        challenge: bytes,
        options_json: str,
        now: datetime,
        open_limit: int | None,
        bound: dict[str, Any],
    ) -> Challenge | None:
        await store.prune_challenges(self._db, PRUNE_BATCH)
        challenge_id = uuid.uuid4().hex
        expires_at = now + timedelta(seconds=self._settings.step_up_ttl_s)
        added = await store.add_challenge(
            self._db,
            challenge_id=challenge_id,
            purpose=purpose,
            challenge=challenge,
            expires_at=expires_at,
            now=now,
            open_limit=open_limit,
            **bound,
        )
        return Challenge(challenge_id, options_json, expires_at) if added else None

    async def take(
        self, challenge_id: str, purpose: str, now: datetime, session_id: str | None
    ) -> store.TakenChallenge | Refusal:
        """Take the challenge; one bound to a session only while that session lives (a
        WebSocket's caller was authenticated when it connected, and may have signed out since)."""
        if session_id is not None and not await store.session_alive(self._db, session_id, now):
            return Refusal(
                r.CHALLENGE_UNKNOWN, "your session has ended (signed out or expired); sign in again"
            )
        try:
            taken = await store.take_challenge(self._db, challenge_id, purpose, now, session_id=session_id)
        except store.ChallengeExpired:
            return Refusal(r.CHALLENGE_EXPIRED, "the ceremony took too long; begin it again")
        if taken is None:
            return Refusal(
                r.CHALLENGE_UNKNOWN,
                "no such open challenge for this ceremony (already answered, expired a while ago,"
                " or never issued here); begin again",
            )
        return taken
