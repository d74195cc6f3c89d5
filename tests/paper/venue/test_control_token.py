"""The control token file: made once, 0600, refused when others may read it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from paper.venue.__main__ import parse_args, run
from paper.venue.control_token import (
    TokenFileError,
    authorization,
    ensure_token,
    matches,
    read_token,
)


def test_the_token_is_made_at_first_start_for_the_owner_only_and_kept_afterwards(tmp_path: Path) -> None:
    path = tmp_path / "paper" / "control.token"
    token = ensure_token(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(token) >= 40
    assert ensure_token(path) == token == read_token(path)
    assert [p.name for p in path.parent.iterdir()] == ["control.token"], "no temporary file left"


def test_a_token_file_others_may_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "control.token"
    ensure_token(path)
    os.chmod(path, 0o644)
    with pytest.raises(TokenFileError, match="chmod 600"):
        ensure_token(path)


async def test_the_venue_does_not_start_on_a_token_file_others_may_read(tmp_path: Path) -> None:
    path = tmp_path / "control.token"
    path.write_text("a-token-everyone-can-read\n")
    os.chmod(path, 0o640)
    with pytest.raises(SystemExit, match="readable by others"):
        await run(parse_args(["--port", "0", "--control-port", "0", "--token-file", str(path)]))


def test_a_client_without_the_token_file_is_told_to_start_the_venue(tmp_path: Path) -> None:
    with pytest.raises(TokenFileError, match="start the paper venue"):
        read_token(tmp_path / "control.token")
    (tmp_path / "empty.token").write_text("\n")
    with pytest.raises(TokenFileError, match="empty"):
        read_token(tmp_path / "empty.token")


def test_only_the_exact_token_as_a_bearer_credential_matches() -> None:
    token = "s3cret-token"
    assert matches(authorization(token)["Authorization"], token)
    assert matches(f"bearer {token}", token)
    for header in (None, "", token, f"Basic {token}", f"Bearer {token}x", f"Bearer {token[:-1]}", "Bearer "):
        assert not matches(header, token), header
