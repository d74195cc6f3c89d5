"""What ``bench.hud_render`` runs the HUD against, and the two ways it drives one symbol's book.

- :class:`PaperDriver` (the default, what the HUD is for): the floor as ``floor up`` runs it:
  Postgres, Kafka, the paper venue, its primary and standby gateways, the hot path (subscribed
  to the symbol's L2 at the gateway; it publishes signed ``market.depth`` records) and the API.
  The venue's order-flow model is set to the wanted rate through its control API (``floor paper
  rate``); every other symbol is quiet so the machine spends itself on the one measured.
- :class:`SyntheticDriver` (``--source synthetic``, a lower bound of the path, not the issue's
  measurement): a child process writes signed records straight to ``market.depth`` with the hot
  path's key (:func:`bench.subscriptions.venue_main`): no venue, gateway or hot path.

Either way a phase ends with the venue's last book, which the page must reach.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bench.subscriptions import SYMBOL, _start_services, venue_main
from config.settings import FloorSettings
from floor.supervisor import Supervisor
from tests.fixtures.paper import PaperStack, start_paper_stack

DEPTH_ROWS = 10
"""Levels a side the hot path's depth subscription asks the gateway for: the book the floor
publishes, so the one the page must end with."""

Book = tuple[list[tuple[Decimal, int]], list[tuple[Decimal, int]]]


@dataclass(frozen=True)
class Drive:
    updates: int
    """Changes of the venue's book (its sequence; for the synthetic writer: records written)."""
    run_s: float
    published: int
    """Records on ``market.depth`` meanwhile: the books the hot path published (the gateway
    passes on only changes within the subscribed rows, and the hot path may take several
    changes as one book)."""
    final: Book
    """The venue's book at the end (best :data:`DEPTH_ROWS` levels a side)."""


def start_api(settings: FloorSettings, supervisor: Supervisor) -> str:
    from api.service import api_spec

    origin = f"http://localhost:{settings.api_port}"  # WebAuthn's rp id is localhost, never an IP
    env: dict[str, str | None] = {"FLOOR_HOTPATH_SYMBOLS": SYMBOL, "FLOOR_WEBAUTHN_ORIGIN": origin}
    supervisor.start(api_spec(settings, env=env))
    return origin


def _book(depth: dict[str, Any]) -> Book:
    def side(levels: list[dict[str, Any]]) -> list[tuple[Decimal, int]]:
        return [(Decimal(level["price"]), int(level["size"])) for level in levels[:DEPTH_ROWS]]

    return side(depth["bids"]), side(depth["asks"])


async def depth_records(bootstrap: str) -> int:
    """Records ever written to ``market.depth`` (its partitions' end offsets, summed)."""
    from aiokafka import TopicPartition

    from bus.kafka import consumer
    from bus.topics import MARKET_DEPTH

    reader = consumer(bootstrap, group_id=None)
    await reader.start()
    try:
        await reader.topics()  # fetches the metadata partitions_for_topic reads
        partitions = [
            TopicPartition(MARKET_DEPTH, p) for p in reader.partitions_for_topic(MARKET_DEPTH) or ()
        ]
        return sum((await reader.end_offsets(partitions)).values()) if partitions else 0
    finally:
        await reader.stop()


async def _ticking(seconds: float, on_tick: Callable[[float], None]) -> None:
    """Let a phase run ``seconds``, reporting the time gone (a progress bar, not a wait on an event)."""
    began = time.monotonic()
    while (gone := time.monotonic() - began) < seconds:
        on_tick(gone)
        await asyncio.sleep(min(0.2, seconds - gone))
    on_tick(seconds)


class PaperDriver:
    """The paper venue's order flow on one symbol, through gateway, hot path, Kafka and the API."""

    label = "paper venue -> gateway -> hot path -> Kafka -> API"

    def __init__(self, settings: FloorSettings, supervisor: Supervisor) -> None:
        self.settings = settings
        self.supervisor = supervisor
        self.paper: PaperStack | None = None
        self.event_rate = 0.0

    def start(self) -> str:
        """Start the floor; the API's origin. No symbol's flow runs until :meth:`calibrate`."""
        from hotpath.service import hotpath_spec

        _start_services(self.settings, self.supervisor, True)  # Postgres (keys provisioned), Kafka
        self.paper = start_paper_stack(self.supervisor, self.settings, prefix="bench")
        self.paper.control("POST", "/rate", {"rate": 0})
        self.supervisor.start(hotpath_spec(self.settings, symbols=(SYMBOL,)))
        return start_api(self.settings, self.supervisor)

    async def _control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        assert self.paper is not None
        return await self.paper.acontrol(method, path, body)

    async def _rate_of(self, event_rate: float, seconds: float) -> float:
        await self._control("POST", f"/symbols/{SYMBOL}/rate", {"rate": event_rate})
        drive = await self.drive(seconds, lambda _: None)
        return drive.updates / drive.run_s

    async def calibrate(self, updates_per_s: float, seconds: float = 3.0) -> tuple[float, float]:
        """Set the model's event rate so that the book changes about ``updates_per_s`` times a
        second (an event may change no level, or several); (event rate, book changes/s then)."""
        event_rate = updates_per_s
        reached = await self._rate_of(event_rate, seconds)
        if reached > 0:
            event_rate = min(updates_per_s * updates_per_s / reached, 1_000_000)
            reached = await self._rate_of(event_rate, seconds)
        self.event_rate = event_rate
        return event_rate, reached

    async def drive(self, seconds: float, on_tick: Callable[[float], None]) -> Drive:
        path = f"/symbols/{SYMBOL}/depth"
        first = await self._control("GET", path)
        # Resumed where it paused, not moved forward to the wall clock: moving it would make the
        # venue play the whole pause's order flow at once. (The depth record's time is when the
        # hot path got the book from the gateway, on the wall clock, so nothing measured needs it.)
        records = await depth_records(self.settings.kafka)
        await self._control("POST", "/clock", {"paused": False})
        await _ticking(seconds, on_tick)
        await self._control("POST", "/clock", {"paused": True})  # the book holds still: the last one
        last = await self._control("GET", path)
        run_s = (last["time_ns"] - first["time_ns"]) / 1e9  # the venue's clock: it ran only unpaused
        # The hot path may still be publishing the last changes: the page's catching up waits for them.
        records = await depth_records(self.settings.kafka) - records
        return Drive(last["seq"] - first["seq"], run_s, records, _book(last))


class SyntheticDriver:
    """Signed records straight into ``market.depth`` (no venue, gateway or hot path)."""

    label = "synthetic writer -> Kafka -> API (bypasses venue, gateway and hot path)"

    def __init__(self, settings: FloorSettings, supervisor: Supervisor, ctx: Any) -> None:
        self.settings = settings
        self.supervisor = supervisor
        self.ctx = ctx
        self.key_pem: bytes | None = None
        self.event_rate = 0.0

    def start(self) -> str:
        _, self.key_pem = _start_services(self.settings, self.supervisor, True)
        return start_api(self.settings, self.supervisor)

    async def calibrate(self, updates_per_s: float) -> tuple[float, float]:
        self.event_rate = updates_per_s  # one record is one update
        return updates_per_s, updates_per_s

    async def drive(self, seconds: float, on_tick: Callable[[float], None]) -> Drive:
        out = self.ctx.Queue()
        args = (self.settings.kafka, self.event_rate, seconds, self.key_pem, out)
        process = self.ctx.Process(target=venue_main, args=args, daemon=True)
        process.start()
        began = time.monotonic()
        while process.is_alive() and out.empty():
            on_tick(min(time.monotonic() - began, seconds))
            await asyncio.sleep(0.2)
        stamps, run_s, (bids, asks), _ = out.get(timeout=30)
        process.join(5)
        return Drive(len(stamps), run_s, len(stamps), (list(bids), list(asks)))
