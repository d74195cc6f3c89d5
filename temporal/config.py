"""Names the worker, the bridge and every client agree on."""

from __future__ import annotations

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter

TASK_QUEUE = "floor"

DATA_CONVERTER: DataConverter = pydantic_data_converter
"""Pydantic JSON: ``Decimal`` travels as an exact string and dataclasses round-trip with their
types, which the default converter cannot do. Every client and worker must use this one."""


def lifecycle_workflow_id(command_id: str) -> str:
    return command_id


def iceberg_workflow_id(command_id: str) -> str:
    """Not the bare command id: a record about the iceberg command itself (a refusal, say) would
    start an OrderLifecycle under that id, and the two must never collide."""
    return f"iceberg-{command_id}"


def broker_session_workflow_id(account: str) -> str:
    return f"broker-session/{account}"
