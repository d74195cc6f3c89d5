"""One execution per book state, not one per subscriber.

GraphQL executes a subscription's selection set once per event per subscriber. Book subscribers
in step with each other are handed the very same update object by the hub (one snapshot or
delta per book state and depth), so executing it for each of them is the same work done again:
at 2,000 updates/s and 50 subscribers that alone was most of the API's CPU.

An event whose fields depend on nothing but the event itself (not the caller, not the context)
is a :class:`SharedEvent`. :class:`SharedEventExecutor` executes such an event once per
document (the subscription's text, operation name and variables) and gives every later
subscriber with the same document the same result. The results live on the event, so they go
when the hub lets go of the event. Only a clean, synchronous result is shared; one with errors
(or one still awaiting a resolver) is executed again for each subscriber.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from graphql import ExecutionResult
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

ShareKey = tuple[str, str | None, str]
Record = TypeVar("Record")
Update = TypeVar("Update")


class SharedEvent:
    """A subscription payload every subscriber may be sent the same result of."""

    # Kept in the instance's __dict__, not declared: a declared attribute would become a field
    # of the GraphQL type.

    def shared_result(self, key: ShareKey) -> ExecutionResult | None:
        results: dict[ShareKey, ExecutionResult] | None = vars(self).get("_shared_results")
        return None if results is None else results.get(key)

    def share_result(self, key: ShareKey, result: ExecutionResult) -> None:
        vars(self).setdefault("_shared_results", {})[key] = result


class SharedEventExecutor(StrawberryGraphQLCoreExecutionContext):
    def share_key(self) -> ShareKey | None:
        """What the result depends on besides the event: the document and its variables."""
        loc = self.operation.loc
        if loc is None:
            return None
        name = self.operation.name.value if self.operation.name else None
        variables = self.variable_values.coerced
        return loc.source.body, name, repr(sorted(variables.items())) if variables else ""

    def execute_operation(self, serially: bool | None = None) -> Any:
        event = self.root_value
        if not isinstance(event, SharedEvent) or (key := self.share_key()) is None:
            return super().execute_operation(serially)
        shared = event.shared_result(key)
        if shared is not None:
            return shared
        result = super().execute_operation(serially)
        if isinstance(result, ExecutionResult) and not result.errors:
            event.share_result(key, result)
        return result


def shared_update(
    updates: WeakKeyDictionary[Record, Update], item: Record, make: Callable[[Record], Update]
) -> Update:
    """The update made of the hub's ``item``, made once and kept in ``updates`` while the hub
    keeps the item: subscribers in step, handed the same item, get the same update."""
    update = updates.get(item)
    if update is None:
        update = make(item)
        updates[item] = update
    return update
