"""``python -m hotpath --health-port P [--symbols AAPL,MSFT] [--group-id hotpath]
[--breaker-agent floor-breaker]``."""

from __future__ import annotations

import argparse

from hotpath.breaker_log import BREAKER_AGENT
from hotpath.main import main


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="hotpath", description="The floor's hot path.")
    parser.add_argument("--health-port", type=int, required=True)
    parser.add_argument("--symbols", default="", help="comma-separated symbols to stream L1 for")
    parser.add_argument("--group-id", default="hotpath", help="Kafka consumer group")
    parser.add_argument(
        "--breaker-agent", default=BREAKER_AGENT, help="floor service whose key (in the keys dir) signs trips"
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse()
    main(args.health_port, [s for s in args.symbols.split(",") if s], args.group_id, args.breaker_agent)
