"""The demo brain's agents: who they are, which rule each follows, and their signing keys."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from config.settings import FloorSettings
from trading.demo_rules import BREAKOUT, MEAN_REVERSION, MOMENTUM
from trading.signing import private_key_from_pem

DEMO_AGENTS: tuple[tuple[str, str], ...] = (
    ("demo-meanrev", MEAN_REVERSION),
    ("demo-momentum", MOMENTUM),
    ("demo-breakout", BREAKOUT),
)
"""(agent id, rule) of each demo agent; each has a key of its own (``floor brain`` makes them)."""


@dataclass(frozen=True)
class BrainAgent:
    agent_id: str
    rule: str
    """One of :data:`trading.demo_rules.RULES`."""
    key: Ed25519PrivateKey


class AgentKeyMissing(Exception):
    """A demo agent has no key file: ``floor brain`` (or ``floor up --demo``) makes them."""


def demo_key_path(settings: FloorSettings, agent_id: str) -> Path:
    """Where ``floor keys new`` keeps an agent's key: ``<var>/keys/AGENT.key``."""
    return settings.keys_dir / f"{agent_id}.key"


def load_agents(
    settings: FloorSettings, agents: tuple[tuple[str, str], ...] = DEMO_AGENTS
) -> list[BrainAgent]:
    """The demo agents with their keys from the keys dir; :class:`AgentKeyMissing` naming the
    first without one."""
    loaded = []
    for agent_id, rule in agents:
        path = demo_key_path(settings, agent_id)
        if not path.exists():
            raise AgentKeyMissing(
                f"no key for {agent_id} at {path}: run `floor brain` once to make the demo keys"
            )
        loaded.append(BrainAgent(agent_id, rule, private_key_from_pem(path.read_bytes())))
    return loaded
