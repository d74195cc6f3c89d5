"""``python -m hotpath --health-port P [--symbols AAPL,MSFT] [--group-id hotpath]
[--breaker-agent floor-breaker] [--sniper-agents sniper] [--lifecycle-agent floor-lifecycle]``."""

from __future__ import annotations

import argparse

from hotpath.circuit_breaker_log import BREAKER_AGENT
from hotpath.main import main
from trading.iceberg_parents import LIFECYCLE, SNIPER, FloorKeys


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="hotpath", description="The floor's hot path.")
    parser.add_argument("--health-port", type=int, required=True)
    parser.add_argument("--symbols", default="", help="comma-separated symbols to stream L1 for")
    parser.add_argument("--group-id", default="hotpath", help="Kafka consumer group")
    parser.add_argument(
        "--breaker-agent", default=BREAKER_AGENT, help="floor service whose key (in the keys dir) signs trips"
    )
    parser.add_argument(
        "--sniper-agents",
        default=SNIPER,
        help="comma-separated floor services whose keys sign iceberg slices (the workers' --sniper-agent)",
    )
    parser.add_argument(
        "--lifecycle-agent", default=LIFECYCLE, help="floor service whose key cancels DAY orders at the close"
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse()
    keys = FloorKeys(frozenset(a for a in args.sniper_agents.split(",") if a), args.lifecycle_agent)
    main(args.health_port, [s for s in args.symbols.split(",") if s], args.group_id, args.breaker_agent, keys)
