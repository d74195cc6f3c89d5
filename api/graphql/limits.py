"""What one GraphQL document may ask for, and what a client sees of a fault.

A document is refused at validation, before anything runs, when it nests deeper than
:data:`MAX_DEPTH` (introspection excluded, so GraphiQL still works), carries more than
:data:`MAX_ALIASES` aliases (aliases let one request repeat a mutation such as ``beginLogin``
or ``submitCommand`` hundreds of times inside one rate-limited request) or more than
:data:`MAX_TOKENS` tokens (parsing stops there).

An error raised by a resolver that is not a named GraphQL error (a database error, a failed
assertion: a bug) reaches the client as :data:`UNEXPECTED` with no detail; the original is in
the API's log. Named refusals (``extensions.code``), input coercion errors and validation errors
are shown as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial

from graphql import GraphQLError
from strawberry.extensions import (
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.types.execution import ExecutionResult, StreamExecutionResult

MAX_DEPTH = 10
"""The HUD's deepest query (an iceberg's slices' ledger entries) is 6 deep."""
MAX_ALIASES = 15
"""One request may not ask for the same costly list, or mutation, many times over under other names."""
MAX_TOKENS = 2000
UNEXPECTED = "server.unexpected"


def unexpected(error: GraphQLError) -> bool:
    """A fault, not an answer: an exception a resolver raised that is no GraphQL error."""
    return error.original_error is not None and not isinstance(error.original_error, GraphQLError)


class MaskUnexpected(MaskErrors):
    def __init__(self) -> None:
        super().__init__(
            should_mask_error=unexpected,
            error_message="the server failed to answer this (a fault on its side, logged there); "
            "try again, and tell the operator if it persists",
        )

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        # Every frame of every subscription passes here; the base class's runtime Protocol
        # check costs more than the rest of a shared book frame. Most frames carry no error.
        if getattr(result, "errors", None) or not isinstance(result, ExecutionResult):
            yield from super().on_stream_result(result)
            return
        self._stream_result_processed = True
        yield None

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        masked = super().anonymise_error(error)
        masked.extensions = {"code": UNEXPECTED}
        return masked


EXTENSIONS: list[Callable[[], SchemaExtension]] = [
    # Factories, not instances: an extension holds state for one operation.
    partial(MaxTokensLimiter, max_token_count=MAX_TOKENS),
    partial(QueryDepthLimiter, max_depth=MAX_DEPTH),
    partial(MaxAliasesLimiter, max_alias_count=MAX_ALIASES),
    MaskUnexpected,
]
