"""OAuth as Schwab runs it: a 30-minute access token refreshed by schwab-py's own session, and a
refresh token that ends seven days after the login."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from authlib.integrations.base_client.errors import OAuthError

from tests.fixtures.schwab import SchwabApi
from tests.paper.schwab.conftest import schwab_client

DAY_S = 24 * 3600


async def test_an_expired_access_token_is_refreshed_and_written_back(
    schwab_api: SchwabApi, tmp_path: Path
) -> None:
    login = time.time() - DAY_S
    path = schwab_api.new_token_file(tmp_path, login_time=login, access_ttl_s=-1)
    before = json.loads(path.read_text())
    client = schwab_client(schwab_api, path)
    try:
        response = await client.get_account_numbers()
        assert response.status_code == 200
    finally:
        await client.close_async_session()
    after = json.loads(path.read_text())
    assert after["creation_timestamp"] == before["creation_timestamp"] == int(login)
    assert after["token"]["access_token"] != before["token"]["access_token"]
    assert after["token"]["refresh_token"] == before["token"]["refresh_token"]
    assert after["token"]["expires_in"] == 1800


async def test_a_refresh_token_older_than_seven_days_is_refused_as_invalid_client(
    schwab_api: SchwabApi, tmp_path: Path
) -> None:
    path = schwab_api.new_token_file(tmp_path, login_time=time.time() - 7 * DAY_S - 60, access_ttl_s=-1)
    before = path.read_text()
    client = schwab_client(schwab_api, path)
    try:
        with pytest.raises(OAuthError) as refused:
            await client.get_account_numbers()
    finally:
        await client.close_async_session()
    assert refused.value.error == "invalid_client"
    assert refused.value.description == "refresh token invalid"
    assert path.read_text() == before


async def test_a_token_of_another_app_secret_is_refused(schwab_api: SchwabApi, tmp_path: Path) -> None:
    from paper.schwab_api.tokens import write_token_file

    path = write_token_file(tmp_path / "other.json", schwab_api.app_key, "another-secret")
    client = schwab_client(schwab_api, path)
    try:
        response = await client.get_account_numbers()
    finally:
        await client.close_async_session()
    assert response.status_code == 401


async def test_a_refresh_with_the_wrong_app_secret_is_refused_as_invalid_client(
    schwab_api: SchwabApi, tmp_path: Path
) -> None:
    path = schwab_api.new_token_file(tmp_path, access_ttl_s=-1)
    wrong = SchwabApi(**{**schwab_api.__dict__, "settings": schwab_api.settings.model_copy(
        update={"schwab_app_secret": "not-the-secret"})})  # fmt: skip
    client = schwab_client(wrong, path)
    try:
        with pytest.raises(OAuthError) as refused:
            await client.get_account_numbers()
    finally:
        await client.close_async_session()
    assert refused.value.error == "invalid_client"
