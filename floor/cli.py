"""The ``floor`` command."""

from __future__ import annotations

import os
import signal
import threading
import time

import typer
from rich.console import Console
from rich.table import Table

from config.processes import tcp_probe
from config.settings import FloorSettings
from floor import (
    api_tokens_cmd,
    brain_cmd,
    breaker_cmd,
    keys,
    ledger_cmd,
    order_cmd,
    paper_cmd,
    paper_loop_cmd,
    risk_cmd,
    sniper_cmd,
    trace_cmd,
    traders_cmd,
)
from floor.stack import FloorState, ProcessRow, pid_alive, remove_state, run_floor, start_floor, urls
from floor.supervisor import ServiceFailed, Supervisor, stop_process_group

app = typer.Typer(help="Execution Floor: signed trading commands to broker orders.", no_args_is_help=True)
app.add_typer(keys.app, name="keys")
app.add_typer(risk_cmd.app, name="risk")
app.add_typer(ledger_cmd.app, name="ledger")
app.add_typer(order_cmd.app, name="order")
app.add_typer(breaker_cmd.app, name="breaker")
app.add_typer(paper_cmd.app, name="paper")
app.add_typer(sniper_cmd.app, name="sniper")
app.add_typer(traders_cmd.app, name="traders")
app.add_typer(api_tokens_cmd.app, name="api-tokens")
app.command("paper-loop")(paper_loop_cmd.paper_loop)
app.command("brain")(brain_cmd.brain)
app.command("trace")(trace_cmd.trace)
console = Console()


def _table(rows: tuple[ProcessRow, ...] | list[ProcessRow], links: dict[str, str]) -> Table:
    table = Table(title="Execution Floor", title_justify="left")
    table.add_column("process")
    table.add_column("address", overflow="fold")
    table.add_column("pid", justify="right")
    table.add_column("status")
    table.add_column("restarts", justify="right")
    table.add_column("last exit")
    for row in rows:
        # A process without a port of its own (a worker) is healthy while it runs.
        answers = tcp_probe(row.host, row.port)() if row.port else True
        healthy = (row.pid is None or pid_alive(row.pid)) and answers
        status = "[green]healthy[/]" if healthy else "[red]down[/]"
        if not healthy and row.starting:
            status = "[yellow]restarting[/]"
        pid = str(row.pid) if row.pid is not None else "external"
        last_exit = f"{row.last_exit.describe()} at {row.last_exit.when()}" if row.last_exit else ""
        restarts = str(row.restarts) if row.pid is not None else ""
        table.add_row(row.name, row.address, pid, status, restarts, last_exit)
    for name, url in links.items():
        table.add_row(f"[bold]{name}[/]", url, "", "", "", "")
    return table


def _running_state(settings: FloorSettings) -> FloorState | None:
    state = FloorState.load(settings.var_dir)
    if state is not None and pid_alive(state.supervisor_pid):
        return state
    return None


@app.command()
def up(
    demo: bool = typer.Option(
        False, "--demo", help="Also start the demo agents (`floor brain`) trading the paper account."
    ),
) -> None:
    """Start every process on embedded defaults (or the deployments named in the environment)."""
    settings = FloorSettings()
    running = _running_state(settings)
    if running is not None:
        console.print(
            f"[yellow]The floor is already running[/] (supervisor pid {running.supervisor_pid}, "
            f"command API at {running.urls.get('Command API', '?')}). `floor status` shows it; "
            "`floor down` stops it."
        )
        raise typer.Exit(1)

    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    supervisor = Supervisor(settings.log_dir)
    try:
        with console.status("starting the floor") as status:
            rows = start_floor(settings, supervisor, lambda msg: status.update(msg))
            if demo:
                rows.append(brain_cmd.start_demo_brain(settings, supervisor, lambda msg: status.update(msg)))
    except ServiceFailed as exc:
        console.print(f"[red bold]floor up failed[/]: {exc}")
        console.print(f"Logs are under {settings.log_dir}/.")
        raise typer.Exit(1) from exc

    state = FloorState(os.getpid(), time.time(), tuple(rows), urls(settings))
    state.save(settings.var_dir)
    console.print(_table(state.processes, state.urls))
    console.print("Ctrl-C stops everything.")
    gave_up = run_floor(settings, supervisor, state, stop, console.print)
    if gave_up is not None:
        console.print(f"[red bold]the floor stopped[/]: {gave_up}")
        console.print(f"Logs are under {settings.log_dir}/.")
        raise typer.Exit(1)
    console.print("The floor is stopped.")


@app.command()
def status() -> None:
    """Show each process, its address, whether it answers, its restarts and how it last ended."""
    settings = FloorSettings()
    state = _running_state(settings)
    if state is None:
        console.print("The floor is not running. Start it with `make up` (or `floor up`).")
        raise typer.Exit(1)
    console.print(_table(state.processes, state.urls))


@app.command()
def down() -> None:
    """Stop a floor started by `floor up` in another terminal."""
    settings = FloorSettings()
    state = FloorState.load(settings.var_dir)
    if state is None:
        console.print("The floor is not running.")
        return
    if pid_alive(state.supervisor_pid):
        stop_process_group_of_supervisor(state.supervisor_pid)
    # A supervisor killed with SIGKILL leaves its children; stop them from the state file.
    for row in reversed(state.processes):
        if row.pid is not None and pid_alive(row.pid):
            stop_process_group(row.pid)
    remove_state(settings.var_dir)
    console.print("The floor is stopped.")


def stop_process_group_of_supervisor(pid: int, timeout: float = 30.0) -> None:
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)


if __name__ == "__main__":
    app()
