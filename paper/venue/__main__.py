"""``python -m paper.venue --port P --control-port C --token-file F --seed S [--time-scale F] ...``

Runs the venue until SIGTERM/SIGINT. ``--flow`` picks the order-flow model (``agents``, the
default, or ``zi``: :mod:`paper.venue.flow_models`). ``--depth-rate`` sets the model's event
rate (book updates per second) for every symbol (``5000``) or one (``AAPL=5000``); repeat it for several. The
control API answers only requests carrying the token in ``--token-file`` (made, 0600, if absent;
the venue refuses to start on one that others may read).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import signal
from decimal import Decimal
from pathlib import Path

from paper.venue.control import ControlApi
from paper.venue.control_token import TokenFileError, ensure_token
from paper.venue.engine import VenueConfig
from paper.venue.flow_models import DEFAULT_FLOW, FLOW_MODELS
from paper.venue.server import VenueServer
from paper.venue.symbols import DEFAULT_SYMBOLS, with_event_rate


def _rates(values: list[str]) -> dict[str, float]:
    rates: dict[str, float] = {}
    for value in values:
        symbol, sep, rate = value.rpartition("=")
        try:
            number = float(rate)
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad --depth-rate {value!r}") from None
        if number < 0:
            raise argparse.ArgumentTypeError(f"bad --depth-rate {value!r}")
        rates[symbol.upper() if sep else "*"] = number
    return rates


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m paper.venue", description="Paper trading venue")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True, help="gateway connection port")
    parser.add_argument("--control-port", type=int, required=True, help="HTTP control API port")
    parser.add_argument(
        "--token-file", type=Path, required=True, help="control API token (made, 0600, if absent)"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--time-scale", type=float, default=1.0, help="market seconds per real second")
    parser.add_argument("--depth-rate", action="append", default=[], metavar="[SYMBOL=]RATE")
    parser.add_argument("--flow", choices=FLOW_MODELS, default=DEFAULT_FLOW, help="order-flow model")
    parser.add_argument("--account", default="DU1234567")
    parser.add_argument(
        "--sub-accounts",
        default="",
        help="comma-separated accounts no gateway serves (the paper Schwab API's), each with its own cash",
    )
    parser.add_argument("--cash", default="1000000.00", help="initial cash (USD), each account's")
    parser.add_argument("--paused", action="store_true", help="start with the market clock stopped")
    parser.add_argument("--start-ns", type=int, default=None, help="market clock origin (ns since epoch)")
    parser.add_argument(
        "--counters-file", type=Path, default=None, help="keep permId/order-id high-water marks here"
    )
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    try:
        args.rates = _rates(args.depth_rate)
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    if args.time_scale <= 0:
        parser.error("--time-scale must be positive")
    return args


async def run(args: argparse.Namespace) -> None:
    try:
        token = ensure_token(args.token_file)
    except TokenFileError as exc:
        raise SystemExit(str(exc)) from None
    symbols = with_event_rate(DEFAULT_SYMBOLS, args.rates)
    unknown = set(args.rates) - {"*"} - {s.contract.symbol for s in symbols}
    if unknown:
        raise SystemExit(f"--depth-rate names unknown symbols: {', '.join(sorted(unknown))}")
    named = (a.strip() for a in args.sub_accounts.split(","))
    sub_accounts = tuple(a for a in named if a and a != args.account)
    config = VenueConfig(
        symbols=symbols,
        account=args.account,
        initial_cash=Decimal(args.cash),
        flow=args.flow,
        sub_accounts=sub_accounts,
    )
    venue = VenueServer(
        config,
        args.seed,
        time_scale=args.time_scale,
        paused=args.paused,
        start_ns=args.start_ns,
        counters_path=args.counters_file,
    )
    control = ControlApi(venue, token)
    # Start-up objects never die; keeping them out of collections keeps pauses off the order path.
    gc.collect()
    gc.freeze()
    port = await venue.start(args.host, args.port)
    control_port = await control.start(args.host, args.control_port)
    logging.getLogger("paper.venue").info(
        "venue listening on %s:%d (control %d), seed %d, time scale %g, %s order flow",
        args.host, port, control_port, args.seed, args.time_scale, args.flow,
    )  # fmt: skip
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await control.stop()
    await venue.stop()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    runner = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        runner = uvloop.run
    runner(run(args))


if __name__ == "__main__":
    main()
