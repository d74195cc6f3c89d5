"""Connecting to Temporal with the floor's data converter, and the calls other processes make
on running workflows (the API, the CLI, ops scripts)."""

from __future__ import annotations

from temporalio.client import Client

from temporal.config import DATA_CONVERTER


async def connect(address: str, namespace: str = "default") -> Client:
    return await Client.connect(address, namespace=namespace, data_converter=DATA_CONVERTER)
