"""Builders of what tests send and expect: agents and the commands they sign, ``orders.events``
and ``market.depth`` records, risk profiles. Each gives a valid message with plain defaults; a
test names only the fields it is about. Pure: registering a key or starting a service is a fixture's job
(``tests/fixtures/``)."""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from brokers.base import DepthLevel, DepthSnapshot
from hotpath import depth
from trading.authorization import TRADER_AGENT_PREFIX, Authorization, Ceremony
from trading.commands import Command, CommandKind, Edge, OrderType, Side, TimeInForce, utc_now_ms
from trading.order_events import EventKind, Fill, OrderEvent
from trading.sentry import ANY_ACCOUNT, ROLE_AGENT, ROLE_TRADER, RegisteredKey
from trading.signing import SignedCommand, generate_private_key, key_id, public_key_bytes, sign_command
from trading.sizing import RiskProfile
from trading.step_up import OrderTerms, order_bytes, order_hash

# --- agents and their commands ----------------------------------------------------------------


@dataclass(frozen=True)
class Agent:
    agent_id: str
    private_key: Ed25519PrivateKey
    accounts: frozenset[str] = frozenset({ANY_ACCOUNT})
    role: str = ROLE_AGENT

    @property
    def key_id(self) -> str:
        return key_id(self.private_key)

    @property
    def registered(self) -> RegisteredKey:
        return RegisteredKey(
            key_id=self.key_id,
            agent_id=self.agent_id,
            public_key=public_key_bytes(self.private_key),
            accounts=self.accounts,
            role=self.role,
        )

    @property
    def trader(self) -> str:
        """A trader key's trader name (its agent id without ``trader.``)."""
        return self.agent_id.removeprefix(TRADER_AGENT_PREFIX)

    def sign(self, command: Command) -> SignedCommand:
        return sign_command(command, self.private_key)


def new_agent(agent_id: str | None = None, accounts: frozenset[str] = frozenset({ANY_ACCOUNT})) -> Agent:
    return Agent(agent_id or f"agent-{uuid.uuid4().hex[:8]}", generate_private_key(), accounts)


def new_trader(name: str | None = None, accounts: frozenset[str] = frozenset({"DU100"})) -> Agent:
    """A trader's own signing key (agent ``trader.<name>``, role ``trader``)."""
    return Agent(
        f"{TRADER_AGENT_PREFIX}{name or f'alice-{uuid.uuid4().hex[:6]}'}",
        generate_private_key(),
        accounts,
        ROLE_TRADER,
    )


ANY_ORDER = hashlib.sha256(b"the order").hexdigest()
"""A step-up's order hash standing for "the order this authorization is put on"."""


def authorization(
    trader: str, *, ceremony: Ceremony = Ceremony.ARMING, sign_count: int = 7, order_hash: str | None = None
) -> Authorization:
    """The evidence of a WebAuthn assertion by ``trader`` (a step-up names an order hash: unless
    told, :data:`ANY_ORDER`, which :func:`manual_enter_command` replaces by its order's)."""
    if ceremony is Ceremony.STEP_UP and order_hash is None:
        order_hash = ANY_ORDER
    return Authorization(
        trader=trader,
        credential_id="AAECAwQFBgcICQoLDA0ODxAREhM",
        sign_count=sign_count,
        authenticator_data_sha256=hashlib.sha256(b"authenticator data").hexdigest(),
        client_data_sha256=hashlib.sha256(b"client data").hexdigest(),
        ceremony=ceremony,
        order_hash=order_hash,
    )


def manual_enter_command(
    agent_id: str,
    *,
    quantity: int,
    account: str = "DU100",
    symbol: str = "AAPL",
    side: Side = Side.BUY,
    limit: Decimal | None = Decimal("189.50"),
    stop_loss: Decimal | None = None,
    order_type: OrderType = OrderType.LMT,
    **extra: Any,
) -> Command:
    """A manual order: a DAY order (LMT unless told) of exactly ``quantity`` with no edge (never
    Kelly-sized). A step-up authorization over :data:`ANY_ORDER` is made one over this order."""
    granted = extra.pop("authorization", None)
    if granted is not None and granted.order_hash == ANY_ORDER:
        terms = OrderTerms(account, symbol, side, order_type, quantity, TimeInForce.DAY, limit_price=limit,
                           stop_price=extra.get("stop_price"), stop_loss=stop_loss)  # fmt: skip
        granted = dataclasses.replace(granted, order_hash=order_hash(order_bytes(terms)))
    return Command(
        kind=CommandKind.ENTER, command_id=f"cmd-{uuid.uuid4().hex}", agent_id=agent_id, account=account,
        nonce=uuid.uuid4().hex, issued_at=utc_now_ms(), symbol=symbol, side=side, order_type=order_type,
        limit_price=limit, tif=TimeInForce.DAY, quantity=quantity, stop_loss=stop_loss,
        authorization=granted, **extra,
    )  # fmt: skip


def enter_command(
    agent_id: str,
    *,
    account: str = "DU100",
    symbol: str = "AAPL",
    side: Side = Side.BUY,
    limit: Decimal = Decimal("189.50"),
    p: Decimal = Decimal("0.55"),
    b: Decimal = Decimal("1.5"),
    stop: Decimal = Decimal("185"),
    quantity: int | None = None,
    issued_at: datetime | None = None,
    nonce: str | None = None,
    command_id: str | None = None,
    **extra: Any,
) -> Command:
    return Command(
        kind=CommandKind.ENTER,
        command_id=command_id or f"cmd-{uuid.uuid4().hex}",
        agent_id=agent_id,
        account=account,
        nonce=nonce or uuid.uuid4().hex,
        issued_at=issued_at or utc_now_ms(),
        symbol=symbol,
        side=side,
        order_type=OrderType.LMT,
        limit_price=limit,
        edge=Edge(p=p, b=b, stop_price=stop),
        tif=TimeInForce.DAY,
        quantity=quantity,
        **extra,
    )


def exit_command(
    agent_id: str,
    *,
    account: str,
    side: Side,
    quantity: int,
    limit: Decimal | None = None,
    symbol: str = "AAPL",
    order_type: OrderType = OrderType.LMT,
    command_id: str | None = None,
    **extra: Any,
) -> Command:
    """An exit (it only shrinks a position, so it carries no edge); a DAY limit unless told."""
    return Command(
        kind=CommandKind.EXIT, command_id=command_id or f"cmd-{uuid.uuid4().hex}", agent_id=agent_id,
        account=account, nonce=uuid.uuid4().hex, issued_at=utc_now_ms(), symbol=symbol, side=side,
        order_type=order_type, limit_price=limit, tif=TimeInForce.DAY, quantity=quantity, **extra,
    )  # fmt: skip


def cancel_command(agent_id: str, target: str, *, account: str) -> Command:
    """A cancel of the order ``target`` (a command id)."""
    return Command(
        kind=CommandKind.CANCEL, command_id=f"cmd-{uuid.uuid4().hex}", agent_id=agent_id, account=account,
        nonce=uuid.uuid4().hex, issued_at=utc_now_ms(), target_command_id=target,
    )  # fmt: skip


def cancel_all_command(
    agent_id: str, *, account: str, symbol: str | None = None, command_id: str | None = None
) -> Command:
    """A cancel of every working order of ``account`` (of ``symbol`` only, if given)."""
    return Command(
        kind=CommandKind.CANCEL_ALL, command_id=command_id or f"cmd-{uuid.uuid4().hex}",
        agent_id=agent_id, account=account, nonce=uuid.uuid4().hex, issued_at=utc_now_ms(), symbol=symbol,
    )  # fmt: skip


# --- orders.events records --------------------------------------------------------------------


def order_event(
    command_id: str, n: int, kind: EventKind, filled: int = 0, fill: Fill | None = None, /, **fields: Any
) -> OrderEvent:
    """The ``n``-th ``orders.events`` record of order ``command_id`` (event id
    ``{command_id}-{n}``): alpha buying 200 MSFT on DU1, ``filled`` shares filled so far,
    ``fill`` the execution this record reports (its price the average fill price), stamped now.
    Any other field by name, ``event_id`` and ``kind`` included."""
    values: dict[str, Any] = dict(
        event_id=f"{command_id}-{n}", command_id=command_id, parent_id=None, kind=kind, account="DU1",
        symbol="MSFT", agent_id="alpha", side="BUY", quantity=200, filled_qty=filled,
        avg_fill_price=fill.price if fill else None, last_fill=fill, reason=None, ts=datetime.now(UTC),
    )  # fmt: skip
    values.update(fields)
    return OrderEvent(**values)


# --- risk profiles ----------------------------------------------------------------------------


def risk_profile(**limits: Any) -> RiskProfile:
    """A profile with room for the usual test order (Max Trade Size 50,000, Max Dollar Risk
    1,000); a test names the limits it is about."""
    values: dict[str, Any] = dict(
        max_trade_size=Decimal("50000"), max_dollar_risk=Decimal("1000"), max_position=10_000,
        max_gross_exposure=Decimal("1000000"), max_open_orders=50, staleness_ms=2000,
    )  # fmt: skip
    values.update(limits)
    return RiskProfile(**values)


# --- market.depth records ---------------------------------------------------------------------


def depth_record(
    symbol: str,
    bids: Sequence[tuple[str, int]],
    asks: Sequence[tuple[str, int]],
    ts: datetime | None = None,
    gap: bool = False,
) -> bytes:
    """A ``market.depth`` record as the hot path writes it (best level first on each side);
    ``gap``: the first after a gap in the broker's feed."""
    return depth.encode(
        DepthSnapshot(
            symbol=symbol,
            bids=tuple(DepthLevel(Decimal(p), s) for p, s in bids),
            asks=tuple(DepthLevel(Decimal(p), s) for p, s in asks),
            time=ts or datetime.now(UTC),
            recv_ns=0,
            gap=gap,
        )
    )
