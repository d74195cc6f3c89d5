"""Register the floor's custom search attributes on a Temporal namespace (idempotent).

The worker calls this at start-up; ``floor up`` may call it once the server answers. A dev
server can also be started with ``--search-attribute Symbol=Keyword`` (and so on) instead.
"""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeIndexedValueType
from temporalio.service import RPCError, RPCStatusCode

from workflows.search import ALL_KEYS

_INDEXED = {SearchAttributeIndexedValueType.KEYWORD: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD}


async def ensure_search_attributes(client: Client, namespace: str | None = None) -> list[str]:
    """Add whichever of the floor's attributes are missing; return the names added."""
    ns = namespace or client.namespace
    wanted = {key.name: _INDEXED[key.indexed_value_type] for key in ALL_KEYS}
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=ns)
        )
        existing = set(listed.custom_attributes) | set(listed.system_attributes)
    except RPCError as exc:
        # The time-skipping test server can add attributes but not list them.
        if exc.status is not RPCStatusCode.UNIMPLEMENTED:
            raise
        existing = set()
    missing = {name: kind for name, kind in wanted.items() if name not in existing}
    added = []
    for name, kind in missing.items():
        try:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(namespace=ns, search_attributes={name: kind})
            )
            added.append(name)
        except RPCError as exc:
            if exc.status is not RPCStatusCode.ALREADY_EXISTS:
                raise
    return sorted(added)


async def main(argv: list[str] | None = None) -> None:
    """``python -m temporal.search_attributes [--temporal ADDRESS] [--namespace NS]``"""
    import argparse

    from config.settings import FloorSettings
    from temporal.client import connect

    settings = FloorSettings()
    parser = argparse.ArgumentParser(prog="python -m temporal.search_attributes", description=__doc__)
    parser.add_argument("--temporal", default=settings.temporal)
    parser.add_argument("--namespace", default=settings.temporal_namespace)
    args = parser.parse_args(argv)
    added = await ensure_search_attributes(await connect(args.temporal, args.namespace))
    print("added: " + ", ".join(added) if added else "all present: " + ", ".join(k.name for k in ALL_KEYS))


if __name__ == "__main__":
    import asyncio

    asyncio.run(main())
