"""The HUD's ladder under load: the venue's book -> the frame that painted it, in Chromium.

    python -m bench.hud_render [--rate 1000] [--seconds 30] [--source paper|synthetic]

Starts its own floor on free ports under a scratch ``var/bench-*`` directory, removed afterwards
(:mod:`bench.hud_floor`): Postgres, Kafka, the paper venue with its primary and standby
gateways, the hot path and the API, with the supervisor specs ``floor up`` uses; enrols a
trader and signs it in on the HUD in headless Chromium (a CDP virtual authenticator holds the
passkey), as the HUD's browser tests do (:mod:`tests.hud.browser`).

The venue drives one symbol (``floor paper rate``: its order-flow model's events a second, set
so that its book changes about ``--rate`` times a second; the rate reached is printed) through
the gateway into the hot path, which publishes each book as a signed ``market.depth`` record;
the API's hub turns those into the ``orderBook`` subscription the ladder draws.
``--source synthetic`` instead writes signed records straight to ``market.depth`` (no venue,
gateway or hot path): a lower bound of the page's half, labelled as such in the output.

Two phases of ``--seconds`` over the same page, one after the other:

- **paint**: the ladder as a trader runs it. A sample per book message: the moment the page
  received it (graphql-ws's message event) -> the end of the animation frame that painted a
  book including it (a MessageChannel message posted in the frame callback runs after it).
- **baseline** (``hud.paint(false)``): the same page, painting switched off: message -> its
  handler done (parse, merge into the book, publish the touch).

What counts as an update: the venue's book changes (its sequence); the gateway passes on those
within the subscribed rows, the hot path publishes a record per book it gets, and the hub
conflates (a subscriber that has not taken the last delta gets one merged delta, latest size per
level), so the page may get fewer messages than the venue made updates; each message is
measured. No update is lost when every message links to the one before (no sequence gap) and,
with the venue's clock paused at the end of the phase, the page's book reaches the venue's own
(read through its control API; the bench waits up to ``--drain`` seconds and prints how long it
took: how far the feed ran behind). Also printed: frames dropped (vsyncs that passed while a
paint was waiting; frames over 50 ms from the Long Animation Frames API) and the page's message
rate. Goal: p99 <= 16 ms (one frame at 60 Hz), no gap, final book right.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import shutil
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from playwright.async_api import Page, async_playwright
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from bench.figures import Figures
from bench.hud_floor import Book, PaperDriver, SyntheticDriver
from bench.subscriptions import SYMBOL
from config.settings import FloorSettings
from floor.supervisor import Supervisor
from tests.hud.browser import PageErrors, add_authenticator, enrol, launch, new_page, sign_in

console = Console(width=None if Console().is_terminal else 200)

GOAL_P99_MS = 16.0


@dataclass
class Phase:
    name: str
    figures: Figures
    arrival: Figures
    """The record time of the newest update in a message (when the hot path got that book from
    the gateway; the synthetic writer's clock) -> the message's arrival in the page."""
    messages: int
    updates: int
    published: int
    run_s: float
    dropped: int
    long_frames: int
    frames: int
    mean_paint_ms: float | None
    worst_paint_ms: float
    gaps: int
    caught_up_s: float | None
    """After the venue's last update: seconds until the page held that book; None: not in time."""


async def _enrolment_token(settings: FloorSettings) -> str:
    """A trader and its one-time enrolment link's token, as ``floor traders add`` makes them."""
    import asyncpg

    from ledger.traders import add_trader, new_enrolment

    conn = await asyncpg.connect(settings.role_url("cli"))
    try:
        name = f"bench-{uuid.uuid4().hex[:8]}"
        await add_trader(conn, name, ["DU1234567"])
        token, _ = await new_enrolment(conn, name, timedelta(hours=1))
        return token
    finally:
        await conn.close()


def _levels(side: Any) -> list[tuple[Decimal, int]]:
    return sorted((Decimal(str(price)), int(size)) for price, size in side)


async def _caught_up(page: Page, final: Book, wait_s: float) -> float | None:
    """Seconds until the page's merged book equals the venue's last one (None: not within
    ``wait_s``): how far behind the feed ran at the end of the phase."""
    bids, asks = _levels(final[0]), _levels(final[1])
    began = time.monotonic()
    while True:
        book = await page.evaluate("window.hud.ladder.levels()")
        if _levels(book["bids"]) == bids and _levels(book["asks"]) == asks:
            return time.monotonic() - began
        if time.monotonic() - began > wait_s:
            return None
        await asyncio.sleep(0.05)


Driver = PaperDriver | SyntheticDriver


async def _phase(
    name: str, page: Page, driver: Driver, args: argparse.Namespace, progress: Progress
) -> Phase:
    task = progress.add_task(f"{name}: {args.rate:g} book updates/s", total=args.seconds)
    await page.evaluate("(on) => { window.hud.paint(on); window.hud.latency.reset(); }", name == "paint")
    drive = await driver.drive(args.seconds, lambda gone: progress.update(task, completed=gone))
    progress.update(task, description=f"{name}: the page catches up with the venue's last book")
    behind_s = await _caught_up(page, drive.final, args.drain)
    stats = await page.evaluate("window.hud.latency.stats()")
    samples: list[float] = await page.evaluate("window.hud.latency.samples()")
    arrivals: list[float] = await page.evaluate("window.hud.latency.venueSamples()")
    if name != "paint":
        await page.evaluate("window.hud.paint(true)")
    progress.remove_task(task)
    return Phase(
        name=name,
        figures=Figures.of([round(ms * 1e6) for ms in samples]),
        arrival=Figures.of([round(ms * 1e6) for ms in arrivals]),
        messages=len(samples),
        updates=drive.updates,
        published=drive.published,
        run_s=drive.run_s,
        dropped=stats["dropped"],
        long_frames=stats["longFrames"],
        frames=stats["frames"],
        mean_paint_ms=stats["meanFrameMs"],
        worst_paint_ms=stats["worstFrameMs"],
        gaps=stats["gaps"],
        caught_up_s=behind_s,
    )


def _scratch_dir() -> Path:
    root = Path(__file__).resolve().parent.parent / "var"
    root.mkdir(exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="bench-", dir=root))


@dataclass(frozen=True)
class Run:
    source: str
    event_rate: float
    """The venue's order-flow events a second that made about ``--rate`` book updates a second."""
    phases: list[Phase]


async def _signed_in_page(browser: Any, settings: FloorSettings, origin: str) -> tuple[Page, PageErrors]:
    token = await _enrolment_token(settings)
    context, page = await new_page(browser)
    errors = PageErrors()
    errors.attach(page)
    await add_authenticator(context, page)
    state, text = await enrol(page, origin, token)
    if state != "done":
        raise RuntimeError(f"enrolment failed: {text}")
    await sign_in(page, origin, f"/?symbol={SYMBOL}")
    await page.wait_for_function("() => window.hud.ladder !== null", timeout=30_000)
    return page, errors


async def run(args: argparse.Namespace) -> Run:
    var_dir = await asyncio.to_thread(_scratch_dir)
    settings = FloorSettings.on_free_ports(var_dir)
    supervisor = Supervisor(settings.log_dir)
    driver: Driver = (
        PaperDriver(settings, supervisor)
        if args.source == "paper"
        else SyntheticDriver(settings, supervisor, multiprocessing.get_context("spawn"))
    )
    try:
        with Progress(transient=True, console=console) as progress:
            task = progress.add_task(f"starting the floor: {driver.label}", total=None)
            origin = await asyncio.to_thread(driver.start)
            progress.update(task, description="a trader signs in on the HUD in Chromium")
            async with async_playwright() as playwright:
                browser = await launch(playwright)
                try:
                    page, errors = await _signed_in_page(browser, settings, origin)
                    progress.update(
                        task, description=f"setting the venue's flow to {args.rate:g} book updates/s"
                    )
                    event_rate, reached = await driver.calibrate(args.rate)
                    console.print(
                        f"venue: {event_rate:,.0f} order-flow events/s -> {reached:,.0f} book updates/s"
                        if args.source == "paper"
                        else f"synthetic writer (no venue): {event_rate:,.0f} records/s, one update each"
                    )
                    progress.remove_task(task)
                    phases = [
                        await _phase(name, page, driver, args, progress) for name in ("paint", "baseline")
                    ]
                    if errors.uncaught:
                        console.print(f"[yellow]page errors: {errors.uncaught[:3]}[/]")
                    return Run(driver.label, event_rate, phases)
                finally:
                    await browser.close()
    finally:
        supervisor.stop_all()
        shutil.rmtree(var_dir, ignore_errors=True)


def _paint_ms(p: Phase) -> str:
    if p.name != "paint" or p.mean_paint_ms is None:
        return "-"
    return f"{p.mean_paint_ms:.2f} / {p.worst_paint_ms:.2f}"


def report(result: Run, args: argparse.Namespace) -> None:
    phases = result.phases
    table = Table(
        title=f"{SYMBOL} ladder in headless Chromium, {args.rate:g} book updates/s asked for, "
        f"{args.seconds:g} s a phase, source: {result.source}; latency in ms: p50 / p99 / max",
        title_justify="left",
    )
    for col in ("phase", "latency", "record -> arrival", "messages", "venue updates", "venue updates/s",
                "records/s",
                "messages/s", "frames", "dropped", "over 50 ms", "paint ms mean / max", "gaps",
                "final book"):  # fmt: skip
        table.add_column(col, justify="left" if col == "phase" else "right")
    names = {"paint": "message -> paint", "baseline": "baseline: message -> handler (painting off)"}
    for p in phases:
        table.add_row(
            names[p.name], p.figures.cells() if p.figures.n else "-",
            p.arrival.cells() if p.arrival.n else "-", f"{p.messages:,}", f"{p.updates:,}",
            f"{p.updates / p.run_s:,.0f}", f"{p.published / p.run_s:,.0f}",
            f"{p.messages / p.run_s:,.0f}", f"{p.frames:,}" if p.name == "paint" else "-",
            f"{p.dropped:,}" if p.name == "paint" else "-",
            f"{p.long_frames:,}" if p.name == "paint" else "-",
            _paint_ms(p),
            f"{p.gaps:,}",
            "[red]not reached[/]" if p.caught_up_s is None else f"ok, {p.caught_up_s:.1f} s after",
        )  # fmt: skip
    console.print(table)
    console.print(
        f"venue updates: changes of the venue's book (its order flow at {result.event_rate:,.0f} events/s); "
        "records/s: books published on market.depth (changes within the subscribed rows; "
        "the hot path may take several as one book); messages: book messages the page received "
        "(the hub merges updates a subscriber has not taken yet into one delta); "
        "dropped: vsyncs (60 Hz) that passed while a paint waited; "
        "record -> arrival: the record time of the newest update a message carries (the hot path "
        "got that book from the gateway; TWS depth has no venue time) -> the page received it "
        "(same clock; upstream of the page: Kafka, the hub, the API, the socket); "
        "paint ms: the frame callback's own time. A message waits for the next vsync before it can "
        "be painted: half a frame (8.3 ms) on average, up to a whole one (16.7 ms), plus the paint."
    )
    paint = next(p for p in phases if p.name == "paint")
    met = (
        paint.figures.n
        and paint.figures.p99_us / 1000 <= GOAL_P99_MS
        and not paint.gaps
        and paint.caught_up_s is not None
    )
    console.print(
        f"goal p99 <= {GOAL_P99_MS:g} ms, no gap, final book right: "
        + ("[green]met[/]" if met else "[red]missed[/]")
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.hud_render", description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="the venue's book updates a second")
    parser.add_argument(
        "--source",
        choices=("paper", "synthetic"),
        default="paper",
        help="paper: the venue through gateway and hot path (the measurement); synthetic: signed "
        "records straight to market.depth (a lower bound, bypassing venue, gateway and hot path)",
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each phase")
    parser.add_argument(
        "--drain",
        type=float,
        default=30.0,
        help="at most this long for the page to reach the venue's last book",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> Run:
    args = parse_args(argv)
    result = asyncio.run(run(args))
    report(result, args)
    return result


if __name__ == "__main__":
    main()
