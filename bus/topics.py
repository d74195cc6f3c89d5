"""The floor's topics. ``agent.commands`` is keyed by account (:mod:`bus.command_keys`): one
partition, and so one hot path, holds every command of an account, in order."""

from __future__ import annotations

AGENT_COMMANDS = "agent.commands"
ORDERS_EVENTS = "orders.events"
MARKET_DEPTH = "market.depth"
MARKET_TRADES = "market.trades"
"""Every trade of the floor's symbols at the venue (the tape), signed by the hot path."""
SECURITY_EVENTS = "security.events"
BROKER_SESSIONS = "broker.sessions"
"""Broker connectivity changes (one record per session epoch), for the BrokerSession workflows."""
LEDGER_CHECKPOINTS = "ledger.checkpoints"
"""The floor's signed checkpoints of the ledger head (ledger/checkpoints.py), kept outside the
database so a rewritten or truncated ledger is caught."""

ALL_TOPICS: tuple[str, ...] = (
    AGENT_COMMANDS,
    ORDERS_EVENTS,
    MARKET_DEPTH,
    MARKET_TRADES,
    SECURITY_EVENTS,
    BROKER_SESSIONS,
    LEDGER_CHECKPOINTS,
)
