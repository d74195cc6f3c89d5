"""First-run set-up that ``floor up`` does so a fresh floor can trade at once.

- The floor's own signing keys: the Sniper (iceberg slices), the order-lifecycle canceller, the
  circuit breaker (its automatic trips, ledgered), the hot path's control key (stops of a
  revoked key's icebergs), an operator (key and risk-profile changes, tripping and re-arming the
  breaker; it signs the others' registrations), ``floor-ledger`` (signed checkpoints of the
  ledger head), and the keys that sign the records the floor acts on: the hot path's
  (``orders.events``, ``broker.sessions``) and reconciliation's (missed fills). Each private key
  lives in ``var/keys/<id>.key`` (0600) and its public key is registered by a signed ledger
  entry; a key file whose public key the database does not know (a new database under an old
  ``var/``) is registered again.
- A conservative risk profile for the paper account, only where the account has none, signed by
  the operator key like every other profile change. Traders change it with ``floor risk set``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from config.settings import FloorSettings
from floor.keys import key_path, write_private_key
from hotpath.circuit_breaker_log import BREAKER_AGENT
from ledger import keys as registry
from ledger.key_changes import register_key_signed
from ledger.operator_changes import OperatorNotAuthorised
from ledger.risk_profiles import get_profile, set_profile
from trading.record_signing import HOTPATH_WRITER
from trading.signing import (
    generate_private_key,
    key_id,
    private_key_from_pem,
    private_key_to_pem,
    public_key_bytes,
)
from trading.sizing import RiskProfile

OPERATOR = "operator"


class ProvisionError(RuntimeError):
    """First-run set-up cannot proceed without an operator's decision; the message says which."""


@dataclass(frozen=True)
class ServiceKey:
    agent_id: str
    role: str


SERVICE_KEYS: tuple[ServiceKey, ...] = (
    ServiceKey("sniper", registry.ROLE_SERVICE),
    ServiceKey("floor-lifecycle", registry.ROLE_SERVICE),
    ServiceKey(BREAKER_AGENT, registry.ROLE_SERVICE),
    # The hot path's: it signs the stop of a revoked key's running icebergs.
    ServiceKey("floor-control", registry.ROLE_SERVICE),
    ServiceKey(OPERATOR, registry.ROLE_OPERATOR),
    ServiceKey("floor-ledger", registry.ROLE_SERVICE),
    # It signs the records the floor acts on (trading.record_signing), never commands. (The
    # worker's reconciliation key, floor-reconcile, is no longer made: the hot path reconciles.)
    ServiceKey(HOTPATH_WRITER, registry.ROLE_SERVICE),
)

PAPER_ACCOUNT = "DU1234567"
PAPER_PROFILE = RiskProfile(
    max_trade_size=Decimal("50000"),
    max_dollar_risk=Decimal("1000"),
    max_position=5000,
    max_gross_exposure=Decimal("500000"),
    max_open_orders=200,
    staleness_ms=5000,
)


def _operator_key(settings: FloorSettings) -> Ed25519PrivateKey:
    return private_key_from_pem(key_path(settings, OPERATOR).read_bytes())


async def provision(settings: FloorSettings, *, paper_account: str | None = PAPER_ACCOUNT) -> list[str]:
    """Create what is missing; return one line per thing done (empty when nothing was)."""
    done: list[str] = []
    settings.keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    # As the owner, like the migrations before it: part of setting the floor up, not run time.
    conn = await asyncpg.connect(settings.owner_url)
    try:
        registered = await registry.load_keys(conn)
        # The operator first: it signs the other registrations (its own, on a new floor).
        for service in sorted(SERVICE_KEYS, key=lambda s: s.role != registry.ROLE_OPERATOR):
            path = key_path(settings, service.agent_id)
            if path.exists():
                key = private_key_from_pem(path.read_bytes())
            else:
                key = generate_private_key()
                write_private_key(path, private_key_to_pem(key))
                done.append(f"made key {path}")
            if key_id(key) not in registered:
                try:
                    operator = key if service.agent_id == OPERATOR else _operator_key(settings)
                    await register_key_signed(
                        conn,
                        service.agent_id,
                        public_key_bytes(key),
                        service.role,
                        ["*"],
                        operator_id=OPERATOR,
                        operator_key=operator,
                    )
                except (registry.KeyConflict, OperatorNotAuthorised):
                    # Another key is registered for it (for the operator: another operator key,
                    # so this one may not sign its own registration).
                    raise ProvisionError(
                        f"{path} is not the key registered for {service.agent_id}: restore the "
                        f"registered key file, or run `floor keys revoke {service.agent_id}` and "
                        "start again to register this one"
                    ) from None
                done.append(f"registered {service.agent_id} ({service.role})")
        if paper_account and await get_profile(conn, paper_account) is None:
            await set_profile(
                conn, paper_account, PAPER_PROFILE, operator_id=OPERATOR, operator_key=_operator_key(settings)
            )
            done.append(f"default risk profile for {paper_account}")
    finally:
        await conn.close()
    return done
