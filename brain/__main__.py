"""``python -m brain``: the demo agents, trading until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from decimal import Decimal

from brain.runner import DemoBrain, RoundTrip
from brain.service import READY_LINE
from config.settings import FloorSettings
from observability.logs import setup_logs
from trading.symbols import parse_symbols

log = logging.getLogger("brain")


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m brain", description=__doc__)
    parser.add_argument("--seed", type=int, default=0, help="seeds the order types, edges and exits chosen")
    parser.add_argument(
        "--caps-binding-share",
        type=Decimal,
        default=Decimal("0.2"),
        help="share of entries claiming an edge Kelly would size past the profile's caps",
    )
    parser.add_argument(
        "--symbols", default=None, help="comma-separated symbols to trade (default: the hot path's)"
    )
    return parser.parse_args()


async def _main(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    def closed(trip: RoundTrip) -> None:
        log.info(
            "%s closed %s %s %d (%s in, %s out)",
            trip.agent_id, trip.side, trip.symbol, trip.quantity, trip.entry_order_type, trip.exit_order_type,
        )  # fmt: skip

    brain = DemoBrain(
        FloorSettings(),
        seed=args.seed,
        caps_binding_share=args.caps_binding_share,
        on_round_trip=closed,
        symbols=parse_symbols(args.symbols) if args.symbols else None,
    )
    brain.on_started = lambda: log.info(
        "%s: agents %s", READY_LINE, ", ".join(a.agent_id for a in brain.agents)
    )
    await brain.run(stop)
    log.info(
        "brain stopped: %d entries, %d round trips, %s",
        brain.entries,
        brain.round_trips,
        dict(brain.outcomes),
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    setup_logs("brain")  # security and ops events as OpenTelemetry logs; flushed at exit
    asyncio.run(_main(_parse()))
