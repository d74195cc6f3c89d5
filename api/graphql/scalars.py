"""``Decimal``: money and prices travel as strings (``"187.25"``), never as JSON numbers, so no
client or server ever holds a binary float of a price. A number where a Decimal is expected is
refused, not converted."""

from __future__ import annotations

from decimal import Decimal, DecimalException

import strawberry
from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.types.scalar import ScalarDefinition


def parse_decimal(value: object) -> Decimal:
    if not isinstance(value, str):
        raise StrawberryInputCoercionError(
            f'Decimal must be a string such as "187.25", not {type(value).__name__} {value!r}'
        )
    try:
        parsed = Decimal(value)
    except DecimalException:
        raise StrawberryInputCoercionError(f'"{value}" is not a decimal number such as "187.25"') from None
    if not parsed.is_finite():
        raise StrawberryInputCoercionError(f'"{value}" is not a finite decimal number')
    return parsed


def serialize_decimal(value: Decimal) -> str:
    return str(value)


DECIMAL: ScalarDefinition = strawberry.scalar(
    name="Decimal",
    description='An exact decimal number as a string, e.g. "187.25" (never a JSON number).',
    serialize=serialize_decimal,
    parse_value=parse_decimal,
)
SCALARS: dict[object, ScalarDefinition] = {Decimal: DECIMAL}
