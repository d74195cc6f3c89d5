"""Relay cursor pagination (``first``/``after``, ``PageInfo``) over keys, never offsets.

A cursor is opaque to clients: the base64url of ``<kind>:<key>``, where the key is a stable,
ever-growing id (an order's first state row, a security event's id). Pages run newest first, so
a page boundary does not move while new rows arrive.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import strawberry

from api.graphql.errors import BAD_CURSOR, BAD_PAGE_SIZE, Refused

T = TypeVar("T")
Item = TypeVar("Item")

DEFAULT_PAGE = 50
MAX_PAGE = 200


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo


def encode_cursor(kind: str, key: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{key}".encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str | None) -> int | None:
    """The key in ``cursor`` (None for None); a cursor of another list or not ours is refused."""
    if cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, key = text.partition(":")
        if prefix == kind and key.isdigit():
            return int(key)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise Refused(BAD_CURSOR, f"{cursor!r} is not a cursor of this list: pass an endCursor it returned")


def page_size(first: int | None) -> int:
    size = DEFAULT_PAGE if first is None else first
    if not 1 <= size <= MAX_PAGE:
        raise Refused(BAD_PAGE_SIZE, f"first must be between 1 and {MAX_PAGE}, got {size}")
    return size


def connection(
    kind: str,
    items: Sequence[Item],
    key: Callable[[Item], int],
    node: Callable[[Item], T],
    *,
    has_next: bool,
    after: int | None,
) -> Connection[T]:
    edges = [Edge(cursor=encode_cursor(kind, key(i)), node=node(i)) for i in items]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=has_next,
            has_previous_page=after is not None,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
    )
