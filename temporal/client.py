"""Connecting to Temporal with the floor's data converter, and the calls other processes make
on the floor's workflows (the API, the CLI, the hot path's session reporter, ops scripts).

Every client carries Temporal's OpenTelemetry ``TracingInterceptor``: a workflow started or
signalled inside a span (the bridge's, for a record that carries its order's trace context)
runs in that trace, and so do its activities, on any worker built on such a client (a worker
takes its client's interceptors). Without a span current at the start, the workflow makes no
spans. The spans go to the process's tracer provider (:func:`observability.tracing.setup_tracing`;
none set up: no-op spans, nothing recorded).

There is no helper to pause, resume, cancel or amend an Iceberg here: those are signed
``iceberg_*`` commands through intake (``floor sniper pause ...``), never signals."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from opentelemetry.trace import Tracer
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy
from temporalio.contrib.opentelemetry import TracingInterceptor

from config.workflow_ids import broker_session_workflow_id, iceberg_workflow_id
from temporal.config import DATA_CONVERTER, TASK_QUEUE
from trading.commands import Command, CommandKind, TimeInForce
from workflows import ticket
from workflows.broker_session import BrokerSession, BrokerSessionInput, SessionChange
from workflows.iceberg import Iceberg, IcebergInput, IcebergProgress, IcebergResult, ProgressQuery


class NotAnIceberg(ValueError):
    """The command given to :func:`start_iceberg` is not a complete iceberg command."""


async def connect(address: str, namespace: str = "default", *, tracer: Tracer | None = None) -> Client:
    """A client with the floor's data converter and tracing (``tracer``: default the global
    provider's, which resolves to the provider the process sets up, whenever it does)."""
    return await Client.connect(
        address, namespace=namespace, data_converter=DATA_CONVERTER, interceptors=[TracingInterceptor(tracer)]
    )


def iceberg_input(
    command: Command,
    *,
    agent_id: str = "sniper",
    jitter: Decimal = Decimal(0),
    expires_at: datetime | None = None,
) -> IcebergInput:
    """The Iceberg workflow's input for a verified ``iceberg`` command. Slices are signed by
    ``agent_id`` (the Sniper), not by the command's author; ``expires_at`` is when a DAY parent
    stops sending slices (None: never)."""
    if command.kind is not CommandKind.ICEBERG:
        raise NotAnIceberg(f"command {command.command_id} is a {command.kind.value} command")
    if command.symbol is None or command.side is None or command.edge is None:
        raise NotAnIceberg(f"iceberg {command.command_id} lacks symbol, side or edge")
    if command.quantity is None or command.display_size is None:
        raise NotAnIceberg(f"iceberg {command.command_id} lacks quantity or display_size")
    return IcebergInput(
        account=command.account,
        symbol=command.symbol,
        side=command.side,
        total_qty=command.quantity,
        display_qty=command.display_size,
        edge=command.edge,
        limit_price=command.limit_price,
        agent_id=agent_id,
        tif=command.tif or TimeInForce.DAY,
        jitter=jitter,
        expires_at=expires_at,
    )


async def start_iceberg(
    client: Client,
    command: Command,
    *,
    task_queue: str = TASK_QUEUE,
    agent_id: str = "sniper",
    expires_at: datetime | None = None,
) -> WorkflowHandle[Iceberg, IcebergResult]:
    """Start the Sniper on a verified, ledgered iceberg command (workflow id = command id).
    Starting the same command again is refused by Temporal (``WorkflowAlreadyStartedError``)
    while a run is open or after one completed; after a failed run it starts. A run fails only
    when its parent check refused it, before it sent anything (a run someone else started with
    inputs of their own, say), so the genuine start is never locked out by it; and the check
    refuses a parent whose first slice is already in the ledger, so none is worked twice."""
    inp = iceberg_input(command, agent_id=agent_id, expires_at=expires_at)
    return await client.start_workflow(
        Iceberg.run,
        inp,
        id=iceberg_workflow_id(command.command_id),
        task_queue=task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
        static_summary=ticket.iceberg_start(
            inp.side.value, inp.total_qty, inp.symbol, inp.display_qty, inp.limit_price, inp.account
        ),
        static_details=ticket.iceberg_start_details(
            command.command_id, command.agent_id, agent_id, inp.tif.value
        ),
    )


def iceberg(client: Client, workflow_id: str) -> WorkflowHandle[Iceberg, IcebergResult]:
    return client.get_workflow_handle_for(Iceberg.run, workflow_id)


async def iceberg_progress(client: Client, workflow_id: str) -> IcebergProgress:
    return await iceberg(client, workflow_id).query(Iceberg.progress, ProgressQuery())


async def report_session_change(
    client: Client, account: str, change: SessionChange, *, task_queue: str = TASK_QUEUE
) -> None:
    """Deliver a broker connectivity change to the account's BrokerSession workflow, starting
    it if it is not running (signal-with-start; the workflow dedupes on ``event_id``)."""
    await client.start_workflow(
        BrokerSession.run,
        BrokerSessionInput(account=account),
        id=broker_session_workflow_id(account),
        task_queue=task_queue,
        start_signal="session",
        start_signal_args=[change],
        static_summary=ticket.session_start(account),
    )
