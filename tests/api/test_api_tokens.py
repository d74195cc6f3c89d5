"""API tokens: programs present them as bearer tokens; the role decides what they see."""

from __future__ import annotations

import hashlib
import uuid

import asyncpg
import pytest

from api.principals import authenticate
from ledger.api_tokens import ApiTokenError, issue_token, list_tokens, revoke_token


def _name() -> str:
    return f"bot-{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize(("role", "ops"), [("read", False), ("ops", True)])
async def test_token_authenticates_with_its_role(
    cli_pool: asyncpg.Pool, api_pool: asyncpg.Pool, role: str, ops: bool
) -> None:
    name = _name()
    _, token = await issue_token(cli_pool, name, role)
    principal = await authenticate(api_pool, cookie=None, bearer=token)
    assert principal is not None
    assert (principal.name, principal.kind, principal.role, principal.is_ops) == (name, "token", role, ops)
    assert principal.session_id is None and principal.sees("DU1234567")


async def test_revoked_token_is_refused(cli_pool: asyncpg.Pool, api_pool: asyncpg.Pool) -> None:
    name = _name()
    _, token = await issue_token(cli_pool, name, "read")
    await revoke_token(cli_pool, name)
    assert await authenticate(api_pool, cookie=None, bearer=token) is None
    # A new token for the same name works; the old one stays dead.
    _, fresh = await issue_token(cli_pool, name, "ops")
    assert (await authenticate(api_pool, cookie=None, bearer=fresh)) is not None
    assert await authenticate(api_pool, cookie=None, bearer=token) is None


async def test_unknown_token_and_no_credentials_are_nobody(api_pool: asyncpg.Pool) -> None:
    assert await authenticate(api_pool, cookie=None, bearer="made-up") is None
    assert await authenticate(api_pool, cookie=None, bearer=None) is None
    assert await authenticate(api_pool, cookie="made-up", bearer=None) is None


async def test_token_is_stored_only_as_its_hash(cli_pool: asyncpg.Pool, ledger_pool: asyncpg.Pool) -> None:
    name = _name()
    _, token = await issue_token(cli_pool, name, "read")
    stored = await ledger_pool.fetchval("SELECT token_hash FROM api_tokens WHERE name = $1", name)
    assert bytes(stored) == hashlib.sha256(token.encode()).digest()


async def test_second_active_token_and_unknown_role_and_revoking_nothing_are_refused(
    cli_pool: asyncpg.Pool,
) -> None:
    name = _name()
    await issue_token(cli_pool, name, "read")
    with pytest.raises(ApiTokenError, match="revoke it first"):
        await issue_token(cli_pool, name, "read")
    with pytest.raises(ApiTokenError, match="role must be one of"):
        await issue_token(cli_pool, _name(), "admin")
    with pytest.raises(ApiTokenError, match="no active token"):
        await revoke_token(cli_pool, _name())
    assert any(t.name == name and t.revoked_at is None for t in await list_tokens(cli_pool))
