"""Workflow ids: the names the bridge, the worker's activities, the workflows and the CLI agree
on, so each finds the one workflow that owns an order, an iceberg or a broker account."""

from __future__ import annotations


def lifecycle_workflow_id(command_id: str) -> str:
    return command_id


def iceberg_workflow_id(command_id: str) -> str:
    """Not the bare command id: a record about the iceberg command itself (a refusal, say) would
    start an OrderLifecycle under that id, and the two must never collide."""
    return f"iceberg-{command_id}"


def broker_session_workflow_id(account: str) -> str:
    return f"broker-session/{account}"
