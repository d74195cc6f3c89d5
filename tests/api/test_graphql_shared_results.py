"""Subscribers in step share one execution of a book update: the selection set runs once per
event and document, not once per subscriber."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import strawberry

from api.graphql.market_types import book_update
from api.graphql.shared_results import SharedEvent, SharedEventExecutor
from trading.depth_book import BookDelta, BookSnapshot

resolved: list[str] = []


@strawberry.type
class Tick(SharedEvent):
    name: str

    @strawberry.field
    def price(self, scale: int = 1) -> str:
        resolved.append(self.name)
        if scale < 0:
            raise ValueError("no negative scale")
        return f"{self.name}x{scale}"


@strawberry.type
class Private:
    name: str

    @strawberry.field
    def price(self) -> str:
        resolved.append(self.name)
        return self.name


EVENTS: dict[str, Any] = {}


@strawberry.type
class Query:
    ok: bool = True


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def ticks(self, key: str) -> AsyncGenerator[Tick, None]:
        yield EVENTS[key]

    @strawberry.subscription
    async def private(self, key: str) -> AsyncGenerator[Private, None]:
        yield EVENTS[key]


schema = strawberry.Schema(
    query=Query, subscription=Subscription, execution_context_class=SharedEventExecutor
)


async def first(query: str, **variables: Any) -> dict[str, Any]:
    stream = await schema.subscribe(query, variable_values=variables)
    assert isinstance(stream, AsyncIterator)
    result = await anext(stream)
    await stream.aclose()
    assert result.data is not None, result.errors
    return result.data


TICKS = "subscription($key: String!, $scale: Int!) { ticks(key: $key) { name price(scale: $scale) } }"


async def test_subscribers_with_the_same_document_share_one_execution_of_an_event() -> None:
    resolved.clear()
    EVENTS["a"] = Tick(name="a")
    answers = [await first(TICKS, key="a", scale=2) for _ in range(5)]
    assert answers == [{"ticks": {"name": "a", "price": "ax2"}}] * 5
    assert resolved == ["a"]


async def test_another_document_or_other_variables_or_another_event_is_executed_again() -> None:
    resolved.clear()
    EVENTS["b"] = Tick(name="b")
    assert await first(TICKS, key="b", scale=2) == {"ticks": {"name": "b", "price": "bx2"}}
    assert await first(TICKS, key="b", scale=3) == {"ticks": {"name": "b", "price": "bx3"}}
    assert await first('subscription { ticks(key: "b") { price } }') == {"ticks": {"price": "bx1"}}
    EVENTS["b"] = Tick(name="b")
    assert await first(TICKS, key="b", scale=2) == {"ticks": {"name": "b", "price": "bx2"}}
    assert resolved == ["b"] * 4


async def test_a_result_with_errors_and_an_event_not_marked_shared_are_never_shared() -> None:
    resolved.clear()
    EVENTS["c"] = Tick(name="c")
    for _ in range(2):
        stream = await schema.subscribe(TICKS, variable_values={"key": "c", "scale": -1})
        assert isinstance(stream, AsyncIterator)
        result = await anext(stream)
        await stream.aclose()
        assert result.errors
    EVENTS["p"] = Private(name="p")
    for _ in range(2):
        assert await first('subscription { private(key: "p") { price } }') == {"private": {"price": "p"}}
    assert resolved == ["c", "c", "p", "p"]


def test_the_same_hub_record_becomes_the_same_book_update() -> None:
    at = datetime(2026, 1, 2, tzinfo=UTC)
    snapshot = BookSnapshot("AAPL", 7, at, ((Decimal("10.00"), 5),), ((Decimal("10.01"), 3),))
    delta = BookDelta("AAPL", 8, 7, at, ((Decimal("10.00"), 0),), ())
    assert book_update(snapshot) is book_update(snapshot)
    assert book_update(delta) is book_update(delta)
    assert isinstance(book_update(delta), SharedEvent)
    other = BookDelta("AAPL", 9, 8, at, ((Decimal("10.00"), 4),), ())
    assert book_update(other) is not book_update(delta)
