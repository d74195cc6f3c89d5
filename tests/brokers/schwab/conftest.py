"""The Schwab adapter against the paper Schwab API emulator over the session's paper venue."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from brokers.base import BrokerOrder, OrderType, Side
from brokers.schwab import SchwabBroker, SchwabConfig
from tests.brokers.recorder import Recorder
from tests.fixtures.schwab import SchwabApi


def ref() -> str:
    return f"cmd-{uuid.uuid4().hex[:12]}"


def config_for(api: SchwabApi, token_path: Path, **overrides: Any) -> SchwabConfig:
    """The adapter's configuration for the emulator ``api`` with its own token file."""
    values: dict[str, Any] = {
        "token_path": token_path,
        "app_key": api.app_key,
        "app_secret": api.app_secret,
        "accounts": (api.account_number,),
        "base_url": api.base_url,
        "poll_s": 0.5,
        "order_limit_per_min": 0,
    }
    values.update(overrides)
    return SchwabConfig(**values)


@dataclass
class Adapter:
    broker: SchwabBroker
    events: Recorder
    account: str

    def limit(self, price: Decimal, qty: int = 5, side: Side = Side.BUY, symbol: str = "MSFT") -> BrokerOrder:
        return BrokerOrder(ref(), self.account, symbol, side, qty, OrderType.LMT, limit_price=price)

    def market(self, qty: int = 5, side: Side = Side.BUY, symbol: str = "MSFT") -> BrokerOrder:
        return BrokerOrder(ref(), self.account, symbol, side, qty, OrderType.MKT)


@pytest.fixture
async def adapter(schwab_api: SchwabApi, tmp_path: Path) -> AsyncIterator[Adapter]:
    """A connected adapter on a fresh login of its own (orders it leaves working are cancelled)."""
    broker = SchwabBroker(config_for(schwab_api, schwab_api.new_token_file(tmp_path)))
    events = Recorder()
    broker.set_event_handler(events)
    await broker.connect()
    try:
        yield Adapter(broker, events, schwab_api.account_number)
    finally:
        await broker.close()


def below(bid: Decimal, share: str = "0.8") -> Decimal:
    """A buy limit that rests well under the market."""
    return (bid * Decimal(share)).quantize(Decimal("0.01"))
