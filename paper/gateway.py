"""A TWS-API gateway process in front of the paper venue.

    python -m paper.gateway --port 4002 --venue 127.0.0.1:4100 --name primary \\
        [--trusted 127.0.0.1,127.0.0.2] [--host 127.0.0.1] [--no-pacing]

Speaks the TWS socket protocol (server version 178) to API clients such as ib_async and
IB's own ``ibapi`` and turns their requests into calls on the venue, the way IB Gateway
fronts IB's servers: the gateway holds no order state of its own, so killing it loses nothing.
If the venue connection drops, clients get 1100; the gateway reconnects with backoff, renews
every market-data subscription and sends 1102 (or 1101 if some could not be renewed and
must be re-requested).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys

from paper.tws.hub import Hub
from paper.tws.session import ClientSession
from paper.venue.client import VenueClient

log = logging.getLogger("paper.gateway")

VENUE_CONNECT_TIMEOUT = 15.0
RECONNECT_BACKOFF = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m paper.gateway", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True, help="TWS API port to listen on")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--venue", required=True, help="venue HOST:PORT")
    parser.add_argument("--name", required=True, help="this gateway's name (primary | standby)")
    parser.add_argument(
        "--trusted",
        default="127.0.0.1",
        help="comma-separated client addresses allowed to connect (IB Gateway's Trusted IPs)",
    )
    parser.add_argument("--no-pacing", action="store_true", help="do not enforce 50 msgs/s per client")
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


async def connect_venue(host: str, port: int, name: str, within: float) -> VenueClient:
    """Connect, retrying for ``within`` seconds (the venue may still be starting)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    attempt = 0
    while True:
        try:
            return await VenueClient.connect(host, port, name)
        except (OSError, TimeoutError) as exc:
            if loop.time() > deadline:
                raise ConnectionError(f"venue at {host}:{port} unreachable: {exc}") from exc
            await asyncio.sleep(RECONNECT_BACKOFF[min(attempt, len(RECONNECT_BACKOFF) - 1)])
            attempt += 1


async def keep_venue(hub: Hub, host: str, port: int, name: str) -> None:
    """Watch the venue connection; on loss tell clients (1100) and reconnect with backoff."""
    while True:
        await hub.venue.wait_closed()
        log.warning("venue connection lost; reconnecting")
        hub.venue_lost()
        attempt = 0
        while True:
            await asyncio.sleep(RECONNECT_BACKOFF[min(attempt, len(RECONNECT_BACKOFF) - 1)])
            attempt += 1
            try:
                venue = await VenueClient.connect(host, port, name)
            except Exception as exc:  # whatever the failure, keep trying: clients wait on it
                log.info("venue still unreachable: %s", exc)
                continue
            hub.venue_restored(venue)
            log.warning("venue connection restored")
            break


async def serve(args: argparse.Namespace) -> None:
    venue_host, _, venue_port = args.venue.rpartition(":")
    venue = await connect_venue(venue_host, int(venue_port), args.name, VENUE_CONNECT_TIMEOUT)
    trusted = frozenset(a.strip() for a in args.trusted.split(",") if a.strip())
    hub = Hub(venue, args.name, trusted=trusted, pacing=not args.no_pacing)
    await hub.load_contracts()
    # Start-up objects never die: keep them out of every collection. A larger young
    # generation makes collections rarer on the per-message path (depth allocates a lot).
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: ClientSession(hub), args.host, args.port)
    log.info(
        "gateway %s listening on %s:%d, venue %s, accounts %s, trusted %s, pacing %s",
        args.name, args.host, args.port, args.venue, ",".join(hub.accounts), ",".join(sorted(trusted)),
        "on" if hub.pacing else "off",
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watcher = asyncio.create_task(keep_venue(hub, venue_host, int(venue_port), args.name))
    await stop.wait()
    watcher.cancel()
    server.close()
    for session in list(hub.sessions):
        session.close(flush=True)
    await hub.venue.close()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stdout,
    )
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency; plain asyncio also works
        pass
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
