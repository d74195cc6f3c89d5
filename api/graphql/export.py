"""``python -m api.graphql.export [PATH]``: write the schema's SDL to ``api/schema.graphql`` (or
PATH); ``--check`` exits 1 when the file differs from the code."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from api.graphql.schema import schema

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schema.graphql"


def sdl() -> str:
    return schema.as_str() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m api.graphql.export", description=__doc__)
    parser.add_argument("path", nargs="?", type=Path, default=SCHEMA_FILE)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    text = sdl()
    if args.check:
        current = args.path.read_text() if args.path.exists() else ""
        if current != text:
            print(f"{args.path} differs from the schema in code: run python -m api.graphql.export")
            return 1
        return 0
    args.path.write_text(text)
    print(f"wrote {args.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
