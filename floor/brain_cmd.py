"""``floor brain``: the demo agents, each with a key of its own, trading the paper account.

The agents' keys are made and registered as ``floor keys new`` makes them (the private key in
``var/keys/AGENT.key``, the public half registered by a ledger entry the operator signs), allowed
on the paper account only; making them again is a no-op.
"""

from __future__ import annotations

import asyncio
import os
import signal
from decimal import Decimal
from typing import Annotated

import asyncpg
import typer
from rich.console import Console

from brain.agents import DEMO_AGENTS
from brain.runner import DemoBrain, RoundTrip
from brain.service import brain_spec
from config.settings import FloorSettings
from floor.keys import OPERATOR, key_path, load_private_key, write_private_key
from floor.stack import ProcessRow, Progress
from floor.supervisor import ServiceFailed, Supervisor
from ledger import keys as registry
from ledger.key_changes import register_key_signed
from ledger.operator_changes import OperatorNotAuthorised
from trading.signing import generate_private_key, key_id, private_key_to_pem, public_key_bytes

console = Console()


class DemoKeysRefused(Exception):
    """A demo agent's key could not be registered; the message says what to do."""


def demo_account(settings: FloorSettings) -> str:
    """The account the demo agents trade: the broker connection's first (the paper venue's)."""
    return settings.accounts[0]


async def provision_demo_agents(settings: FloorSettings) -> list[str]:
    """Make and register each demo agent's key where it is missing; one line per thing done.
    Raises :class:`DemoKeysRefused` when a key file is not the one registered for its agent."""
    done: list[str] = []
    account = demo_account(settings)
    settings.keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        operator_key = load_private_key(settings, OPERATOR)
    except FileNotFoundError:
        raise DemoKeysRefused(
            f"no operator key in {settings.keys_dir}: start the floor once with `floor up`"
        ) from None
    conn = await asyncpg.connect(settings.role_url("cli"))
    try:
        for agent_id, _rule in DEMO_AGENTS:
            path = key_path(settings, agent_id)
            if path.exists():
                key = load_private_key(settings, agent_id)
            else:
                key = generate_private_key()
                write_private_key(path, private_key_to_pem(key))
                done.append(f"made key {path}")
            active = await registry.active_key_for(conn, agent_id)
            if active is not None and active.key_id == key_id(key):
                continue
            if active is not None:
                raise DemoKeysRefused(
                    f"{path} is not the key registered for {agent_id}: restore it, or run "
                    f"`floor keys revoke {agent_id}` and try again to register this one"
                )
            try:
                await register_key_signed(
                    conn, agent_id, public_key_bytes(key), registry.ROLE_AGENT, [account],
                    operator_id=OPERATOR, operator_key=operator_key,
                )  # fmt: skip
            except (registry.KeyRegistryError, OperatorNotAuthorised) as exc:
                raise DemoKeysRefused(f"{agent_id} not registered: {exc}") from None
            done.append(f"registered {agent_id} on {account}")
    finally:
        await conn.close()
    return done


def brain(
    seed: Annotated[int, typer.Option(help="Seeds the order types, edges and exits the agents choose.")] = 0,
    caps_binding_share: Annotated[
        float,
        typer.Option(
            help="Share of entries claiming an edge Kelly would size past Max Trade Size or Max Dollar Risk."
        ),
    ] = 0.2,
) -> None:
    """Run the demo agents against a running floor until Ctrl-C: named rules (mean reversion,
    momentum, breakout) on the venue's prices, every order type, both sides, each position exited
    by a trailing stop or the agent's own signal. A demonstration, not a strategy."""
    settings = FloorSettings()
    try:
        for line in asyncio.run(provision_demo_agents(settings)):
            console.print(line)
    except DemoKeysRefused as exc:
        console.print(f"[red]demo keys[/]: {exc}")
        raise typer.Exit(1) from None
    except (OSError, asyncpg.PostgresError) as exc:
        console.print(f"[red]cannot reach the floor's database[/] ({exc}): start the floor with `floor up`")
        raise typer.Exit(1) from None
    asyncio.run(_run(settings, seed, Decimal(str(caps_binding_share))))


async def _run(settings: FloorSettings, seed: int, share: Decimal) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    def closed(trip: RoundTrip) -> None:
        console.print(
            f"{trip.agent_id}: {trip.side} {trip.quantity} {trip.symbol} closed "
            f"({trip.entry_order_type} in, {trip.exit_order_type} out"
            f"{', claimed an edge past the caps' if trip.caps_binding else ''})"
        )

    demo = DemoBrain(settings, seed=seed, caps_binding_share=share, on_round_trip=closed)
    demo.on_started = lambda: console.print(
        f"demo agents {', '.join(a.agent_id for a in demo.agents)} trading {demo.account} "
        f"(pid {os.getpid()}); Ctrl-C stops them"
    )
    await demo.run(stop)
    console.print(
        f"{demo.entries} entries, {demo.round_trips} round trips; {dict(demo.outcomes) or 'no refusals'}"
    )


def start_demo_brain(settings: FloorSettings, supervisor: Supervisor, progress: Progress) -> ProcessRow:
    """``floor up --demo``: the demo agents' keys, then the brain as a supervised process (restarted
    like any other when it dies). Raises :class:`ServiceFailed` saying what stopped it."""
    try:
        progress("provisioning the demo agents")
        try:
            for line in asyncio.run(provision_demo_agents(settings)):
                progress(line)
        except DemoKeysRefused as exc:
            raise ServiceFailed("brain", "the demo agents' keys", str(exc)) from exc
        progress("starting brain")
        service = supervisor.start(brain_spec(settings))
    except ServiceFailed:
        # Like a failed `floor up`: nothing is left running half-started.
        supervisor.stop_all()
        raise
    return ProcessRow(service.spec.name, service.spec.address, service.pid, "", 0)
