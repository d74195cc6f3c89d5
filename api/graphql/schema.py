"""The floor's GraphQL schema."""

from __future__ import annotations

from graphql import GraphQLError
from strawberry import Schema
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from api.graphql.auth_mutations import AuthMutations
from api.graphql.errors import Refused
from api.graphql.limits import EXTENSIONS
from api.graphql.queries import Query
from api.graphql.scalars import SCALARS
from api.graphql.shared_results import SharedEventExecutor
from api.graphql.subscriptions import Subscription
from api.graphql.trading_mutations import TradingMutations


class FloorSchema(Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # A named refusal is an answer, not a fault: only the rest is logged (with its traceback).
        unexpected = [e for e in errors if not isinstance(e.original_error or e, Refused)]
        if unexpected:
            super().process_errors(unexpected, execution_context)


def build_schema() -> FloorSchema:
    return FloorSchema(
        query=Query,
        mutation=merge_types("Mutation", (TradingMutations, AuthMutations)),
        subscription=Subscription,
        config=StrawberryConfig(scalar_map=SCALARS),
        execution_context_class=SharedEventExecutor,
        extensions=EXTENSIONS,
    )


schema = build_schema()
