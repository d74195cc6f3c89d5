"""Cursors: opaque, bound to their list, and refused by name when they are not one of ours."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.graphql.errors import BAD_CURSOR, BAD_PAGE_SIZE, Refused
from api.graphql.pagination import MAX_PAGE, decode_cursor, encode_cursor, page_size


@given(st.sampled_from(["orders", "security-events"]), st.integers(min_value=0, max_value=2**63 - 1))
def test_a_cursor_gives_back_its_key(kind: str, key: int) -> None:
    assert decode_cursor(kind, encode_cursor(kind, key)) == key


@pytest.mark.parametrize(
    "cursor", [encode_cursor("security-events", 7), "", "%%%", "b3JkZXJzOi0x", "b3JkZXJz"]
)
def test_a_cursor_of_another_list_or_none_of_ours_is_refused(cursor: str) -> None:
    with pytest.raises(Refused) as refused:
        decode_cursor("orders", cursor)
    assert refused.value.reason == BAD_CURSOR


def test_no_cursor_is_the_first_page() -> None:
    assert decode_cursor("orders", None) is None


@pytest.mark.parametrize("first", [0, -1, MAX_PAGE + 1])
def test_a_page_size_out_of_range_is_refused(first: int) -> None:
    with pytest.raises(Refused) as refused:
        page_size(first)
    assert refused.value.reason == BAD_PAGE_SIZE
    assert page_size(None) == 50 and page_size(MAX_PAGE) == MAX_PAGE
