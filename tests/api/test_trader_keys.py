"""The API's traders' keys: read from the traders' own folder only, once, and again when one is
missing or the floor stopped accepting it."""

from __future__ import annotations

from pathlib import Path

from api.trader_keys import TraderKeys
from trading.signing import generate_private_key, private_key_to_pem, public_key_bytes


def _write(folder: Path, agent_id: str) -> bytes:
    """A fresh key at ``folder/AGENT.key``; its public half."""
    folder.mkdir(parents=True, exist_ok=True)
    key = generate_private_key()
    (folder / f"{agent_id}.key").write_bytes(private_key_to_pem(key))
    return public_key_bytes(key)


async def test_only_the_traders_folder_is_read(tmp_path: Path) -> None:
    floor_keys = tmp_path / "keys"
    _write(floor_keys, "trader.alice")  # where every key lived before: not the API's to read
    keys = TraderKeys(floor_keys / "traders")
    assert await keys.load("alice") is None
    public = _write(floor_keys / "traders", "trader.alice")
    loaded = await keys.load("alice")  # looked for again: it was missing
    assert loaded is not None and public_key_bytes(loaded) == public


async def test_a_key_is_read_once_and_again_after_it_is_forgotten(tmp_path: Path) -> None:
    folder = tmp_path / "traders"
    first = _write(folder, "trader.bob")
    keys = TraderKeys(folder)
    loaded = await keys.load("bob")
    assert loaded is not None and public_key_bytes(loaded) == first
    replaced = _write(folder, "trader.bob")  # the operator rotates it
    kept = await keys.load("bob")
    assert kept is not None and public_key_bytes(kept) == first  # no file read per command
    keys.forget("bob")  # the floor refused the old one
    fresh = await keys.load("bob")
    assert fresh is not None and public_key_bytes(fresh) == replaced
