"""The paper Schwab Trader API emulator as a process.

    python -m paper.schwab_api --port 4102 --venue 127.0.0.1:4100 --accounts SCHW0001 \\
        --app-key KEY [--app-secret SECRET] [--order-rate-per-min 120] [--heartbeat-s 10]

Serves, on 127.0.0.1 only, ``POST /v1/oauth/token``, ``/trader/v1/...`` and
``/marketdata/v1/...`` as Schwab's ``https://api.schwabapi.com`` does, and the streamer's
WebSocket at ``ws://127.0.0.1:PORT/ws``, all over the paper venue that the TWS gateways front.
Its orders are venue orders, so it can be killed and restarted without losing any.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

import uvicorn

from paper.schwab_api.app import create_app
from paper.schwab_api.service import Emulator, EmulatorConfig, MissingVenueAccounts
from paper.schwab_api.state import VENUE_CLIENT_ID
from paper.schwab_api.stream import StreamHub

log = logging.getLogger("paper.schwab_api")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m paper.schwab_api", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback only)")
    parser.add_argument("--venue", required=True, help="venue HOST:PORT")
    parser.add_argument("--accounts", default="SCHW0001", help="comma-separated Schwab account numbers")
    parser.add_argument("--app-key", required=True)
    parser.add_argument(
        "--app-secret",
        default=os.environ.get("FLOOR_SCHWAB_APP_SECRET"),
        help="the app secret (default: $FLOOR_SCHWAB_APP_SECRET, which keeps it out of the process list)",
    )
    parser.add_argument("--order-rate-per-min", type=int, default=120, help="0: no limit")
    parser.add_argument("--heartbeat-s", type=float, default=10.0)
    parser.add_argument(
        "--venue-client-id",
        type=int,
        default=VENUE_CLIENT_ID,
        help="the venue client id of this emulator's orders (a second emulator on one venue needs another)",
    )
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"--host {args.host}: the paper Schwab API listens on 127.0.0.1 only")
    venue_host, _, venue_port = args.venue.rpartition(":")
    config = EmulatorConfig(
        host=args.host,
        port=args.port,
        venue_host=venue_host,
        venue_port=int(venue_port),
        accounts=tuple(a.strip() for a in args.accounts.split(",") if a.strip()),
        app_key=args.app_key,
        app_secret=args.app_secret,
        order_rate_per_min=args.order_rate_per_min,
        heartbeat_s=args.heartbeat_s,
        venue_client_id=args.venue_client_id,
    )
    emulator = Emulator(config)
    try:
        await emulator.start()
    except MissingVenueAccounts as exc:
        raise SystemExit(f"paper Schwab API: {exc}") from None
    hub = StreamHub(emulator, config.heartbeat_s)
    app = create_app(emulator, hub)
    server = uvicorn.Server(
        uvicorn.Config(
            app, host=args.host, port=args.port, log_level="warning", ws="websockets-sansio",
            lifespan="off", access_log=False,
        )
    )  # fmt: skip
    log.info(
        "paper Schwab API on http://%s:%d (streamer ws://%s:%d/ws), venue %s, accounts %s, "
        "order limit %s/min",
        args.host, args.port, args.host, args.port, args.venue, ",".join(config.accounts),
        config.order_rate_per_min or "no",
    )  # fmt: skip
    # uvicorn handles SIGTERM and SIGINT: it stops serving, then the process exits.
    await server.serve()
    await emulator.close()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if not args.app_secret:
        raise SystemExit("no app secret: set FLOOR_SCHWAB_APP_SECRET or pass --app-secret")
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stdout,
    )
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
