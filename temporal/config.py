"""The task queue and data converter the worker, the bridge and every client agree on
(workflow ids: :mod:`config.workflow_ids`)."""

from __future__ import annotations

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter

TASK_QUEUE = "floor"

DATA_CONVERTER: DataConverter = pydantic_data_converter
"""Pydantic JSON: ``Decimal`` travels as an exact string and dataclasses round-trip with their
types, which the default converter cannot do. Every client and worker must use this one."""
