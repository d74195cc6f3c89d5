"""The hot path's intake ceiling, one process against two in one consumer group.

    python -m bench.hotpath_scale [--n 3000] [--accounts 8] [--partitions 8] [--quick]

Starts its own embedded Postgres, Kafka (Tansu), paper venue and gateways (pacing off, and
ib_async's throttle off, so the broker's 50 messages/s does not cap the figure) under a scratch
``var/bench-*`` directory, then for each run starts the hot paths in group mode
(``FLOOR_HOTPATH_GROUP_MODE``; each its own broker client id and control port) on an
``agent.commands`` made with ``--partitions`` partitions, waits until the group has given
every partition out, and produces ``--n`` signed commands spread over ``--accounts`` accounts
as fast as the producer goes (a backlog: the hot paths read as fast as they can decide).

The ceiling is commands decided and written to the broker per second, first intake to last
socket write, from every hot path's ``/stats`` timings on one wall clock. The *one* run is the
baseline of the same invocation on the same machine; the *two* run prints its ratio to it.
Both processes share this machine's cores with Postgres, Kafka, the venue and the gateways,
so the ratio says what a second process buys here, not what a second machine would.

The commands are 1-share manual limit buys signed by a trader's key (the paper venue reports
a net liquidation for its own account only, which the sizer needs for an agent's edge); the
venue refuses every account but its own once the order reaches it, so its book stays empty
and every run does the same work per command: verify, risk, ledger commit, socket write.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from bench.hotpath import ACCOUNT, cancel_everything
from config.ports import free_port
from config.settings import FloorSettings
from floor import services
from floor.paper_cmd import venue_spec
from floor.supervisor import RunningService, Supervisor, stop_process_group

console = Console(width=None if Console().is_terminal else 120)

SYMBOL = "AAPL"
LIMIT = Decimal("150.00")
"""~35% under AAPL's opening price: an order the venue would rest (it refuses them anyway)."""
TRADER = "trader.bench"
FIRST_CLIENT_ID = 40
READY_TIMEOUT_S = 90.0
TIMINGS_TIMEOUT_S = 120.0


@dataclass
class Run:
    processes: int
    n: int
    decided: int = 0
    seconds: float = 0.0
    per_process: list[int] = dataclasses.field(default_factory=list)

    @property
    def ceiling(self) -> float:
        return self.decided / self.seconds if self.seconds > 0 else 0.0


# --- set-up ---------------------------------------------------------------------------------


async def prepare(settings: FloorSettings, accounts: Sequence[str], partitions: int) -> Any:
    """The command topic with its partitions (before anything makes it with one), the other
    topics, migrations, the floor's keys, a trader key on the accounts and their profiles;
    returns the trader's private key."""
    import asyncpg

    from bus.command_topic import ensure_command_topic
    from bus.kafka import ensure_topics
    from floor.database import prepare_database
    from floor.provision import provision
    from ledger.keys import register_key
    from ledger.risk_profiles import set_profile
    from trading.signing import generate_private_key, public_key_bytes
    from trading.sizing import RiskProfile

    await ensure_command_topic(settings.kafka, partitions)
    await ensure_topics(settings.kafka)
    await prepare_database(settings)
    await provision(settings, paper_account=None)
    trader_key = generate_private_key()
    operator_key = generate_private_key()
    profile = RiskProfile(
        max_trade_size=Decimal("50000"),
        max_dollar_risk=Decimal("5000"),
        max_position=1_000_000,
        max_gross_exposure=Decimal("100000000"),
        max_open_orders=1_000_000,
        staleness_ms=60_000,
    )
    conn = await asyncpg.connect(settings.db_url)
    try:
        await register_key(conn, TRADER, public_key_bytes(trader_key), "trader", list(accounts))
        await register_key(conn, "bench-operator", public_key_bytes(operator_key), "operator", ["*"])
        for account in accounts:
            await set_profile(conn, account, profile, operator_id="bench-operator", operator_key=operator_key)
    finally:
        await conn.close()
    return trader_key


class Stack:
    def __init__(self, settings: FloorSettings, partitions: int) -> None:
        self.settings = settings
        self.partitions = partitions
        self.supervisor = Supervisor(settings.log_dir)
        self.hotpaths: list[tuple[FloorSettings, RunningService]] = []
        self._client_ids = itertools.count(FIRST_CLIENT_ID)

    def start_infra(self) -> None:
        s = self.settings
        for spec in (services.postgres_spec(s), services.kafka_spec(s), venue_spec(s)):
            console.print(f"starting {spec.name}")
            self.supervisor.start(spec)
        for name, port in (("primary", s.ib_port), ("standby", s.ib_standby_port)):
            self.supervisor.start(services.gateway_spec(s, name, port, pacing=False))

    def start_hotpaths(self, count: int, group_id: str) -> None:
        from hotpath.service import hotpath_spec

        for _ in range(count):
            client_id = next(self._client_ids)
            settings = self.settings.model_copy(
                update={"hotpath_health_port": free_port(), "ib_client_id": client_id}
            )
            spec = hotpath_spec(
                settings,
                symbols=(SYMBOL,),
                group_id=group_id,
                env={
                    "IB_MAX_REQUESTS_PER_S": "0",
                    "FLOOR_HOTPATH_GROUP_MODE": "1",
                    "FLOOR_COMMAND_PARTITIONS": str(self.partitions),
                },
            )
            spec = dataclasses.replace(spec, name=f"hotpath-{client_id}")
            console.print(f"starting hot path {client_id}")
            self.hotpaths.append((settings, self.supervisor.start(spec)))

    def stop_hotpaths(self) -> None:
        while self.hotpaths:
            _, service = self.hotpaths.pop()
            stop_process_group(service.pid)
            self.supervisor.running.remove(service)

    def urls(self) -> list[str]:
        return [f"http://{s.host}:{s.hotpath_health_port}" for s, _ in self.hotpaths]


async def await_group(urls: Sequence[str], partitions: int) -> None:
    """Until the group has given every partition out, each member some."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    async with httpx.AsyncClient(timeout=5.0) as client:
        while time.monotonic() < deadline:
            held = [set((await client.get(f"{url}/health")).json().get("partitions", ())) for url in urls]
            if all(held) and set().union(*held) == set(range(partitions)):
                return
            await asyncio.sleep(0.2)
    raise TimeoutError(f"the group did not give out {partitions} partitions in {READY_TIMEOUT_S:.0f} s")


# --- the run --------------------------------------------------------------------------------


def commands(trader_key: Any, accounts: Sequence[str], n: int) -> list[tuple[bytes, bytes]]:
    """``n`` signed manual buys, round robin over ``accounts``: (key, wire) each. Signed before
    the run so the producer, not the signing, sets the pace."""
    from bus.command_keys import command_key
    from trading.authorization import Authorization, Ceremony
    from trading.commands import Command, CommandKind, OrderType, Side, TimeInForce, utc_now_ms
    from trading.signing import sign_command
    from trading.step_up import OrderTerms, order_bytes, order_hash

    out = []
    for i in range(n):
        account = accounts[i % len(accounts)]
        terms = OrderTerms(account, SYMBOL, Side.BUY, OrderType.LMT, 1, TimeInForce.DAY, limit_price=LIMIT)
        step_up = Authorization(
            trader=TRADER.removeprefix("trader."),
            credential_id="AAECAwQFBgcICQoLDA0ODxAREhM",
            sign_count=100 + i,
            authenticator_data_sha256="0" * 64,
            client_data_sha256="0" * 64,
            ceremony=Ceremony.STEP_UP,
            order_hash=order_hash(order_bytes(terms)),
        )
        command = Command(
            kind=CommandKind.ENTER, command_id=f"scale-{uuid.uuid4().hex}", agent_id=TRADER, account=account,
            nonce=uuid.uuid4().hex, issued_at=utc_now_ms(), symbol=SYMBOL, side=Side.BUY,
            order_type=OrderType.LMT, limit_price=LIMIT, tif=TimeInForce.DAY, quantity=1,
            authorization=step_up,
        )  # fmt: skip
        out.append((command_key(command), sign_command(command, trader_key).to_wire()))
    return out


async def produce(settings: FloorSettings, records: Sequence[tuple[bytes, bytes]]) -> set[str]:
    import json

    from bus.kafka import start_producer
    from bus.topics import AGENT_COMMANDS

    producer = await start_producer(settings.kafka, "bench-scale")
    try:
        deliveries = [await producer.send(AGENT_COMMANDS, wire, key=key) for key, wire in records]
        await asyncio.gather(*deliveries)
    finally:
        await producer.stop()
    return {json.loads(wire)["command"]["command_id"] for _, wire in records}


async def collect(urls: Sequence[str], wanted: set[str]) -> list[list[dict[str, Any]]]:
    """Each hot path's timings of ``wanted``, once all are in (or the deadline passes)."""
    deadline = time.monotonic() + TIMINGS_TIMEOUT_S
    async with httpx.AsyncClient(timeout=10.0) as client:
        while True:
            per = []
            for url in urls:
                body = (await client.get(f"{url}/stats")).json()
                per.append([t for t in body["timings"] if t["command_id"] in wanted])
            if sum(len(p) for p in per) >= len(wanted) or time.monotonic() > deadline:
                return per
            await asyncio.sleep(0.25)  # no "done" signal for a batch


def measure(run: Run, per: Sequence[Sequence[dict[str, Any]]]) -> None:
    every = [t for p in per for t in p]
    run.per_process = [len(p) for p in per]
    run.decided = len(every)
    if len(every) < 2:
        return
    first = min(int(t["intake_ns"] + (t["write_wall_ns"] - t["write_ns"])) for t in every)
    last = max(t["write_wall_ns"] for t in every)
    run.seconds = (last - first) / 1e9


def run_all(args: argparse.Namespace) -> list[Run]:
    root = Path(__file__).resolve().parent.parent / "var"
    root.mkdir(exist_ok=True)
    var_dir = Path(tempfile.mkdtemp(prefix="bench-", dir=root))
    settings = FloorSettings.on_free_ports(var_dir)
    accounts = [ACCOUNT, *(f"DUSCALE{i}" for i in range(1, args.accounts))]
    stack = Stack(settings, args.partitions)
    runs: list[Run] = []
    try:
        stack.start_infra()
        trader_key = asyncio.run(prepare(settings, accounts, args.partitions))
        for count in (1, 2):
            run = Run(count, args.n)
            runs.append(run)
            stack.start_hotpaths(count, f"scale-{count}-{uuid.uuid4().hex[:6]}")
            asyncio.run(await_group(stack.urls(), args.partitions))
            records = commands(trader_key, accounts, args.n)
            console.print(f"{count} hot path(s): producing {args.n} commands over {len(accounts)} accounts")
            wanted = asyncio.run(produce(settings, records))
            measure(run, asyncio.run(collect(stack.urls(), wanted)))
            stack.stop_hotpaths()
            asyncio.run(cancel_everything(settings))
    finally:
        stack.stop_hotpaths()
        stack.supervisor.stop_all()
        if args.keep_var:
            console.print(f"logs kept under {settings.log_dir}")
        else:
            shutil.rmtree(var_dir, ignore_errors=True)
    return runs


def report(runs: Sequence[Run], args: argparse.Namespace) -> None:
    table = Table(
        title=f"intake ceiling, pacing off: {args.n} commands, {args.accounts} accounts, "
        f"{args.partitions} partitions",
        title_justify="left",
    )
    for col in ("hot paths", "decided", "per process", "seconds", "commands/s", "vs one"):
        table.add_column(col, justify="right")
    base = runs[0].ceiling if runs else 0.0
    for run in runs:
        ratio = f"x{run.ceiling / base:,.2f}" if base else "-"
        table.add_row(
            str(run.processes), f"{run.decided}/{run.n}", " + ".join(map(str, run.per_process)),
            f"{run.seconds:,.2f}", f"{run.ceiling:,.0f}", ratio,
        )  # fmt: skip
    console.print(table)
    for run in runs:
        if run.decided < run.n:
            console.print(f"  [yellow]{run.processes}: {run.n - run.decided} commands not timed[/]")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.hotpath_scale", description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=3000, help="commands per run (default 3000)")
    parser.add_argument(
        "--accounts", type=int, default=8, help="accounts commands spread over (default 8)"
    )
    parser.add_argument("--partitions", type=int, default=8, help="partitions of agent.commands (default 8)")
    parser.add_argument("--quick", action="store_true", help="500 commands per run (under a minute)")
    parser.add_argument("--keep-var", action="store_true", help="keep the scratch var dir (logs)")
    args = parser.parse_args(argv)
    if args.quick:
        args.n = 500
    if args.n < 2 or args.accounts < 2 or args.partitions < 2:
        parser.error("--n, --accounts and --partitions must be at least 2 (two processes share them)")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.getLogger("ib_async").setLevel(logging.CRITICAL)
    started = time.monotonic()
    runs = run_all(args)
    load1, load5, _ = os.getloadavg()
    console.print(
        f"on {os.cpu_count()} CPUs, load average {load1:.1f} (5 min {load5:.1f}); the two runs share "
        "the machine with every other process of the floor, and its noise"
    )
    report(runs, args)
    console.print(f"done in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
