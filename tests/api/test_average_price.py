"""An order's average fill price as GraphQL shows it: exact when it has 6 decimals or fewer, a
running average's long division rounded half to even to 6, never through a float."""

from decimal import Decimal

import pytest

from api.graphql.order_types import average_price


@pytest.mark.parametrize(
    ("folded", "shown"),
    [
        ("189.25", "189.25"),  # as the venue filled it, not padded to 189.250000
        ("190", "190"),
        ("418.1043697478991596638655462", "418.104370"),  # 49,753.42 / 119
        ("100.0000005", "100.000000"),  # half to even: the 0 stays
        ("100.0000015", "100.000002"),
    ],
)
def test_a_long_average_is_rounded_half_to_even_to_6_decimals(folded: str, shown: str) -> None:
    assert str(average_price(Decimal(folded))) == shown


def test_no_average_is_none() -> None:
    assert average_price(None) is None
