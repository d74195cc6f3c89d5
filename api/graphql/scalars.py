"""The floor's scalars.

``Decimal``: money and prices travel as strings (``"187.25"``), never as JSON numbers, so no
client or server ever holds a binary float of a price. A number where a Decimal is expected is
refused, not converted.

``Long``: a whole number past GraphQL's 32-bit ``Int`` (book sequences, Kafka offsets, ledger
sequence numbers, sign counts), as a JSON number. Exact up to 2^53 - 1, the largest integer
a JavaScript number holds exactly; a value past it is an error, never a rounded number."""

from __future__ import annotations

from decimal import Decimal, DecimalException
from typing import NewType

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
Long = NewType("Long", int)
MAX_SAFE_INTEGER = 2**53 - 1


def _too_large(value: int) -> str:
    return f"{value} is past 2^53 - 1, the largest Long a client holds exactly"


def serialize_long(value: int) -> int:
    if abs(value) > MAX_SAFE_INTEGER:
        # A fault of the server's (logged; the client sees it masked), never a rounded number.
        raise ValueError(_too_large(value))
    return value


def parse_long(value: object) -> Long:
    if isinstance(value, bool) or not isinstance(value, int):
        raise StrawberryInputCoercionError(f"Long is a whole number, not {type(value).__name__} {value!r}")
    if abs(value) > MAX_SAFE_INTEGER:
        raise StrawberryInputCoercionError(_too_large(value))
    return Long(value)


LONG: ScalarDefinition = strawberry.scalar(
    name="Long",
    description="A whole number as a JSON number, exact up to 2^53 - 1 (JavaScript's "
    "Number.MAX_SAFE_INTEGER); Int is 32-bit.",
    serialize=serialize_long,
    parse_value=parse_long,
)
SCALARS: dict[object, ScalarDefinition] = {Decimal: DECIMAL, Long: LONG}
