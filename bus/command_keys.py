"""The key of an ``agent.commands`` record: its account, and nothing else.

Kafka sends every record of one key to one partition, and a consumer group gives each partition
to one member, so keying by account makes one hot path the only one deciding an account's
commands: the account-wide limits (gross exposure, open orders, the position across symbols)
are checked against one process's book, in one order. Keyed by ``account/symbol``, two hot
paths could each hold part of one account and each allow its whole gross exposure.

Every producer of ``agent.commands`` (the API's door and its outbox, the Temporal activities,
agents written against the floor, the benchmarks) keys through :func:`command_key`. A command
that acts on the whole floor (the breaker's trip and re-arm, account ``*``) is keyed ``*``.
"""

from __future__ import annotations

from aiokafka.partitioner import murmur2

from trading.commands import Command


def account_key(account: str) -> bytes:
    """The record key of a command on ``account``."""
    return account.encode()


def command_key(command: Command) -> bytes:
    """The record key of ``command``: its account (see the module)."""
    return account_key(command.account)


def partition_of(account: str, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2, as the Java client and aiokafka
    have it) puts ``account``'s commands on, of ``partitions``: a hot path given a partition
    knows which accounts it now holds."""
    return (murmur2(account_key(account)) & 0x7FFFFFFF) % partitions
